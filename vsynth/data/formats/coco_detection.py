"""COCO detection JSON with an images folder of any name: reader and writer.

The reader takes the images folder and the annotation file explicitly, because real datasets
name their folders anything (``frames/``, ``train2017/``, ``CAM_FRONT/``...).
"""

from __future__ import annotations

from pathlib import Path

from vsynth.data.formats.coco_common import check_refs, image_entries, parse_bbox, parse_categories, parse_images, require_list, xywh
from vsynth.data.formats.io import load_json, write_json_atomic
from vsynth.data.formats.records import BoxAnnotation, DetectionDataset


def read_coco_detection(images_dir: str | Path, annotation_json: str | Path, check_images: bool = True) -> DetectionDataset:
    """Read boxes and categories; class order is the order of ``categories`` in the file."""
    path = Path(annotation_json)
    doc = load_json(path)
    images = parse_images(doc, path, Path(images_dir), check_images)
    cats = parse_categories(doc, path)
    cat_ids = {int(c["id"]) for c in cats}
    annotations = []
    for n, ann in enumerate(require_list(doc, "annotations", path)):
        image_id, category_id = check_refs(ann, path, n, images, cat_ids)
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
