"""Parsing shared by the COCO keypoint and detection readers: the ``images`` and ``categories``
sections, with every problem reported as one DataError line naming the file and the entry."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vsynth.data.formats.records import ImageRecord
from vsynth.errors import DataError


def require_list(doc: Any, key: str, path: Path) -> list:
    if not isinstance(doc, dict):
        raise DataError(f"{path}: top level must be a JSON object with 'images', 'annotations', 'categories'")
    value = doc.get(key)
    if not isinstance(value, list):
        raise DataError(f"{path}: missing '{key}' list")
    return value


def parse_images(doc: dict, path: Path, images_dir: Path, check_images: bool) -> dict[int, ImageRecord]:
    """``images`` entries -> records keyed by id; optionally every file must exist on disk."""
    rows = []
    for n, entry in enumerate(require_list(doc, "images", path)):
        try:
            image_id, file_name = int(entry["id"]), str(entry["file_name"])
            width, height = int(entry["width"]), int(entry["height"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: images[{n}] needs integer 'id', 'width', 'height' and a 'file_name'") from None
        rows.append((image_id, file_name, width, height))
    return image_records(rows, path, images_dir, check_images)


def image_records(
    rows: Iterable[tuple[int, str, int, int]], path: Path, images_dir: Path, check_images: bool
) -> dict[int, ImageRecord]:
    """Records keyed by id from ``(id, file_name, width, height)`` rows (the ``images`` entries, in
    order): ids must be unique and, with ``check_images``, every file must exist."""
    present = _files_in(images_dir) if check_images else set()
    images: dict[int, ImageRecord] = {}
    missing: list[str] = []
    for n, (image_id, file_name, width, height) in enumerate(rows):
        if image_id in images:
            raise DataError(f"{path}: images[{n}] repeats image id {image_id}")
        image_path = images_dir / file_name
        if check_images and file_name not in present and not image_path.is_file():
            missing.append(file_name)
        images[image_id] = ImageRecord(path=image_path, width=width, height=height, id=image_id, file_name=file_name)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{path}: image '{missing[0]}'{more} listed but not found in {images_dir}")
    return images


def _files_in(folder: Path) -> set[str]:
    """Names of the files (or links to files) directly in ``folder``: one directory scan instead of
    a stat per image (135k images: ~0.05 s instead of ~1 s); other names are checked one by one."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_file()}
    except OSError:
        return set()


def parse_categories(doc: dict, path: Path) -> list[dict]:
    cats = require_list(doc, "categories", path)
    seen = set()
    for n, cat in enumerate(cats):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DataError(f"{path}: categories[{n}] needs an 'id' and a 'name'")
        if cat["id"] in seen:
            raise DataError(f"{path}: categories[{n}] repeats category id {cat['id']}")
        seen.add(cat["id"])
    if not cats:
        raise DataError(f"{path}: 'categories' is empty")
    return cats


def parse_bbox(ann: dict, path: Path, n: int) -> tuple[float, float, float, float]:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) needs a 'bbox' of 4 numbers [x, y, w, h]")
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has a non-numeric bbox {bbox}") from None
    if w < 0 or h < 0:
        raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has a negative bbox size {bbox}")
    return x, y, w, h


def check_refs(ann: dict, path: Path, n: int, images: dict[int, ImageRecord], category_ids: set[int]) -> tuple[int, int]:
    """(image_id, category_id) of an annotation, both required to exist."""
    try:
        image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: annotations[{n}] needs integer 'image_id' and 'category_id'") from None
    if image_id not in images:
        raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) refers to image id {image_id}, which is not in 'images'")
    if category_id not in category_ids:
        raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has category_id {category_id}, not in 'categories'")
    return image_id, category_id


def image_entries(images: list[ImageRecord]) -> list[dict]:
    return [{"id": im.id, "file_name": im.file_name or im.path.name, "width": im.width, "height": im.height} for im in images]


def xywh(bbox: tuple[float, float, float, float]) -> list[float]:
    return [round(float(v), 3) for v in bbox]
