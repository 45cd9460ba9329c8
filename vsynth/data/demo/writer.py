"""Write the demo world to disk in the formats vsynth reads, with a stable layout::

    ROOT/meta.json                                   params, counts, schema, layout, version
    ROOT/keypoints/real/images/<split>/*.jpg         YOLO-pose, 14 points, triangulation-like labels
    ROOT/keypoints/real/labels/<split>/*.txt
    ROOT/keypoints/real/data.yaml                    absolute path, kpt_shape [14, 3], flip_idx, names,
                                                     kpt_names, kpt_oks_sigmas
    ROOT/keypoints/synthetic/images/<split>/*.jpg    COCO keypoints, 24 points, exact
    ROOT/keypoints/synthetic/annotations/<split>.json
    ROOT/keypoints/generated/images/<split>/*.jpg    style-shifted real images
    ROOT/keypoints/generated/labels/<split>/*.txt    copies of the source labels (misaligned by the warp)
    ROOT/keypoints/generated/manifest.csv
    ROOT/detection/real/frames/<split>/*.jpg         COCO detection, 7 classes, loose boxes
    ROOT/detection/real/annotations/instances_<split>.json
    ROOT/detection/synthetic/renders/<split>/*.jpg   exact boxes
    ROOT/detection/synthetic/annotations/instances_<split>.json
    ROOT/detection/generated/images/<split>/*.jpg + annotations/instances_<split>.json + manifest.csv
    ROOT/segmentation/<real|synthetic>/img_dir/<split>/*.jpg
    ROOT/segmentation/<real|synthetic>/ann_dir/<split>/*.png            SEG_CLASSES, 255 = ignore
    ROOT/segmentation/<real|synthetic>/ann_dir_sidewalk/<split>/*.png   background / sidewalk
    ROOT/segmentation/<real|synthetic>/classes.json, classes_sidewalk.json
    ROOT/segmentation/generated/images/<split>/*.jpg + manifest.csv + manifest_sidewalk.csv

The image folders of detection are deliberately not called ``images`` (``frames``, ``renders``):
the detection reader takes folders explicitly, and the demo exercises that. Generated images
exist only for splits whose real counterpart is non-empty; generated image ``i`` comes from real
image ``i mod n_real`` of the same split. Manifest paths are relative to the manifest.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vsynth import __version__
from vsynth.data.demo.domains import DOMAINS, GENERATOR_NAME
from vsynth.data.demo.effects import NO_EFFECTS, Effects
from vsynth.data.demo.schema import (
    DETECTION_CLASSES,
    FLIP_IDX_14,
    FLIP_IDX_24,
    IGNORE_INDEX,
    KEYPOINT_CATEGORY,
    KEYPOINT_NAMES_14,
    KEYPOINT_NAMES_24,
    KPT_OKS_SIGMAS_14,
    KPT_OKS_SIGMAS_24,
    SEG_CLASSES,
    SEG_PALETTE,
    SIDEWALK_CLASSES,
    SIDEWALK_PALETTE,
    SKELETON_24,
    sidewalk_lut,
)
from vsynth.data.demo.world import SPLITS, TASKS, generated_condition, render_sample, stylize_sample
from vsynth.data.formats.coco_detection import write_coco_detection
from vsynth.data.formats.coco_keypoints import write_coco_keypoints
from vsynth.data.formats.io import write_json_atomic
from vsynth.data.formats.manifest import write_manifest
from vsynth.data.formats.records import BoxAnnotation, DetectionDataset, GeneratedRow, ImageRecord, KeypointAnnotation, KeypointDataset
from vsynth.data.formats.seg_folders import write_classes_json, write_mask
from vsynth.data.formats.yolo_pose import data_yaml_doc, write_yolo_data_yaml, yolo_pose_row
from vsynth.errors import ConfigError

DEMO_VERSION = 1  # bump whenever the rendered content or the layout changes (invalidates caches)
DEFAULT_SIZE = (320, 240)
DEFAULT_IMAGES = 200  # real train images per task when no counts are given
_PREFIX = {"real": "real", "synthetic": "syn"}
DETECTION_IMAGE_FOLDERS = {"real": "frames", "synthetic": "renders", "generated": "images"}

Log = Callable[[str], None]
Counts = dict[str, dict[str, int]]


def default_counts(n: int) -> Counts:
    """Counts for ``--images N``: N real train images, a quarter for val, half for test; as many
    synthetic (train + val) and generated (train) images."""
    quarter, half = max(1, n // 4), max(1, n // 2)
    return {"real": {"train": n, "val": quarter, "test": half}, "synthetic": {"train": n, "val": quarter}, "generated": {"train": n}}


def normalize_counts(counts: dict) -> Counts:
    """Validate ``{domain: {split: n}}``; unknown names, negative counts and generated images
    without real images of the same split are ConfigErrors."""
    if not isinstance(counts, dict):
        raise ConfigError(f"counts must be a mapping of domain to {{split: n}}, got {counts!r}")
    out: Counts = {}
    for domain, splits in counts.items():
        if domain not in DOMAINS:
            raise ConfigError(f"counts: unknown domain {domain!r}, expected one of {list(DOMAINS)}")
        if not isinstance(splits, dict):
            raise ConfigError(f"counts.{domain} must be a mapping of split to image count")
        for split, n in splits.items():
            if split not in SPLITS:
                raise ConfigError(f"counts.{domain}: unknown split {split!r}, expected one of {list(SPLITS)}")
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ConfigError(f"counts.{domain}.{split} must be a non-negative integer, got {n!r}")
        out[domain] = {s: int(splits[s]) for s in SPLITS if s in splits}
    for split, n in out.get("generated", {}).items():
        if n and not out.get("real", {}).get(split):
            raise ConfigError(f"counts.generated.{split} = {n} needs real {split} images to transfer from (counts.real.{split} is 0)")
    return out


def _imwrite(path: Path, image: np.ndarray, quality: int) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
        raise OSError(f"{path}: could not write image")


def _splits(counts: Counts, domain: str) -> list[tuple[str, int]]:
    return [(s, n) for s, n in counts.get(domain, {}).items() if n > 0]


def _xywh(box: np.ndarray) -> tuple[float, float, float, float]:
    return float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])


def _write_generated(
    task: str, seed: int, split: str, n: int, sources: list[Path], out_images: Path, log: Log | None,
    effects: Effects = NO_EFFECTS,
) -> list[tuple[Path, Path, str]]:
    """Style-transfer ``n`` copies of the ``sources`` (cycled); returns (generated, source, condition)."""
    out_images.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n):
        src = sources[i % len(sources)]
        condition = generated_condition(i, len(sources))
        image = stylize_sample(cv2.imread(str(src), cv2.IMREAD_COLOR), task, seed, split, i, condition, effects)
        target = out_images / f"gen_{split}_{i:06d}.jpg"
        _imwrite(target, image, 90)
        made.append((target, src, condition))
    if log:
        log(f"{task}/generated/{split}: {n} images")
    return made


def write_keypoints(base: Path, final_base: Path, seed: int, counts: Counts, size: tuple[int, int], log: Log | None = None,
                    effects: Effects = NO_EFFECTS) -> dict:
    """Real (YOLO-pose, 14 points), synthetic (COCO, 24 points) and generated keypoint data."""
    width, height = size
    real_sources: dict[str, list[tuple[Path, Path]]] = {}
    for split, n in _splits(counts, "real"):
        images, labels = base / "real" / "images" / split, base / "real" / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        real_sources[split] = []
        for i in range(n):
            sample = render_sample("keypoints", "real", seed, split, i, size)
            stem = f"real_{split}_{i:06d}"
            _imwrite(images / f"{stem}.jpg", sample.image, sample.jpeg_quality)
            rows = []
            for obj in sample.objects:
                ann = KeypointAnnotation(image_id=i, category_id=0, bbox_xywh=_xywh(obj.bbox), keypoints=obj.keypoints, area=0.0)
                row = yolo_pose_row(ann, 0, width, height)
                if row is not None:
                    rows.append(row)
            (labels / f"{stem}.txt").write_text("".join(r + "\n" for r in rows))
            real_sources[split].append((images / f"{stem}.jpg", labels / f"{stem}.txt"))
        if log:
            log(f"keypoints/real/{split}: {n} images")
    if real_sources:
        doc = data_yaml_doc(
            final_base / "real",
            {split: f"images/{split}" for split in real_sources},
            [KEYPOINT_CATEGORY],
            (14, 3),
            FLIP_IDX_14,
            KEYPOINT_NAMES_14,
            KPT_OKS_SIGMAS_14,
        )
        write_yolo_data_yaml(base / "real" / "data.yaml", doc)
    for split, n in _splits(counts, "synthetic"):
        images = base / "synthetic" / "images" / split
        images.mkdir(parents=True, exist_ok=True)
        records, annotations = [], []
        for i in range(n):
            sample = render_sample("keypoints", "synthetic", seed, split, i, size, effects)
            name = f"syn_{split}_{i:06d}.jpg"
            _imwrite(images / name, sample.image, sample.jpeg_quality)
            records.append(ImageRecord(path=images / name, width=width, height=height, id=i + 1, file_name=name))
            for obj in sample.objects:
                annotations.append(
                    KeypointAnnotation(
                        image_id=i + 1, category_id=1, bbox_xywh=_xywh(obj.bbox), keypoints=obj.keypoints,
                        area=float(obj.area), id=len(annotations) + 1,
                    )
                )
        dataset = KeypointDataset(
            images=records, annotations=annotations, class_names=[KEYPOINT_CATEGORY], category_ids=[1],
            keypoint_names=KEYPOINT_NAMES_24, flip_idx=FLIP_IDX_24, skeleton=SKELETON_24,
        )
        write_coco_keypoints(dataset, base / "synthetic" / "annotations" / f"{split}.json")
        if log:
            log(f"keypoints/synthetic/{split}: {n} images")
    rows: list[GeneratedRow] = []
    for split, n in _splits(counts, "generated"):
        sources = dict(real_sources[split])
        made = _write_generated("keypoints", seed, split, n, list(sources), base / "generated" / "images" / split, log,
                                effects)
        labels = base / "generated" / "labels" / split
        labels.mkdir(parents=True, exist_ok=True)
        for generated, src, condition in made:
            shutil.copyfile(sources[src], labels / f"{generated.stem}.txt")
            rows.append(GeneratedRow(generated, src, sources[src], condition, GENERATOR_NAME))
    if rows:
        write_manifest(rows, base / "generated" / "manifest.csv")
    return {
        "real": {"format": "yolo-pose", "data_yaml": "keypoints/real/data.yaml", "kpt_shape": [14, 3]},
        "synthetic": {"format": "coco-keypoints", "images": "keypoints/synthetic/images/<split>",
                      "annotations": "keypoints/synthetic/annotations/<split>.json", "num_keypoints": 24},
        "generated": {"format": "yolo-pose folders + manifest", "manifest": "keypoints/generated/manifest.csv"},
    }


def write_detection(base: Path, final_base: Path, seed: int, counts: Counts, size: tuple[int, int], log: Log | None = None,
                    effects: Effects = NO_EFFECTS) -> dict:
    """COCO detection for real (loose boxes), synthetic (exact boxes) and generated images."""
    width, height = size
    category_ids = list(range(1, len(DETECTION_CLASSES) + 1))
    cat_of = {name: i + 1 for i, name in enumerate(DETECTION_CLASSES)}
    real_sets: dict[str, DetectionDataset] = {}
    for domain in ("real", "synthetic"):
        for split, n in _splits(counts, domain):
            images = base / domain / DETECTION_IMAGE_FOLDERS[domain] / split
            images.mkdir(parents=True, exist_ok=True)
            records, annotations = [], []
            for i in range(n):
                sample = render_sample("detection", domain, seed, split, i, size)
                name = f"{_PREFIX[domain]}_{split}_{i:06d}.jpg"
                _imwrite(images / name, sample.image, sample.jpeg_quality)
                records.append(ImageRecord(path=images / name, width=width, height=height, id=i + 1, file_name=name))
                for obj in sample.objects:
                    box = _xywh(obj.bbox)
                    annotations.append(
                        BoxAnnotation(image_id=i + 1, category_id=cat_of[obj.kind], bbox_xywh=box, area=box[2] * box[3], id=len(annotations) + 1)
                    )
            dataset = DetectionDataset(records, annotations, list(DETECTION_CLASSES), category_ids)
            write_coco_detection(dataset, base / domain / "annotations" / f"instances_{split}.json")
            if domain == "real":
                real_sets[split] = dataset
            if log:
                log(f"detection/{domain}/{split}: {n} images")
    rows: list[GeneratedRow] = []
    for split, n in _splits(counts, "generated"):
        source = real_sets[split]
        by_image = source.annotations_by_image()
        made = _write_generated("detection", seed, split, n, [im.path for im in source.images],
                                base / "generated" / "images" / split, log, effects)
        records, annotations = [], []
        src_json = base / "real" / "annotations" / f"instances_{split}.json"
        for i, (generated, src, condition) in enumerate(made):
            src_record = source.images[i % len(source.images)]
            records.append(ImageRecord(path=generated, width=width, height=height, id=i + 1, file_name=generated.name))
            for ann in by_image.get(src_record.id, []):
                annotations.append(BoxAnnotation(i + 1, ann.category_id, ann.bbox_xywh, ann.area, 0, len(annotations) + 1))
            rows.append(GeneratedRow(generated, src, src_json, condition, GENERATOR_NAME))
        write_coco_detection(
            DetectionDataset(records, annotations, list(DETECTION_CLASSES), category_ids),
            base / "generated" / "annotations" / f"instances_{split}.json",
        )
    if rows:
        write_manifest(rows, base / "generated" / "manifest.csv")
    return {
        domain: {"format": "coco-detection", "images": f"detection/{domain}/{folder}/<split>",
                 "annotations": f"detection/{domain}/annotations/instances_<split>.json"}
        for domain, folder in DETECTION_IMAGE_FOLDERS.items()
    }


def write_segmentation(base: Path, final_base: Path, seed: int, counts: Counts, size: tuple[int, int],
                       log: Log | None = None, effects: Effects = NO_EFFECTS) -> dict:
    """Image/mask folders (full classes and the 2-class sidewalk variant) + generated manifests."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[: len(SEG_CLASSES)] = sidewalk_lut()
    real_pairs: dict[str, list[tuple[Path, Path, Path]]] = {}
    for domain in ("real", "synthetic"):
        splits = _splits(counts, domain)
        if not splits:
            continue
        root = base / domain
        write_classes_json(root / "classes.json", SEG_CLASSES, SEG_PALETTE, IGNORE_INDEX)
        write_classes_json(root / "classes_sidewalk.json", SIDEWALK_CLASSES, SIDEWALK_PALETTE, IGNORE_INDEX)
        for split, n in splits:
            dirs = [root / "img_dir" / split, root / "ann_dir" / split, root / "ann_dir_sidewalk" / split]
            for d in dirs:
                d.mkdir(parents=True, exist_ok=True)
            pairs = []
            for i in range(n):
                sample = render_sample("segmentation", domain, seed, split, i, size)
                stem = f"{_PREFIX[domain]}_{split}_{i:06d}"
                image, mask, sidewalk = dirs[0] / f"{stem}.jpg", dirs[1] / f"{stem}.png", dirs[2] / f"{stem}.png"
                _imwrite(image, sample.image, sample.jpeg_quality)
                write_mask(mask, sample.semantic)
                write_mask(sidewalk, lut[sample.semantic])
                pairs.append((image, mask, sidewalk))
            if domain == "real":
                real_pairs[split] = pairs
            if log:
                log(f"segmentation/{domain}/{split}: {n} images")
    full: list[GeneratedRow] = []
    sidewalk_rows: list[GeneratedRow] = []
    for split, n in _splits(counts, "generated"):
        pairs = real_pairs[split]
        labels = {image: (mask, side) for image, mask, side in pairs}
        made = _write_generated("segmentation", seed, split, n, [p[0] for p in pairs],
                                base / "generated" / "images" / split, log, effects)
        for generated, src, condition in made:
            full.append(GeneratedRow(generated, src, labels[src][0], condition, GENERATOR_NAME))
            sidewalk_rows.append(GeneratedRow(generated, src, labels[src][1], condition, GENERATOR_NAME))
    if full:
        write_manifest(full, base / "generated" / "manifest.csv")
        write_manifest(sidewalk_rows, base / "generated" / "manifest_sidewalk.csv")
    return {
        domain: {"format": "seg-folders", "img_dir": f"segmentation/{domain}/img_dir/<split>",
                 "ann_dir": f"segmentation/{domain}/ann_dir/<split>", "classes": f"segmentation/{domain}/classes.json"}
        for domain in ("real", "synthetic")
    } | {"generated": {"format": "manifest", "manifest": "segmentation/generated/manifest.csv"}}


_WRITERS = {"keypoints": write_keypoints, "detection": write_detection, "segmentation": write_segmentation}


def write_demo(
    out: str | Path,
    tasks: list[str] | tuple[str, ...] = TASKS,
    seed: int = 0,
    counts: dict | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    final_root: str | Path | None = None,
    log: Log | None = None,
    effects: Effects = NO_EFFECTS,
) -> Path:
    """Write the demo world for ``tasks`` into ``out`` (created; should be new or empty).

    ``final_root`` is where the folder will live when the caller renames it into place (absolute
    paths inside, e.g. the YOLO data YAML's ``path``, point there); it defaults to ``out``.
    ``meta.json`` is written last, so its presence means the world is complete. ``effects``
    injects known effects (:mod:`vsynth.data.demo.effects`), recorded in ``meta.json``.
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(f"tasks must be a non-empty subset of {list(TASKS)}, got {list(tasks)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    width, height = (int(v) for v in size)
    if not (64 <= width <= 4096 and 64 <= height <= 4096):
        raise ConfigError(f"size must be W H between 64 and 4096 pixels, got {list(size)}")
    counts = normalize_counts(counts if counts is not None else default_counts(DEFAULT_IMAGES))
    out = Path(out)
    final = Path(final_root).absolute() if final_root is not None else out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    layout = {}
    for task in tasks:
        layout[task] = _WRITERS[task](out / task, final / task, int(seed), counts, (width, height), log, effects)
    meta = {
        "version": DEMO_VERSION,
        "vsynth_version": __version__,
        "seed": int(seed),
        "size": [width, height],
        "counts": counts,
        "tasks": list(tasks),
        "layout": layout,
        "keypoints": {
            "category": KEYPOINT_CATEGORY,
            "names_24": KEYPOINT_NAMES_24,
            "names_14": KEYPOINT_NAMES_14,
            "flip_idx_24": FLIP_IDX_24,
            "flip_idx_14": FLIP_IDX_14,
            "kpt_oks_sigmas_24": KPT_OKS_SIGMAS_24,
        },
        "detection": {"classes": DETECTION_CLASSES},
        "segmentation": {"classes": SEG_CLASSES, "palette": SEG_PALETTE, "sidewalk_classes": SIDEWALK_CLASSES, "ignore_index": IGNORE_INDEX},
    }
    if effects.cache_params():
        meta["effects"] = {"injected": True, **effects.cache_params(),
                           "note": "known effects planted for testing the analyses (vsynth.data.demo.effects), not findings"}
    write_json_atomic(out / "meta.json", json.loads(json.dumps(meta)))
    return out
