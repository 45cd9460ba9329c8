"""A small detection dataset in the users' format, made here: JPEG scenes with drawn cones (triangles) and
signs (discs), and one COCO detection JSON per split (``annotations/instances_<split>.json``,
``images/<split>/``), with category ids as exported datasets often have them: not starting at 1, not
contiguous, listed out of order."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# (id, name) as the JSON lists them; classes are ordered by id, so the model's order is cone, sign
CATEGORIES = [(7, "sign"), (3, "cone")]
CLASSES = [name for _, name in sorted(CATEGORIES)]
SPLIT_SIZES = {"train": 8, "val": 4, "test": 4}
SIZE = (160, 120)  # width, height


def _scene(rng: np.random.Generator, boxes_per_image: int) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """One image and its (category id, xywh box) list: cones are orange triangles, signs blue discs."""
    w, h = SIZE
    img = np.full((h, w, 3), (70, 90, 80), np.uint8)
    objects = []
    for _ in range(boxes_per_image):
        cat, name = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        s = float(rng.uniform(18, 34))
        x0, y0 = float(rng.uniform(2, w - s - 2)), float(rng.uniform(2, h - s - 2))
        if name == "cone":
            tri = np.array([[x0 + s / 2, y0], [x0, y0 + s], [x0 + s, y0 + s]], np.int32)
            cv2.fillPoly(img, [tri], (0, 140, 255))
        else:
            cv2.circle(img, (int(x0 + s / 2), int(y0 + s / 2)), int(s / 2), (220, 80, 30), -1)
        objects.append((cat, [round(x0, 1), round(y0, 1), round(s, 1), round(s, 1)]))
    return img, objects


def make_coco_detection(root: Path, seed: int = 0, splits: dict[str, int] | None = None,
                        annotations: str = "annotations", images: str = "images") -> Path:
    """Write ``root/<images>/<split>/*.jpg`` and ``root/<annotations>/instances_<split>.json``; return ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in (splits or SPLIT_SIZES).items():
        folder = root / images / split
        folder.mkdir(parents=True, exist_ok=True)
        doc_images, doc_anns = [], []
        for i in range(n):
            img, objects = _scene(rng, boxes_per_image=2)
            name = f"{split}_{i:03d}.jpg"
            cv2.imwrite(str(folder / name), img)
            image_id = 1000 + i
            doc_images.append({"id": image_id, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
            for cat, box in objects:
                doc_anns.append({"id": len(doc_anns) + 1, "image_id": image_id, "category_id": cat, "bbox": box,
                                 "area": round(box[2] * box[3], 1), "iscrowd": 0})
        doc = {"images": doc_images, "annotations": doc_anns,
               "categories": [{"id": c, "name": n, "supercategory": "road"} for c, n in CATEGORIES]}
        (root / annotations).mkdir(parents=True, exist_ok=True)
        (root / annotations / f"instances_{split}.json").write_text(json.dumps(doc))
    return root
