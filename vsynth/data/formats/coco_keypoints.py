"""COCO keypoints JSON: reader and writer.

The keypoint schema lives in the category (``keypoints`` names, 1-based ``skeleton``), as in
COCO. vsynth also writes and reads an optional ``flip_idx`` list and ``kpt_oks_sigmas`` (read
also as ``sigmas``) in the category (harmless extensions other tools ignore), so a dataset
carries its own flip map and OKS sigmas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vsynth.data.formats.coco_common import check_refs, image_entries, parse_bbox, parse_categories, parse_images, require_list, xywh
from vsynth.data.formats.io import load_json, write_json_atomic
from vsynth.data.formats.records import KeypointAnnotation, KeypointDataset
from vsynth.data.formats.sigmas import read_oks_sigmas
from vsynth.errors import DataError


def read_coco_keypoints(
    annotation_json: str | Path,
    images_dir: str | Path,
    expected_num_keypoints: int | None = None,
    check_images: bool = True,
) -> KeypointDataset:
    """Read a COCO keypoints file whose ``file_name``s are relative to ``images_dir``.

    Every annotation must carry 3 * K keypoint values for the K names its category declares;
    ``expected_num_keypoints`` additionally pins K (e.g. 24 for the synthetic source).
    """
    path = Path(annotation_json)
    images_dir = Path(images_dir)
    doc = load_json(path)
    images = parse_images(doc, path, images_dir, check_images)
    cats = [c for c in parse_categories(doc, path) if c.get("keypoints")]
    if not cats:
        raise DataError(f"{path}: no category declares 'keypoints' names; this is not a COCO keypoints file")
    names = [str(n) for n in cats[0]["keypoints"]]
    for cat in cats[1:]:
        if [str(n) for n in cat["keypoints"]] != names:
            raise DataError(f"{path}: category '{cat['name']}' declares other keypoint names than '{cats[0]['name']}'")
    k = len(names)
    if expected_num_keypoints is not None and k != expected_num_keypoints:
        raise DataError(f"{path}: category '{cats[0]['name']}' declares {k} keypoints, expected {expected_num_keypoints}")
    cat_ids = {int(c["id"]): str(c["name"]) for c in cats}
    annotations = []
    for n, ann in enumerate(require_list(doc, "annotations", path)):
        image_id, category_id = check_refs(ann, path, n, images, set(cat_ids))
        values = ann.get("keypoints")
        if not isinstance(values, list) or len(values) != 3 * k:
            got = len(values) if isinstance(values, list) else "no"
            raise DataError(
                f"{path}: annotations[{n}] (id {ann.get('id')}) has {got} keypoint values, expected 3*{k} = {3 * k} "
                f"for category '{cat_ids[category_id]}'"
            )
        try:
            kpts = np.asarray(values, dtype=float).reshape(k, 3)
        except (TypeError, ValueError):
            raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has non-numeric keypoints") from None
        if not np.isin(kpts[:, 2], (0, 1, 2)).all():
            raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has visibility flags other than 0/1/2")
        bbox = parse_bbox(ann, path, n)
        annotations.append(
            KeypointAnnotation(
                image_id=image_id,
                category_id=category_id,
                bbox_xywh=bbox,
                keypoints=kpts,
                area=float(ann.get("area", bbox[2] * bbox[3])),
                iscrowd=int(ann.get("iscrowd", 0)),
                id=int(ann.get("id", n + 1)),
            )
        )
    flip_idx = cats[0].get("flip_idx")
    if flip_idx is not None and (not isinstance(flip_idx, list) or len(flip_idx) != k):
        raise DataError(f"{path}: category '{cats[0]['name']}' has a flip_idx that is not a list of {k} indices")
    skeleton = [(int(a) - 1, int(b) - 1) for a, b in cats[0].get("skeleton", [])]
    sigmas = cats[0].get("kpt_oks_sigmas", cats[0].get("sigmas"))
    if sigmas is not None:
        sigmas = read_oks_sigmas(sigmas, k, f"{path}: category '{cats[0]['name']}'")
    return KeypointDataset(
        images=list(images.values()),
        annotations=annotations,
        class_names=[str(c["name"]) for c in cats],
        category_ids=[int(c["id"]) for c in cats],
        keypoint_names=names,
        flip_idx=[int(v) for v in flip_idx] if flip_idx is not None else None,
        skeleton=skeleton,
        source=path,
        oks_sigmas=sigmas,
    )


def write_coco_keypoints(dataset: KeypointDataset, annotation_json: str | Path) -> Path:
    """Write ``dataset`` as COCO keypoints JSON (atomically). Images keep their ``file_name``."""
    categories = []
    for cid, name in zip(dataset.category_ids, dataset.class_names):
        cat = {
            "id": int(cid),
            "name": name,
            "supercategory": name,
            "keypoints": list(dataset.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in dataset.skeleton],
        }
        if dataset.flip_idx is not None:
            cat["flip_idx"] = [int(v) for v in dataset.flip_idx]
        if dataset.oks_sigmas is not None:
            cat["kpt_oks_sigmas"] = [float(v) for v in dataset.oks_sigmas]
        categories.append(cat)
    annotations = []
    for n, ann in enumerate(dataset.annotations):
        kpts = np.asarray(ann.keypoints, dtype=float)
        flat = []
        for x, y, v in kpts:
            flat += [round(float(x), 2), round(float(y), 2), int(v)] if v > 0 else [0, 0, 0]
        annotations.append(
            {
                "id": int(ann.id or n + 1),
                "image_id": int(ann.image_id),
                "category_id": int(ann.category_id),
                "bbox": xywh(ann.bbox_xywh),
                "area": round(float(ann.area), 2),
                "iscrowd": int(ann.iscrowd),
                "keypoints": flat,
                "num_keypoints": ann.num_keypoints,
            }
        )
    out = Path(annotation_json)
    write_json_atomic(out, {"images": image_entries(dataset.images), "annotations": annotations, "categories": categories})
    return out
