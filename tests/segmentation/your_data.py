"""A small segmentation dataset in the users' format, made here: MMSegmentation's folder layout
(``img_dir/<split>/*.jpg``, ``ann_dir/<split>/*.png``, ``classes.json``) with drawn lanes and puddles,
and a generated set beside it (darkened "night" and washed-out "fog" copies of the real train images)
listed in a manifest CSV whose rows reuse the real labels, as a generator's output would be."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vsynth.data.formats import GeneratedRow, write_classes_json, write_manifest, write_mask

CLASSES = ["background", "lane", "puddle"]
PALETTE = [[0, 0, 0], [255, 255, 0], [0, 120, 255]]
SPLIT_SIZES = {"train": 8, "val": 4, "test": 4}
SIZE = (96, 64)  # width, height
_COLORS = [(60, 70, 60), (40, 220, 230), (160, 90, 30)]  # BGR per class


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label: a lane band across the image and a puddle ellipse; 255 along the lane's edges
    in every other image, as datasets leave boundaries unlabelled."""
    w, h = SIZE
    label = np.zeros((h, w), np.uint8)
    y0 = int(rng.integers(h // 3, h // 2))
    label[y0:y0 + int(rng.integers(8, 14))] = 1
    cv2.ellipse(label, (int(rng.integers(15, w - 15)), int(rng.integers(h // 2 + 8, h - 8))),
                (int(rng.integers(8, 14)), int(rng.integers(4, 7))), 0, 0, 360, 2, -1)
    image = np.asarray(_COLORS, np.uint8)[label]
    image = np.clip(image.astype(np.int16) + rng.integers(-12, 12, image.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        edges = cv2.morphologyEx((label == 1).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        label[edges > 0] = 255
    return image, label


def make_seg_folders(root: Path, seed: int = 0) -> Path:
    """Write ``root/{img_dir,ann_dir}/<split>/`` and ``root/classes.json``; return ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in SPLIT_SIZES.items():
        (root / "img_dir" / split).mkdir(parents=True, exist_ok=True)
        (root / "ann_dir" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, label = _scene(rng)
            cv2.imwrite(str(root / "img_dir" / split / f"{split}_{i:03d}.jpg"), image)
            write_mask(root / "ann_dir" / split / f"{split}_{i:03d}.png", label)
    write_classes_json(root / "classes.json", CLASSES, PALETTE)
    return root


def make_generated(out: Path, real_root: Path) -> Path:
    """A "night" and a "fog" copy of every real train image under ``out/images/``, and ``out/manifest.csv``
    (paths relative to it) reusing each source's label; returns the manifest."""
    rows = []
    for source in sorted((real_root / "img_dir" / "train").glob("*.jpg")):
        image = cv2.imread(str(source)).astype(np.float32)
        for condition, styled in (("night", image * 0.4), ("fog", image * 0.5 + 110)):
            gen = out / "images" / condition / source.name
            gen.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(gen), np.clip(styled, 0, 255).astype(np.uint8))
            rows.append(GeneratedRow(gen, source, real_root / "ann_dir" / "train" / f"{source.stem}.png", condition,
                                     "my_generator"))
    return write_manifest(rows, out / "manifest.csv")
