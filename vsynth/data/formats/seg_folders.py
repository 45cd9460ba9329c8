"""Segmentation folders (MMSegmentation's layout): images, PNG masks of class indices, classes.json.

::

    ROOT/img_dir/<split>/<stem>.jpg    ROOT/ann_dir/<split>/<stem>.png    ROOT/classes.json

``classes.json`` is ``{"classes": [...], "palette": [[r, g, b], ...], "ignore_index": 255}``.
Masks hold one class index per pixel; ``ignore_index`` marks unlabelled pixels (loss and
metrics skip them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vsynth.data.formats.io import list_images, load_json, write_json_atomic
from vsynth.data.formats.records import SegDataset, SegSample
from vsynth.errors import DataError


def read_classes_json(path: str | Path) -> tuple[list[str], list[tuple[int, int, int]], int]:
    """(class names, RGB palette, ignore index) from a classes.json."""
    path = Path(path)
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list) or not doc["classes"]:
        raise DataError(f"{path}: needs a non-empty 'classes' list")
    names = [str(n) for n in doc["classes"]]
    palette = doc.get("palette")
    if not isinstance(palette, list) or len(palette) != len(names):
        raise DataError(f"{path}: 'palette' must list one [r, g, b] per class ({len(names)} classes)")
    try:
        colors = [tuple(int(c) for c in rgb) for rgb in palette]
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'palette' entries must be [r, g, b] integers") from None
    if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in colors):
        raise DataError(f"{path}: 'palette' entries must be [r, g, b] with values 0..255")
    ignore = doc.get("ignore_index", 255)
    if not isinstance(ignore, int) or not 0 <= ignore <= 255 or ignore < len(names):
        raise DataError(f"{path}: 'ignore_index' must be an integer in {len(names)}..255, got {ignore!r}")
    return names, colors, ignore  # type: ignore[return-value]


def write_classes_json(path: str | Path, class_names: Sequence[str], palette: Sequence[Sequence[int]], ignore_index: int = 255) -> Path:
    out = Path(path)
    write_json_atomic(out, {"classes": list(class_names), "palette": [list(map(int, c)) for c in palette], "ignore_index": ignore_index})
    return out


def read_seg_folders(img_dir: str | Path, ann_dir: str | Path, classes_json: str | Path, mask_suffix: str = ".png") -> SegDataset:
    """Pair every image in ``img_dir`` with ``ann_dir/<stem><mask_suffix>``; a missing mask is an error."""
    img_dir, ann_dir = Path(img_dir), Path(ann_dir)
    names, palette, ignore = read_classes_json(classes_json)
    if not ann_dir.is_dir():
        raise DataError(f"{ann_dir}: mask folder not found")
    samples = []
    for image in list_images(img_dir):
        mask = ann_dir / f"{image.stem}{mask_suffix}"
        if not mask.is_file():
            raise DataError(f"{mask}: mask missing for image {image}")
        samples.append(SegSample(image=image, label=mask))
    return SegDataset(samples=samples, class_names=names, palette=palette, ignore_index=ignore, source=img_dir)


def read_mask(path: str | Path, num_classes: int | None = None, ignore_index: int = 255) -> np.ndarray:
    """A label mask as (H, W) uint8; with ``num_classes``, values must be classes or ignore."""
    import cv2  # lazy: keeps `import vsynth.data.formats` light

    path = Path(path)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataError(f"{path}: not a readable mask image")
    if mask.ndim != 2:
        raise DataError(f"{path}: mask must be single-channel class indices, got shape {mask.shape}")
    if num_classes is not None:
        bad = np.setdiff1d(np.unique(mask), [*range(num_classes), ignore_index])
        if bad.size:
            raise DataError(f"{path}: mask values {bad.tolist()[:5]} are neither classes 0..{num_classes - 1} nor ignore {ignore_index}")
    return mask


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an (H, W) uint8 mask of class indices as a lossless PNG."""
    import cv2

    path = Path(path)
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"mask must be (H, W) uint8, got {mask.dtype} {mask.shape}")
    if not cv2.imwrite(str(path), mask, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"{path}: could not write mask")


def colorize(mask: np.ndarray, palette: Sequence[Sequence[int]], ignore_color: Sequence[int] = (255, 255, 255)) -> np.ndarray:
    """An RGB picture of a mask, for overlays and sample grids."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = ignore_color
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    return lut[mask]
