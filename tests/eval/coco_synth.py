"""Random COCO-format ground truth and results for the evaluator tests and the benchmark.

The generator deliberately produces the awkward cases COCOeval handles specially: crowd ground
truth, ground truth without labelled keypoints, invisible keypoints, images with ground truth
but no detections, detections on images without ground truth, and more detections per image
than maxDets.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_coco(
    seed: int,
    n_images: int = 40,
    n_keypoints: int = 5,
    n_cats: int = 1,
    max_objects: int = 3,
    max_dets: int = 25,
    crowd_rate: float = 0.1,
    keypoints: bool = True,
    empty_image_rate: float = 0.1,
    no_det_rate: float = 0.1,
    pred_seed: int = 0,
    score_decimals: int | None = 3,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(ground-truth dict, results list); keypoint results if ``keypoints`` else box results.

    The ground truth depends on ``seed`` only; ``pred_seed`` varies the predictions on it. Scores
    are rounded to ``score_decimals`` so that ties (and COCO's tie order) get exercised.
    """
    rng = np.random.default_rng(seed)
    prng = np.random.default_rng([seed, pred_seed])
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    if keypoints:
        for cat in cats:
            cat["keypoints"] = [f"kp{i}" for i in range(n_keypoints)]
    images, anns, results = [], [], []
    ann_id = 1
    for img in range(n_images):
        image_id = int(rng.integers(1, 10**6)) * 100 + img  # unsorted, unique
        images.append({"id": image_id, "width": 640, "height": 480})
        n_obj = 0 if rng.random() < empty_image_rate else int(rng.integers(1, max_objects + 1))
        objects = []
        for _ in range(n_obj):
            w, h = rng.uniform(10, 200, size=2)
            x, y = rng.uniform(0, 400, size=2)
            cat = int(rng.integers(1, n_cats + 1))
            crowd = int(rng.random() < crowd_rate)
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": cat,
                "bbox": [float(x), float(y), float(w), float(h)],
                "area": float(w * h * rng.uniform(0.4, 1.0)),
                "iscrowd": crowd,
            }
            ann_id += 1
            if keypoints:
                kx = rng.uniform(x, x + w, size=n_keypoints)
                ky = rng.uniform(y, y + h, size=n_keypoints)
                v = rng.choice([0, 1, 2], size=n_keypoints, p=[0.25, 0.25, 0.5])
                if rng.random() < 0.1:
                    v[:] = 0
                kx[v == 0] = 0
                ky[v == 0] = 0
                ann["keypoints"] = np.stack([kx, ky, v], axis=1).reshape(-1).tolist()
                ann["num_keypoints"] = int((v > 0).sum())
            anns.append(ann)
            objects.append((ann, cat))
        if prng.random() < no_det_rate:
            continue
        n_det = int(prng.integers(0, max_dets + 1))
        for _ in range(n_det):
            if objects and prng.random() < 0.6:
                ann, cat = objects[int(prng.integers(len(objects)))]
                noise = prng.uniform(0.0, 0.4)
                x, y, w, h = ann["bbox"]
                box = [x + prng.normal(0, noise * w / 3), y + prng.normal(0, noise * h / 3),
                       w * (1 + prng.normal(0, noise / 3)), h * (1 + prng.normal(0, noise / 3))]
                if prng.random() < 0.1:
                    cat = int(prng.integers(1, n_cats + 1))
            else:
                w, h = prng.uniform(10, 200, size=2)
                x, y = prng.uniform(0, 400, size=2)
                box = [x, y, w, h]
                cat = int(prng.integers(1, n_cats + 1))
                ann = None
            box = [float(b) for b in box]
            box[2], box[3] = abs(box[2]), abs(box[3])
            score = prng.random() if score_decimals is None else np.round(prng.random(), score_decimals)
            res = {"image_id": image_id, "category_id": cat, "score": float(score)}
            if keypoints:
                if ann is not None:
                    g = np.asarray(ann["keypoints"]).reshape(-1, 3)
                    scale = np.sqrt(ann["area"]) * prng.uniform(0.0, 0.12)
                    px = np.where(g[:, 2] > 0, g[:, 0], prng.uniform(box[0], box[0] + box[2], n_keypoints))
                    py = np.where(g[:, 2] > 0, g[:, 1], prng.uniform(box[1], box[1] + box[3], n_keypoints))
                    px = px + prng.normal(0, scale + 1e-3, n_keypoints)
                    py = py + prng.normal(0, scale + 1e-3, n_keypoints)
                else:
                    px = prng.uniform(box[0], box[0] + box[2], n_keypoints)
                    py = prng.uniform(box[1], box[1] + box[3], n_keypoints)
                res["keypoints"] = np.stack([px, py, prng.random(n_keypoints)], axis=1).reshape(-1).tolist()
            else:
                res["bbox"] = box
            results.append(res)
    gt = {"images": images, "annotations": anns, "categories": cats}
    return gt, results


def expand_images(gt: dict[str, Any], results: list[dict[str, Any]], weights: np.ndarray) -> tuple[dict, list]:
    """The test set in which image i appears ``weights[i]`` times (new ids, copies adjacent in id order).

    ``weights`` follows the sorted image ids, as the evaluators' bootstrap weights do.
    """
    ids = sorted(img["id"] for img in gt["images"])
    images, anns, res = [], [], []
    ann_id = 1
    for i, image_id in enumerate(ids):
        for copy in range(int(weights[i])):
            new_id = i * 1000 + copy + 1
            images.append({"id": new_id})
            for ann in gt["annotations"]:
                if ann["image_id"] == image_id:
                    anns.append(dict(ann, id=ann_id, image_id=new_id))
                    ann_id += 1
            res.extend(dict(r, image_id=new_id) for r in results if r["image_id"] == image_id)
    return {"images": images, "annotations": anns, "categories": gt["categories"]}, res
