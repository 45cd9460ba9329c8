"""Converters between keypoint formats, with a content-keyed cache.

Two uses. Your own COCO keypoints data (train, val and test files) becomes a YOLO-pose dataset
that trains as is: each split converted into the same folder adds itself to one data YAML, which
gets everything training reads (class and keypoint names, flip map, OKS sigmas) from the COCO
category or from options. And a synthetic COCO source with 24 points feeds a YOLO-pose model
trained on the 14-point real schema. `coco_keypoints_to_yolo_pose` maps points
(``keypoint_map``), picks the box (the annotation's box, or a tight box around the labelled
keypoints with padding: synthetic keypoint boxes end at the wheel centres, not the tyre bottoms,
so padding matters), maps visibility, carries the flip map over, and writes a YOLO-pose folder
elsewhere (never into the source). `cached_coco_to_yolo_pose` does that once per distinct
(source file state, options) and reuses the result, so every training run does not reconvert.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from vsynth.data.formats.coco_keypoints import read_coco_keypoints, write_coco_keypoints
from vsynth.data.formats.flip import flip_idx_from_names, validate_flip_idx
from vsynth.data.formats.io import ensure_outside_sources, link_or_copy, write_json_atomic
from vsynth.data.formats.sigmas import read_oks_sigmas
from vsynth.data.formats.yolo_pose import (
    VISIBILITY_MODES,
    data_yaml_doc,
    labels_dir_for,
    merge_data_yaml,
    read_yolo_pose,
    write_yolo_data_yaml,
    yolo_pose_row,
)
from vsynth.errors import ConfigError, DataError

BOX_SOURCES = ("annotation", "keypoints")
LINK_MODES = ("symlink", "hardlink", "copy")
CONVERTER_VERSION = 2  # bump when the output of a conversion changes, to invalidate caches
SPLITS = ("train", "val", "test")  # the splits a data YAML lists


@dataclass(frozen=True)
class ConversionResult:
    """Where a converted YOLO-pose split lives and what went into it."""

    out_dir: Path
    images_dir: Path
    labels_dir: Path
    data_yaml: Path
    num_images: int
    num_objects: int
    num_skipped: int  # crowd annotations, empty boxes, keypoint boxes without labelled points
    kpt_shape: tuple[int, int]
    flip_idx: list[int] | None
    keypoint_names: list[str]
    class_names: list[str] | None = None
    kpt_oks_sigmas: list[float] | None = None
    flip_from: str = ""  # where flip_idx came from: "flip_idx option", "source category", "keypoint names", ""


def _check_options(box_source: str, box_pad: float, visibility: str, link_images: str) -> None:
    if box_source not in BOX_SOURCES:
        raise ConfigError(f"box_source must be one of {list(BOX_SOURCES)}, got {box_source!r}")
    if not 0.0 <= box_pad <= 1.0:
        raise ConfigError(f"box_pad is a fraction of the box size per side, 0..1, got {box_pad!r}")
    if visibility not in VISIBILITY_MODES:
        raise ConfigError(f"visibility must be one of {list(VISIBILITY_MODES)}, got {visibility!r}")
    if link_images not in LINK_MODES:
        raise ConfigError(f"link_images must be one of {list(LINK_MODES)}, got {link_images!r}")


def _mapped_flip(src_flip: Sequence[int] | None, keypoint_map: list[int]) -> list[int] | None:
    """The source flip map restricted to the mapped points (each point's partner must be kept)."""
    if src_flip is None:
        return None
    out = []
    for k, src in enumerate(keypoint_map):
        partner = src_flip[src]
        if partner not in keypoint_map:
            raise ConfigError(
                f"keypoint_map keeps source point {src} (output {k}) but drops its flip partner {partner}; "
                "keep both or pass flip_idx explicitly"
            )
        out.append(keypoint_map.index(partner))
    return out


def keypoint_box(kpts: np.ndarray, pad: float, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Tight box (x, y, w, h) around labelled points inside the image, grown by ``pad`` of its
    size on every side and clipped; None without labelled points."""
    labelled = kpts[(kpts[:, 2] > 0) & (kpts[:, 0] >= 0) & (kpts[:, 0] <= width) & (kpts[:, 1] >= 0) & (kpts[:, 1] <= height)]
    if not len(labelled):
        return None
    x0, y0 = labelled[:, 0].min(), labelled[:, 1].min()
    x1, y1 = labelled[:, 0].max(), labelled[:, 1].max()
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    x0, y0 = max(0.0, x0 - dx), max(0.0, y0 - dy)
    x1, y1 = min(float(width), x1 + dx), min(float(height), y1 + dy)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def coco_keypoints_to_yolo_pose(
    annotation_json: str | Path,
    images_dir: str | Path,
    out_dir: str | Path,
    split: str = "train",
    keypoint_map: Sequence[int] | None = None,
    box_source: str = "annotation",
    box_pad: float = 0.0,
    visibility: str = "keep",
    flip_idx: Sequence[int] | None = None,
    kpt_oks_sigmas: Sequence[float] | None = None,
    link_images: str = "symlink",
    kpt_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    overwrite: bool = False,
    _yaml_root: Path | None = None,
) -> ConversionResult:
    """Convert one COCO keypoints split into ``out_dir/{images,labels}/<split>`` + ``data.yaml``.

    ``keypoint_map[k]`` is the source index written as output point k (default: all points);
    ``box_source`` 'annotation' keeps the COCO box, 'keypoints' uses the tight keypoint box
    grown by ``box_pad``; ``visibility`` 'keep' writes COCO's 0/1/2, 'binary' writes 0/1.
    The data YAML gets what training reads, each from the option if given (in output point
    order), else from the source category: ``kpt_names`` (the category's ``keypoints``),
    ``class_names`` (the category names), ``kpt_oks_sigmas`` (``kpt_oks_sigmas``/``sigmas``) and
    ``flip_idx`` (the category's ``flip_idx``, else the left/right pairs the keypoint names spell
    out); the flip map is validated. A data YAML already in ``out_dir`` (another split converted
    earlier) keeps its splits and must hold the same schema (DataError otherwise); converting a
    split that is already there needs ``overwrite``, which replaces that split's folders.
    Nothing is written when a check fails. Images are symlinked by default (no pixel copies).
    """
    _check_options(box_source, box_pad, visibility, link_images)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {list(SPLITS)} (the splits a data YAML lists), got {split!r}")
    annotation_json, images_dir, out_dir = Path(annotation_json), Path(images_dir), Path(out_dir)
    ensure_outside_sources(out_dir, {"images folder": images_dir, "annotation folder": annotation_json.parent})
    ds = read_coco_keypoints(annotation_json, images_dir)
    k_src = ds.num_keypoints
    kmap = list(range(k_src)) if keypoint_map is None else [int(v) for v in keypoint_map]
    bad = [v for v in kmap if not 0 <= v < k_src]
    if bad or not kmap or len(set(kmap)) != len(kmap):
        raise ConfigError(f"keypoint_map {kmap} must list distinct source indices in 0..{k_src - 1} ({annotation_json})")
    names = _given(kpt_names, len(kmap), "kpt_names", "keypoints") or [ds.keypoint_names[i] for i in kmap]
    classes = _given(class_names, len(ds.class_names), "class_names", f"categories of {annotation_json}") or ds.class_names
    if kpt_oks_sigmas is not None:
        sigmas = read_oks_sigmas(list(kpt_oks_sigmas), len(kmap), "kpt_oks_sigmas", error=ConfigError)
    else:
        sigmas = [ds.oks_sigmas[i] for i in kmap] if ds.oks_sigmas is not None else None
    out_flip, flip_from = _output_flip(flip_idx, ds.flip_idx, kmap, names)
    yaml_root = _yaml_root or out_dir
    new_doc = data_yaml_doc(yaml_root, {split: f"images/{split}"}, classes, (len(kmap), 3), out_flip, names, sigmas)
    doc = merge_data_yaml(out_dir / "data.yaml", new_doc, replace_splits=overwrite)

    out_images = out_dir / "images" / split
    out_labels = labels_dir_for(out_images)
    for folder in (out_images, out_labels):
        if folder.is_dir() and any(folder.iterdir()):
            if not overwrite:
                raise DataError(f"{folder}: not empty (split '{split}' converted before?); pass --overwrite to replace it")
            shutil.rmtree(folder)
    out_images.mkdir(parents=True, exist_ok=True)
    out_labels.mkdir(parents=True, exist_ok=True)
    class_of = {cid: i for i, cid in enumerate(ds.category_ids)}
    by_image = ds.annotations_by_image()
    n_objects = n_skipped = 0
    for image in ds.images:
        target = out_images / image.file_name.replace("/", "__")
        link_or_copy(image.path, target, link_images)
        rows = []
        for ann in by_image.get(image.id, []):
            if ann.iscrowd:
                n_skipped += 1
                continue
            if box_source == "keypoints":
                box = keypoint_box(ann.keypoints[kmap], box_pad, image.width, image.height)
                if box is None:
                    n_skipped += 1
                    continue
                ann = replace(ann, bbox_xywh=box)
            row = yolo_pose_row(ann, class_of[ann.category_id], image.width, image.height, kmap, visibility)
            if row is None:
                n_skipped += 1
                continue
            rows.append(row)
        (out_labels / f"{target.stem}.txt").write_text("".join(r + "\n" for r in rows))
        n_objects += len(rows)
    data_yaml = write_yolo_data_yaml(out_dir / "data.yaml", doc)
    return ConversionResult(
        out_dir=yaml_root,
        images_dir=yaml_root / "images" / split,
        labels_dir=yaml_root / "labels" / split,
        data_yaml=yaml_root / data_yaml.name,
        num_images=len(ds.images),
        num_objects=n_objects,
        num_skipped=n_skipped,
        kpt_shape=(len(kmap), 3),
        flip_idx=out_flip,
        keypoint_names=names,
        class_names=list(classes),
        kpt_oks_sigmas=sigmas,
        flip_from=flip_from,
    )


def _given(values: Sequence[str] | None, expected: int, option: str, what: str) -> list[str] | None:
    """An option's list of names, which must have one entry per output point / class."""
    if values is None:
        return None
    out = [str(v).strip() for v in values]
    if len(out) != expected or not all(out):
        raise ConfigError(f"{option}: {len(out)} names given for {expected} {what}: {out}")
    return out


def _output_flip(
    flip_idx: Sequence[int] | None, src_flip: Sequence[int] | None, kmap: list[int], names: list[str]
) -> tuple[list[int] | None, str]:
    """(the output flip map, where it came from); validated against the output names."""
    if flip_idx is not None:
        flip, origin = [int(v) for v in flip_idx], "flip_idx option"
    elif src_flip is not None:
        flip, origin = _mapped_flip(src_flip, kmap), "source category"
    else:
        flip, origin = flip_idx_from_names(names), "keypoint names"
    if flip is None:
        return None, ""
    validate_flip_idx(flip, len(kmap), names)
    return flip, origin


def conversion_key(annotation_json: Path, images_dir: Path, split: str, options: dict) -> str:
    """Hash of what a conversion depends on: the source file's path, size and mtime, the images
    folder, the split, the options and the converter version."""
    st = annotation_json.stat()
    payload = {
        "json": str(annotation_json.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "images_dir": str(images_dir.resolve()),
        "split": split,
        "options": options,
        "version": CONVERTER_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cached_coco_to_yolo_pose(
    annotation_json: str | Path,
    images_dir: str | Path,
    cache_dir: str | Path,
    split: str = "train",
    keypoint_map: Sequence[int] | None = None,
    box_source: str = "annotation",
    box_pad: float = 0.0,
    visibility: str = "keep",
    flip_idx: Sequence[int] | None = None,
    kpt_oks_sigmas: Sequence[float] | None = None,
    link_images: str = "symlink",
) -> ConversionResult:
    """`coco_keypoints_to_yolo_pose` into ``cache_dir/<json stem>-<split>-<key>``, done once.

    The key changes when the source JSON changes (size/mtime) or any option does. Conversion
    happens in a temporary folder renamed into place, so concurrent runs never see half a
    conversion; the loser of a race discards its copy and uses the winner's.
    """
    annotation_json, images_dir, cache_dir = Path(annotation_json), Path(images_dir), Path(cache_dir)
    _check_options(box_source, box_pad, visibility, link_images)
    if not annotation_json.is_file():
        read_coco_keypoints(annotation_json, images_dir)  # raises the one-line DataError
    options = {
        "keypoint_map": None if keypoint_map is None else [int(v) for v in keypoint_map],
        "box_source": box_source,
        "box_pad": float(box_pad),
        "visibility": visibility,
        "flip_idx": None if flip_idx is None else [int(v) for v in flip_idx],
        "kpt_oks_sigmas": None if kpt_oks_sigmas is None else [float(v) for v in kpt_oks_sigmas],
        "link_images": link_images,
    }
    key = conversion_key(annotation_json, images_dir, split, options)
    final = cache_dir / f"{annotation_json.stem}-{split}-{key[:16]}"
    record = final / "conversion.json"
    if record.is_file():
        return _load_result(record)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        result = coco_keypoints_to_yolo_pose(annotation_json, images_dir, tmp, split, _yaml_root=final.absolute(), **options)
        write_json_atomic(tmp / "conversion.json", _dump_result(result))
        try:
            os.rename(tmp, final)
        except OSError:
            if not record.is_file():  # not a lost race: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_result(record)


def _dump_result(result: ConversionResult) -> dict:
    doc = asdict(result)
    for k, v in doc.items():
        if isinstance(v, Path):
            doc[k] = str(v)
    return doc


def _load_result(record: Path) -> ConversionResult:
    doc = json.loads(record.read_text())
    for k in ("out_dir", "images_dir", "labels_dir", "data_yaml"):
        doc[k] = Path(doc[k])
    doc["kpt_shape"] = tuple(doc["kpt_shape"])
    return ConversionResult(**doc)


def yolo_pose_to_coco_keypoints(data_yaml: str | Path, split: str, out_json: str | Path, area_factor: float = 0.53) -> Path:
    """Write a YOLO-pose split as COCO keypoints (e.g. ground truth for pycocotools OKS).

    YOLO labels carry no object area; COCO's OKS needs one, so ``area`` = box area x
    ``area_factor`` (0.53 is the factor ultralytics uses for the same purpose). ``file_name``s
    are relative to the split's images folder.
    """
    ds = read_yolo_pose(data_yaml, split)
    out_json = Path(out_json)
    ensure_outside_sources(out_json.parent, {"images folder": ds.source, "labels folder": labels_dir_for(ds.source)})
    ds.category_ids = [i + 1 for i in range(len(ds.class_names))]
    for n, ann in enumerate(ds.annotations, start=1):
        ann.category_id += 1
        ann.id = n
        ann.area = float(ann.bbox_xywh[2] * ann.bbox_xywh[3] * area_factor)
    return write_coco_keypoints(ds, out_json)

