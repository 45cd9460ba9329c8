"""COCO detection JSON with an images folder of any name: reader and writer.

The reader takes the images folder and the annotation file explicitly, because real datasets
name their folders anything (``frames/``, ``train2017/``, ``CAM_FRONT/``...).

Degenerate boxes have one policy, here, for training (``tasks/detection/data.py``) and for
``python -m vsynth.data check coco-detection``: a box that is non-finite, of zero or negative size,
or entirely outside its image is dropped, one sticking out is clipped, with one warning per file
giving the counts; a file left with no box is an error (:func:`clean_box`, :func:`box_summary`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vsynth.data.formats.coco_common import check_refs, image_entries, parse_bbox, parse_categories, parse_images, require_list, xywh
from vsynth.data.formats.io import load_json, write_json_atomic
from vsynth.errors import DataError
from vsynth.data.formats.records import BoxAnnotation, DetectionDataset


def clean_box(bbox: Any, width: int, height: int) -> tuple[np.ndarray | None, bool]:
    """COCO ``[x, y, w, h]`` -> clipped xyxy, or None if degenerate; second value: was it clipped."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None, False
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None, False
    x1, y1, x2, y2 = x, y, x + w, y + h
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:  # entirely outside the image
        return None, False
    clipped = (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
    return np.array([cx1, cy1, cx2, cy2], dtype=np.float64), clipped


def box_summary(path: Path, total: int, dropped: int, clipped: int, key: str) -> str | None:
    """The warning line for a file's dropped and clipped boxes (None: all clean); raises when none is left."""
    kept = total - dropped
    if kept == 0:
        what = f"all {total} boxes are degenerate" if total else "no annotations"
        raise DataError(f"{path}: {what} ({key}); nothing to train or evaluate on")
    if dropped or clipped:
        return (f"{path}: dropped {dropped} degenerate box(es) (zero/negative size or outside the image), clipped "
                f"{clipped} box(es) to the image; {kept} of {total} boxes kept ({key})")
    return None


def read_coco_detection(images_dir: str | Path, annotation_json: str | Path, check_images: bool = True,
                        boxes: str = "strict") -> DetectionDataset:
    """Read boxes and categories; class order is the order of ``categories`` in the file.

    ``boxes="strict"``: a box of negative size is an error. ``boxes="clean"``: training's policy
    (module docstring), the counts in ``dropped`` and ``clipped`` of the dataset, boxes clipped.
    """
    path = Path(annotation_json)
    doc = load_json(path)
    images = parse_images(doc, path, Path(images_dir), check_images)
    cats = parse_categories(doc, path)
    cat_ids = {int(c["id"]) for c in cats}
    annotations = []
    dropped = clipped = 0
    for n, ann in enumerate(require_list(doc, "annotations", path)):
        image_id, category_id = check_refs(ann, path, n, images, cat_ids)
        if boxes == "clean":
            rec = images[image_id]
            box, was_clipped = clean_box(ann.get("bbox"), rec.width, rec.height)
            if box is None:
                dropped += 1
                continue
            clipped += was_clipped
            bbox = (float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1]))
        else:
            bbox = parse_bbox(ann, path, n)
        annotations.append(
            BoxAnnotation(
                image_id=image_id,
                category_id=category_id,
                bbox_xywh=bbox,
                area=float(ann.get("area", bbox[2] * bbox[3])),
                iscrowd=int(ann.get("iscrowd", 0)),
                id=int(ann.get("id", n + 1)),
            )
        )
    return DetectionDataset(
        images=list(images.values()),
        annotations=annotations,
        class_names=[str(c["name"]) for c in cats],
        category_ids=[int(c["id"]) for c in cats],
        source=path,
        dropped=dropped,
        clipped=clipped,
    )


def write_coco_detection(dataset: DetectionDataset, annotation_json: str | Path) -> Path:
    """Write ``dataset`` as COCO detection JSON (atomically)."""
    categories = [{"id": int(cid), "name": name, "supercategory": name} for cid, name in zip(dataset.category_ids, dataset.class_names)]
    annotations = [
        {
            "id": int(ann.id or n + 1),
            "image_id": int(ann.image_id),
            "category_id": int(ann.category_id),
            "bbox": xywh(ann.bbox_xywh),
            "area": round(float(ann.area), 2),
            "iscrowd": int(ann.iscrowd),
        }
        for n, ann in enumerate(dataset.annotations)
    ]
    out = Path(annotation_json)
    write_json_atomic(out, {"images": image_entries(dataset.images), "annotations": annotations, "categories": categories})
    return out
