"""A small keypoint dataset in the users' format, made here: JPEG stick figures drawn with OpenCV
and COCO keypoints JSON per split (``annotations/<split>.json``, ``images/<split>/``) with the
COCO-17 person schema, shipped as public person sets are: no ``flip_idx``, no sigmas unless asked."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

KEYPOINT_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle"]
# COCO's person sigmas (pycocotools' defaults), the ones the docs' walk (docs/tasks/keypoints.md) passes with --sigmas
SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
          0.087, 0.089, 0.089]
FLIP_IDX = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
SPLIT_SIZES = {"train": 8, "val": 4, "test": 4}
# a standing figure, (dx, dy) from the hip centre in units of the figure's half height; x > 0 is the image's right
_POSE = [(0, -0.9), (-0.05, -0.95), (0.05, -0.95), (-0.1, -0.9), (0.1, -0.9), (-0.2, -0.6), (0.2, -0.6),
         (-0.3, -0.3), (0.3, -0.3), (-0.35, 0.0), (0.35, 0.0), (-0.12, 0.0), (0.12, 0.0), (-0.14, 0.45),
         (0.14, 0.45), (-0.15, 0.9), (0.15, 0.9)]


def make_coco_pose(root: Path, sigmas: list[float] | None = None, seed: int = 0) -> Path:
    """Write the dataset under ``root`` (one person per image) and return ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in SPLIT_SIZES.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img = np.full((120, 160, 3), 90, np.uint8)
            half = rng.uniform(30, 45)
            cx, cy = rng.uniform(40, 120), rng.uniform(50, 70)
            pts = np.array([(cx + dx * half, cy + dy * half) for dx, dy in _POSE])
            for a, b in ((5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 13), (13, 15), (12, 14), (14, 16)):
                cv2.line(img, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), (220, 220, 220), 2)
            for k, (px, py) in enumerate(pts):
                cv2.circle(img, (int(px), int(py)), 2, (0, 0, 255) if k % 2 else (255, 0, 0), -1)
            name = f"{split}_{i:03d}.jpg"
            cv2.imwrite(str(root / "images" / split / name), img)
            images.append({"id": 100 + i, "file_name": name, "width": 160, "height": 120})
            x0, y0 = pts.min(axis=0) - 3
            w, h = pts.max(axis=0) - pts.min(axis=0) + 6
            kpts = [v for px, py in pts for v in (round(float(px), 1), round(float(py), 1), 2)]
            anns.append({"id": i + 1, "image_id": 100 + i, "category_id": 1,
                         "bbox": [round(float(x0), 1), round(float(y0), 1), round(float(w), 1), round(float(h), 1)],
                         "area": round(float(w * h * 0.5), 1), "iscrowd": 0, "keypoints": kpts, "num_keypoints": 17})
        category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": KEYPOINT_NAMES,
                    "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [6, 8], [7, 9], [8, 10], [9, 11]]}
        if sigmas is not None:
            category["kpt_oks_sigmas"] = sigmas
        (root / "annotations").mkdir(exist_ok=True)
        doc = {"images": images, "annotations": anns, "categories": [category]}
        (root / "annotations" / f"{split}.json").write_text(json.dumps(doc))
    return root
