"""Segmentation sources: ``real`` image/label folders and ``generated`` images from a manifest CSV.

* ``real``: MMSegmentation's layout, ``ROOT/img_dir/<split>/*.jpg``, ``ROOT/ann_dir/<split>/*.png``
  (class indices, ``ignore_index`` = unlabelled) and ``ROOT/classes.json``
  (:mod:`vsynth.data.formats.seg_folders`). Validation and test are always real.
* ``generated``: a manifest CSV (``generated_path,source_image,label_path,condition,generator``;
  :mod:`vsynth.data.formats.manifest`): each generated image reuses the label of its source image.

Everything is checked before the first step, so bad input ends with one line naming the file:
a manifest pointing to missing files, an image whose label has another size, label values that
are neither a class nor the ignore index, a generated source whose class list differs from the
real one, or a generated image made from a validation/test image (leakage).

Training items run MMSegmentation's transform pipeline (``task.train_pipeline``: a list of
transform configs built with mmseg's ``TRANSFORMS`` registry) and come out as
``PackSegInputs`` dicts; the mixer seeds ``random``/``numpy.random`` per sample first, so the
augmentation is reproducible.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from vsynth.data.formats.classes import check_same_classes
from vsynth.data.formats.io import image_size
from vsynth.data.formats.manifest import read_manifest
from vsynth.data.formats.seg_folders import read_classes_json, read_mask, read_seg_folders
from vsynth.errors import ConfigError, DataError

log = logging.getLogger("vsynth.segmentation")

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SegItem:
    """One image and its label; ``origin`` is a generated image's source image."""

    image: Path
    label: Path
    origin: Path | None = None
    condition: str = ""
    generator: str = ""
    where: str = ""  # where it was listed (e.g. "manifest.csv line 7"), for error messages


@dataclass
class Classes:
    names: list[str]
    palette: list[tuple[int, int, int]]
    ignore_index: int
    path: Path | None = None

    @property
    def num(self) -> int:
        return len(self.names)


@dataclass
class SegLayout:
    """Where the data lives once the config (and the demo, if enabled) is resolved."""

    real_root: Path
    img_dir: str
    ann_dir: str
    classes_json: Path
    mask_suffix: str
    splits: dict[str, str | None]
    manifest: Path | None
    generated_classes: Path | None
    demo_root: Path | None = None


@dataclass
class SegData:
    classes: Classes
    train: dict[str, list[SegItem]] = field(default_factory=dict)
    eval: dict[str, list[SegItem]] = field(default_factory=dict)


def _opt(node: Any, key: str, default: Any = None) -> Any:
    if node is None:
        return default
    v = node.get(key) if hasattr(node, "get") else None
    return default if v is None else v


def resolve_layout(cfg, cache: Path) -> SegLayout:
    """Paths from ``data.*``; with ``data.demo.enabled`` the demo world fills what is left null."""
    d = cfg.data
    real = d.get("real") or {}
    gen = d.get("generated") or {}
    demo = d.get("demo") or {}
    demo_root = None
    uses_generated = "generated" in cfg.arm.sources and cfg.mode != "eval"
    if demo.get("enabled") and (real.get("root") is None or (gen.get("manifest") is None and uses_generated)):
        from vsynth.data.demo.settings import demo_world  # only for a source the user set nothing for

        demo_root = demo_world("segmentation", demo, cache) / "segmentation"
    root = real.get("root")
    if root is None:
        if demo_root is None:
            raise ConfigError("data.real.root: not set (an MMSeg-layout folder with img_dir/, ann_dir/ and classes.json)")
        root = demo_root / "real"
        log.info("source real: the demo world (data.real.root not set)")
    else:
        log.info("source real: your data (data.real.root=%s)", root)
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise DataError(f"data.real.root={root}: folder not found")
    classes = Path(str(real.get("classes") or "classes.json")).expanduser()
    classes = classes if classes.is_absolute() else root / classes
    manifest = gen.get("manifest")
    if manifest is None and demo_root is not None:
        manifest = demo_root / "generated" / str(demo.get("manifest") or "manifest.csv")
        log.info("source generated: the demo world (data.generated.manifest not set)")
    elif manifest is not None:
        log.info("source generated: your data (data.generated.manifest=%s)", manifest)
    gclasses = gen.get("classes")
    splits = {s: (None if v is None else str(v)) for s, v in (real.get("splits") or {s: s for s in SPLITS}).items()}
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ConfigError(f"data.real.splits: unknown split(s) {unknown}; expected {list(SPLITS)}")
    if not splits.get("train") and "real" in cfg.arm.sources:
        raise ConfigError("data.real.splits.train: a train split is needed by arm.sources.real")
    if not splits.get("val"):
        raise ConfigError("data.real.splits.val: a validation split is needed (best.pt is chosen on it)")
    return SegLayout(
        real_root=root,
        img_dir=str(real.get("img_dir") or "img_dir"),
        ann_dir=str(real.get("ann_dir") or "ann_dir"),
        classes_json=classes,
        mask_suffix=str(real.get("mask_suffix") or ".png"),
        splits=splits,
        manifest=None if manifest is None else Path(str(manifest)).expanduser(),
        generated_classes=None if gclasses is None else Path(str(gclasses)).expanduser(),
        demo_root=demo_root,
    )


def read_classes(path: Path) -> Classes:
    names, palette, ignore = read_classes_json(path)
    return Classes(names, list(palette), int(ignore), path)


def real_split(layout: SegLayout, split: str) -> list[SegItem]:
    folder = layout.splits.get(split)
    if not folder:
        return []
    ds = read_seg_folders(layout.real_root / layout.img_dir / folder, layout.real_root / layout.ann_dir / folder,
                          layout.classes_json, layout.mask_suffix)
    if not ds.samples:
        raise DataError(f"{layout.real_root / layout.img_dir / folder}: no images in the real '{split}' split")
    return [SegItem(s.image, s.label, where=f"real {split}") for s in ds.samples]


def generated_items(layout: SegLayout, gcfg) -> list[SegItem]:
    if layout.manifest is None:
        raise ConfigError("data.generated.manifest: not set, but arm.sources uses 'generated' (a manifest CSV)")
    rows = read_manifest(layout.manifest, check_files=True)
    conds = _opt(gcfg, "conditions")
    gens = _opt(gcfg, "generators")
    items = []
    for line, r in enumerate(rows, start=2):
        if conds is not None and r.condition not in list(conds):
            continue
        if gens is not None and r.generator not in list(gens):
            continue
        items.append(SegItem(r.generated_path, r.label_path, r.source_image, r.condition, r.generator,
                             where=f"{layout.manifest} line {line}"))
    if not items:
        raise DataError(f"{layout.manifest}: no rows left after data.generated.conditions/generators filters")
    return items


def checked_generated_items(layout: SegLayout, gcfg, classes: Classes) -> list[SegItem]:
    """:func:`generated_items`, after checking that the generated set's classes (if it has its own) are the real ones."""
    if layout.generated_classes is not None:
        check_same_classes({"real": classes.names, "generated": read_classes(layout.generated_classes).names})
    return generated_items(layout, gcfg)


# ---- validation ------------------------------------------------------------------------------


def check_sizes(items: Sequence[SegItem], source: str) -> None:
    """Every image has the size of its label (header reads only)."""
    for it in items:
        iw, ih = image_size(it.image)
        lw, lh = image_size(it.label)
        if (iw, ih) != (lw, lh):
            what = f"generated image {it.image} ({it.where})" if source == "generated" else f"{it.image}"
            raise DataError(f"{what}: image is {iw}x{ih} but its label {it.label} is {lw}x{lh}")


def check_labels(items: Sequence[SegItem], classes: Classes, limit: Any) -> int:
    """Label values must be class indices or the ignore index; returns the number of files read."""
    if limit in (None, "all"):
        n = None
    elif limit in ("none", False, 0):
        return 0
    else:
        try:
            n = int(limit)
        except (TypeError, ValueError):
            raise ConfigError(f"data.check_labels must be all, none or a number of label files, got {limit!r}") from None
    seen: set[Path] = set()
    for it in items:
        if it.label in seen:
            continue
        if n is not None and len(seen) >= n:
            break
        seen.add(it.label)
        read_mask(it.label, classes.num, classes.ignore_index)
    return len(seen)


def check_leakage(generated: Sequence[SegItem], eval_sets: dict[str, list[SegItem]]) -> None:
    held_out = {it.image.resolve(): split for split, items in eval_sets.items() for it in items}
    for it in generated:
        if it.origin is not None and it.origin.resolve() in held_out:
            raise DataError(f"generated image {it.image} ({it.where}) was made from {it.origin}, an image of the real "
                            f"'{held_out[it.origin.resolve()]}' split: generated training data must come from train images")


def _all_real(cfg) -> bool:
    """True when every batch is all real (data.ratio rounds to a full batch of real images)."""
    from vsynth.data.mixer import real_count

    ratio = cfg.data.get("ratio")
    bs = int(cfg.trainer.batch_size)
    return ratio is not None and real_count(float(ratio), bs) == bs


def load_data(cfg, layout: SegLayout, sources: Sequence[str]) -> SegData:
    """Items per training source and per evaluation split, checked (see the module docstring)."""
    classes = read_classes(layout.classes_json)
    data = SegData(classes=classes)
    d = cfg.data
    for split in ("val", "test"):
        if layout.splits.get(split):
            data.eval[split] = real_split(layout, split)
    limit = d.get("check_labels", "all")
    for name in sources:
        if name == "real":
            items = real_split(layout, "train")
        elif name == "generated" and layout.manifest is None and _all_real(cfg):
            log.info("Source 'generated': no manifest (data.generated.manifest); unused at data.ratio=%s", d.get("ratio"))
            data.train[name] = []
            continue
        elif name == "generated":
            items = checked_generated_items(layout, d.get("generated"), classes)
            check_leakage(items, data.eval)
        else:
            raise ConfigError(f"arm.sources.{name}: the segmentation task has sources 'real' and 'generated'")
        data.train[name] = items
    for split, items in data.eval.items():
        check_sizes(items, "real")
        check_labels(items, classes, limit)
    return data


# ---- datasets --------------------------------------------------------------------------------


def _tuples(x: Any) -> Any:
    """YAML lists of numbers become tuples (mmcv transforms expect tuples for sizes and scales)."""
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        if x and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            return tuple(x)
        return [_tuples(v) for v in x]
    return x


def build_pipeline(spec: Any, key: str):
    """An mmengine ``Compose`` of mmseg/mmcv transforms from a list of ``{type: ..., ...}`` dicts."""
    from mmengine.dataset import Compose
    from mmseg.registry import TRANSFORMS

    steps = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else spec
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"{key}: must be a non-empty list of transforms ({{type: ..., ...}})")
    built = []
    for i, t in enumerate(steps):
        if not isinstance(t, dict) or "type" not in t:
            raise ConfigError(f"{key}[{i}]: a transform needs a 'type', got {t!r}")
        try:
            built.append(TRANSFORMS.build(_tuples(t)))
        except Exception as e:  # noqa: BLE001
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"{key}[{i}] ({t['type']}): cannot build ({first[:200]})") from e
    return Compose(built)


class SegPipelineSet(Dataset):
    """Items through an mmseg pipeline; label values are re-checked after loading (cheap)."""

    def __init__(self, items: Sequence[SegItem], pipeline_spec: Any, key: str, classes: Classes) -> None:
        self.items = list(items)
        self.spec = OmegaConf.to_container(pipeline_spec, resolve=True) if OmegaConf.is_config(pipeline_spec) else pipeline_spec
        self.key = key
        self.num_classes = classes.num
        self.ignore = classes.ignore_index
        self.pipeline = build_pipeline(self.spec, key)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        results = {"img_path": str(it.image), "seg_map_path": str(it.label), "reduce_zero_label": False,
                   "seg_fields": [], "vsynth_index": i}
        try:
            out = self.pipeline(results)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{it.image}: cannot load or transform ({type(e).__name__}: {str(e)[:160]})") from e
        if out is None:
            raise DataError(f"{it.image}: the pipeline {self.key} dropped this sample")
        ds = out.get("data_samples")
        if ds is not None and "gt_sem_seg" in ds:
            lab = ds.gt_sem_seg.data
            bad = (lab >= self.num_classes) & (lab != self.ignore)
            if bool(bad.any()):
                vals = sorted({int(v) for v in lab[bad].unique()[:5]})
                raise DataError(f"{it.label}: label values {vals} are neither classes 0..{self.num_classes - 1} "
                                f"nor ignore {self.ignore}")
        return out


def pseudo_collate(samples: list[dict[str, Any]]) -> dict[str, list]:
    """mmengine's pseudo_collate for PackSegInputs items: lists of inputs and data samples."""
    return {"inputs": [s["inputs"] for s in samples], "data_samples": [s["data_samples"] for s in samples]}


def source_summary(items: Sequence[SegItem]) -> dict[str, Any]:
    out: dict[str, Any] = {"images": len(items), "label_files": len({it.label for it in items})}
    conds = Counter(it.condition for it in items if it.condition)
    gens = Counter(it.generator for it in items if it.generator)
    if conds:
        out["conditions"] = dict(sorted(conds.items()))
    if gens:
        out["generators"] = dict(sorted(gens.items()))
    return out
