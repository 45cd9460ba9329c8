"""Keypoint ground truth from the demo world's real test frames, and predictions made from it (no training).

The ground truth is what a keypoints run writes as ``gt_test.json`` (box area x 0.53 as the OKS
area, the 14 real points with their names, sigmas and skeleton); a prediction is the ground truth
plus Gaussian noise in units of object scale, optionally with the demo's injected convention shift
(:func:`vsynth.data.demo.effects.shift_keypoints`, the function that shifts synthetic labels).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from vsynth.data.demo import KEYPOINT_NAMES_14, KPT_OKS_SIGMAS_14, SKELETON_14
from vsynth.data.demo.effects import KeypointShift, shift_keypoints
from vsynth.data.demo.world import render_sample

SIZE = (320, 240)
AREA_FACTOR = 0.53


@lru_cache(maxsize=4)
def _objects(n_images: int) -> tuple[tuple[int, tuple[float, ...], tuple[float, ...]], ...]:
    out = []
    for i in range(n_images):
        for obj in render_sample("keypoints", "real", 0, "test", i, SIZE).objects:
            x0, y0, x1, y1 = (float(v) for v in obj.bbox)
            out.append((i + 1, (x0, y0, x1 - x0, y1 - y0), tuple(np.asarray(obj.keypoints, float).ravel())))
    return tuple(out)


def ground_truth(n_images: int = 120) -> dict[str, Any]:
    anns = []
    for image_id, (x, y, w, h), kp in _objects(n_images):
        kpts = np.array(kp).reshape(14, 3)
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "bbox": [x, y, w, h],
                     "area": w * h * AREA_FACTOR, "iscrowd": 0, "keypoints": kpts.ravel().tolist(),
                     "num_keypoints": int((kpts[:, 2] > 0).sum())})
    return {"images": [{"id": i + 1, "width": SIZE[0], "height": SIZE[1], "file_name": f"{i}.jpg"}
                       for i in range(n_images)],
            "annotations": anns,
            "categories": [{"id": 1, "name": "vehicle", "keypoints": list(KEYPOINT_NAMES_14),
                            "skeleton": [[a + 1, b + 1] for a, b in SKELETON_14],
                            "kpt_oks_sigmas": list(KPT_OKS_SIGMAS_14)}]}


def predictions(gt: dict[str, Any], rng: np.random.Generator, noise: float = 0.04,
                shift: KeypointShift | None = None) -> list[dict[str, Any]]:
    """One detection per ground truth: its (shifted) points plus N(0, noise * scale) per axis."""
    out = []
    for ann in gt["annotations"]:
        kpts = np.array(ann["keypoints"], float).reshape(-1, 3)
        scale = np.sqrt(ann["area"])
        moved = shift_keypoints(kpts, ann["area"], shift, SIZE)
        lost = (kpts[:, 2] > 0) & (moved[:, 2] == 0)  # shifted out of the image: keep the point where it was
        moved[lost] = kpts[lost]
        x, y, w, h = ann["bbox"]
        xy = np.where(kpts[:, 2:] > 0, moved[:, :2], [x + w / 2, y + h / 2])
        xy = xy + rng.normal(0.0, noise * scale, xy.shape)
        flat = np.concatenate([xy, np.ones((xy.shape[0], 1))], axis=1).ravel()
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.5, 1.0)),
                    "bbox": ann["bbox"], "keypoints": flat.tolist()})
    return out
