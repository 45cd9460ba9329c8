"""Semantic consistency: do generated images still show what the labels they reuse say?

A generated image has no label of its own; it trains with the label of the real image it was made
from. When the generator moves, removes or invents things, that label is wrong for it. The users
measured this by hand ("a real-trained model's mIoU on generated images against their source
labels: 4.84 %") and compared RGB statistics; ``mode=consistency`` does both, per condition and
generator, with the reference the bare number lacks: the same model on the source images.

* The generated images are the manifest's rows (``data.generated.*``, its filters applied; the first
  ``eval.max_images`` rows if set). Their source images, each once, with the same labels are the
  reference.
* One model (``ckpt``, trained on real data) predicts both through the task's own evaluation path
  (``task.test_pipeline``, :meth:`SegmentationTask.predict_step`, vsynth's evaluation loop).
* Each prediction is scored against the source label by vsynth's ``SegmentationEvaluator``, which
  keeps every image's pixel counts; a group's numbers come from the summed counts of its images:
  all, per condition, per generator, per (condition, generator). The source side of a group is the
  sources of its generated images, each counted once per generated image made from it, so both sides
  are scored on the same labels with the same weights (a paired comparison).
* ``drop`` = mIoU(source) - mIoU(generated), with a percentile interval from the paired bootstrap
  over the group's generated images, each resampled with its source
  (:func:`vsynth.eval.bootstrap.paired_bootstrap`; ``task.consistency.bootstrap``).
* RGB statistics per group: :func:`tasks.segmentation.stats.data_stats` on the generated images and
  their sources (the same sampled pairs), as in every run's ``data_stats.json``.

Size policy: a label is ground truth at its own resolution. A generated image of another size is
predicted at its own size (as any image is) and the prediction is resized to the label's size with
nearest neighbour (class maps are never interpolated). This assumes the generator resized the whole
frame; an aspect ratio that differs by more than 1 % (a crop, a pad) is counted and warned about, as
its pixels cannot line up with the label. Source images must have their label's size (real data rule).

Ignore index: label pixels equal to the ignore index are left out on both sides, as in every
evaluation; a generated image gets no ignore region of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vsynth.errors import ConfigError
from vsynth.task import SplitEvaluator

from tasks.segmentation.data import Classes, SegItem, SegPipelineSet, check_labels, check_sizes, checked_generated_items
from tasks.segmentation.evaluation import flatten_metrics

log = logging.getLogger("vsynth.segmentation")

#: an image whose aspect ratio differs from its label's by more than this cannot line up with it
ASPECT_TOLERANCE = 0.01
NO_CONDITION = "(none)"


@dataclass
class Pairs:
    """Generated images and their sources: ``source_of[i]`` is the index in ``sources`` of ``generated[i]``'s."""

    generated: list[SegItem]
    sources: list[SegItem]
    source_of: np.ndarray

    @classmethod
    def of(cls, generated: Sequence[SegItem]) -> "Pairs":
        index: dict[tuple[Path, Path], int] = {}
        sources: list[SegItem] = []
        source_of = []
        for it in generated:
            key = (Path(it.origin), Path(it.label))
            if key not in index:
                index[key] = len(sources)
                sources.append(SegItem(Path(it.origin), Path(it.label), where=f"source of {it.where}"))
            source_of.append(index[key])
        return cls(list(generated), sources, np.asarray(source_of, dtype=np.int64))

    def groups(self) -> dict[str, dict[str, np.ndarray]]:
        """Indices of the generated images per group: ``all``, ``by_condition``, ``by_generator`` and
        ``groups`` (per condition and generator, keyed ``condition/generator``)."""
        out: dict[str, dict[str, list[int]]] = {"all": {"": []}, "by_condition": {}, "by_generator": {},
                                                "groups": {}}
        for i, it in enumerate(self.generated):
            cond, gen = it.condition or NO_CONDITION, it.generator or NO_CONDITION
            out["all"][""].append(i)
            out["by_condition"].setdefault(cond, []).append(i)
            out["by_generator"].setdefault(gen, []).append(i)
            out["groups"].setdefault(f"{cond}/{gen}", []).append(i)
        return {k: {name: np.asarray(v, dtype=np.int64) for name, v in sorted(d.items())} for k, d in out.items()}


class PerImageEvaluator(SplitEvaluator):
    """Per-image IoU counts of predictions against the labels of ``items``, scored at the label's size.

    A prediction of another size is resized to its label (nearest neighbour; see the module docstring);
    ``resized`` / ``aspect_changed`` flag those images. The predictions of the ``keep`` indices are kept
    for the picture.
    """

    def __init__(self, items: Sequence[SegItem], classes: Classes, keep: Sequence[int] = ()) -> None:
        from vsynth.eval.segmentation import SegmentationEvaluator

        self.items, self.classes = list(items), classes
        self.evaluator = SegmentationEvaluator(classes.num, ignore_index=classes.ignore_index,
                                               class_names=classes.names, keep_per_image=True)
        self.resized = np.zeros(len(self.items), dtype=bool)
        self.aspect_changed = np.zeros(len(self.items), dtype=bool)
        self.keep = set(int(k) for k in keep)
        self.kept: dict[int, np.ndarray] = {}
        self.state = None

    def process(self, indices: Sequence[int], batch: Any, outputs: list[np.ndarray]) -> None:
        from vsynth.data.formats.seg_folders import read_mask

        c = self.classes
        for i, pred in zip(indices, outputs):
            item = self.items[i]
            gt = read_mask(item.label, c.num, c.ignore_index)
            if pred.shape != gt.shape:
                self.resized[i] = True
                self.aspect_changed[i] = aspect_differs(pred.shape, gt.shape)
                pred = resize_to_label(pred, gt.shape)
            self.evaluator.add_map(pred, gt, source=str(item.image), image_id=int(i))
            if int(i) in self.keep:
                self.kept[int(i)] = pred.astype(np.uint8)

    def compute(self) -> dict[str, Any]:
        self.state = self.evaluator.bootstrap_state()  # here: the loop runs this on one process (local_only)
        return flatten_metrics(self.state.summarize(None))


def aspect_differs(shape: tuple[int, ...], label_shape: tuple[int, ...]) -> bool:
    (h, w), (lh, lw) = shape[:2], label_shape[:2]
    return abs((w / h) / (lw / lh) - 1.0) > ASPECT_TOLERANCE


def resize_to_label(pred: np.ndarray, label_shape: tuple[int, ...]) -> np.ndarray:
    """A class map at the label's (H, W), nearest neighbour (never interpolated between classes)."""
    import cv2

    h, w = label_shape[:2]
    return cv2.resize(pred.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)


# ---- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """``task.consistency`` (and the ``task.stats`` sampling reused for the RGB statistics)."""

    samples: int = 1000
    seed: int = 0
    level: float = 0.95
    pictures: int = 4
    stats_per_group: int | None = 32
    stats_seed: int = 0

    @classmethod
    def from_task(cls, tc) -> "Settings":
        cc = tc.get("consistency") or {}
        unknown = sorted(set(cc) - {"bootstrap", "pictures"})
        if unknown:
            raise ConfigError(f"task.consistency.{unknown[0]}: unknown key (known: bootstrap, pictures)")
        boot = cc.get("bootstrap") or {}
        unknown = sorted(set(boot) - {"samples", "seed", "level"})
        if unknown:
            raise ConfigError(f"task.consistency.bootstrap.{unknown[0]}: unknown key (known: samples, seed, level)")
        samples, seed = _int(boot.get("samples", 1000), "task.consistency.bootstrap.samples", 0), \
            _int(boot.get("seed", 0), "task.consistency.bootstrap.seed", None)
        try:
            level = float(boot.get("level", 0.95))
        except (TypeError, ValueError):
            level = -1.0
        if not 0.0 < level < 1.0:
            raise ConfigError(f"task.consistency.bootstrap.level: expected a level in (0, 1), got {boot.get('level')!r}")
        pictures = _int(cc.get("pictures", 4), "task.consistency.pictures", 0)
        sc = tc.get("stats") or {}
        per = sc.get("per_source", 32)
        return cls(samples, seed, level, pictures, None if per is None else _int(per, "task.stats.per_source", 1),
                   _int(sc.get("seed", 0), "task.stats.seed", None))


def _int(value: Any, key: str, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        floor = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{key}: expected a whole number{floor}, got {value!r}")
    return int(value)


# ---- the numbers -----------------------------------------------------------------------------


def _clean(x: Any) -> Any:
    """NaN (a class in no label and no prediction) becomes null in JSON; floats are rounded for reading."""
    if isinstance(x, float):
        return None if not np.isfinite(x) else round(x, 6)
    if isinstance(x, Mapping):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _sub(state, ids: np.ndarray, positions: np.ndarray):
    """A bootstrap state of the images at ``positions`` of ``state``, renamed ``ids`` (the pairing key)."""
    from vsynth.eval.segmentation import SegmentationState

    return SegmentationState(image_ids=ids, counts=state.counts[positions], evaluator=state.evaluator)


def group_entry(pairs: Pairs, idx: np.ndarray, gen: PerImageEvaluator, src: PerImageEvaluator,
                settings: Settings) -> dict[str, Any]:
    """One group's scores: generated vs source, per class, with the drop's bootstrap interval."""
    from vsynth.eval.bootstrap import paired_bootstrap

    g = _sub(gen.state, idx, np.searchsorted(gen.state.image_ids, idx))
    s = _sub(src.state, idx, np.searchsorted(src.state.image_ids, pairs.source_of[idx]))
    mg, ms = g.summarize(None), s.summarize(None)
    entry: dict[str, Any] = {
        "images": int(idx.size),
        "source_images": int(np.unique(pairs.source_of[idx]).size),
        "resized": int(gen.resized[idx].sum()),
        "aspect_changed": int(gen.aspect_changed[idx].sum()),
        "miou_generated": mg["miou"],
        "miou_source": ms["miou"],
        "drop": ms["miou"] - mg["miou"],
        "drop_low": None,
        "drop_high": None,
        "retained": mg["miou"] / ms["miou"] if ms["miou"] else None,
        "aacc_generated": mg["aacc"],
        "aacc_source": ms["aacc"],
        "iou_generated": mg["iou"],
        "iou_source": ms["iou"],
        "iou_drop": {c: ms["iou"][c] - mg["iou"][c] for c in mg["iou"]},
    }
    if settings.samples > 0:
        b = paired_bootstrap(s, g, metric="miou", n=settings.samples, seed=settings.seed, ci=settings.level)
        entry["drop_low"], entry["drop_high"] = b["low"], b["high"]
    return entry


def rgb_entry(pairs: Pairs, idx: np.ndarray, classes: Classes, settings: Settings) -> dict[str, Any]:
    """RGB mean/std of the group's generated images and of their sources (the same sampled pairs)."""
    from tasks.segmentation.stats import data_stats

    gen = [pairs.generated[i] for i in idx]
    src = [pairs.sources[pairs.source_of[i]] for i in idx]
    st = data_stats({"real": src, "generated": gen}, classes, None, settings.stats_per_group, settings.stats_seed)
    g, s = st["sources"]["generated"], st["sources"]["real"]
    gap = st["gap_vs_real"]["generated"]

    def look(x: Mapping[str, Any]) -> dict[str, Any]:
        return {"mean": x["rgb_mean"], "std": x["rgb_std"], "std_per_image": x["rgb_std_per_image"]}

    return {"sampled": g["sampled"], "generated": look(g), "source": look(s), "mean_diff": gap["rgb_mean_diff"],
            "std_ratio": gap["rgb_std_ratio"], "mean_abs_diff": g["vs_source"]["mean_abs_diff"]}


def consistency_doc(pairs: Pairs, gen: PerImageEvaluator, src: PerImageEvaluator, classes: Classes,
                    settings: Settings, with_rgb: bool = True) -> dict[str, Any]:
    """The body of ``consistency.json`` from the two evaluators' per-image counts."""
    doc: dict[str, Any] = {
        "classes": list(classes.names),
        "ignore_index": int(classes.ignore_index),
        "images": len(pairs.generated),
        "source_images": len(pairs.sources),
        "policy": {
            "size": "a prediction of another size than its label is resized to the label (nearest neighbour)",
            "ignore": f"label pixels = {classes.ignore_index} are left out on both sides",
            "pairing": "the source side counts each source once per generated image made from it",
        },
        "bootstrap": {"samples": settings.samples, "seed": settings.seed, "level": settings.level,
                      "unit": "a generated image with its source image"},
    }
    for key, by in pairs.groups().items():
        entries = {}
        for name, idx in by.items():
            e = group_entry(pairs, idx, gen, src, settings)
            first = pairs.generated[int(idx[0])]
            if key in ("groups", "by_condition"):
                e = {"condition": first.condition or NO_CONDITION, **e}
            if key in ("groups", "by_generator"):
                e = {"generator": first.generator or NO_CONDITION, **e}
            if with_rgb:
                e["rgb"] = rgb_entry(pairs, idx, classes, settings)
            entries[name] = e
        doc[key] = entries[""] if key == "all" else entries
    return _clean(doc)


# ---- the command -----------------------------------------------------------------------------


def score_consistency(task, model) -> dict[str, Any]:
    """``mode=consistency`` for the segmentation task: see the module docstring."""
    from vsynth.train.evaluation import evaluate

    cfg, classes, layout = task.cfg, task.classes, task.layout
    settings = Settings.from_task(task.task_cfg)
    if layout.manifest is None:
        raise ConfigError("data.generated.manifest: not set; mode=consistency scores the generated images of a "
                          "manifest CSV (generated_path,source_image,label_path,condition,generator)")
    items = checked_generated_items(layout, cfg.data.get("generated"), classes)
    limit = cfg.eval.get("max_images")
    if limit is not None:
        if int(limit) < 1:
            raise ConfigError(f"eval.max_images must be >= 1 or null, got {limit}")
        items = items[: int(limit)]
    pairs = Pairs.of(items)
    check_sizes(pairs.sources, "real")
    check_labels(pairs.sources, classes, cfg.data.get("check_labels", "all"))
    shown = [int(idx[0]) for idx in pairs.groups()["groups"].values()][: settings.pictures]
    log.info("Consistency: %d generated images of %d source images from %s", len(pairs.generated),
             len(pairs.sources), layout.manifest)
    gen = PerImageEvaluator(pairs.generated, classes, shown)
    src = PerImageEvaluator(pairs.sources, classes, [int(pairs.source_of[i]) for i in shown])
    for name, ev in (("generated", gen), ("source", src)):
        data = SegPipelineSet(ev.items, task.task_cfg.test_pipeline, "task.test_pipeline", classes)
        m = evaluate(task, model, name, dataset=data, evaluator=ev)
        log.info("Consistency: %s images: mIoU %.4f, aAcc %.4f", name, m["miou"], m["aacc"])
    if gen.resized.any():
        log.info("Consistency: %d generated image(s) differ in size from their label; their predictions were resized "
                 "to the label (nearest neighbour)", int(gen.resized.sum()))
    if gen.aspect_changed.any():
        log.warning("Consistency: %d generated image(s) have another aspect ratio than their label (e.g. %s): cropped "
                    "or padded images cannot line up with the label, their scores are low for that reason alone",
                    int(gen.aspect_changed.sum()), pairs.generated[int(np.flatnonzero(gen.aspect_changed)[0])].image)
    doc = {"manifest": str(layout.manifest), **consistency_doc(pairs, gen, src, classes, settings)}
    a = doc["all"]
    log.info("Consistency: mIoU %.4f on the generated images, %.4f on their sources, drop %.4f", a["miou_generated"],
             a["miou_source"], a["drop"])
    if shown:
        write_picture(pairs, gen, src, shown, classes, Path(task.run.samples) / "consistency.png")
    return doc


def write_picture(pairs: Pairs, gen: PerImageEvaluator, src: PerImageEvaluator, shown: Sequence[int],
                  classes: Classes, out: Path) -> None:
    """Rows of image | source label | prediction: each shown generated image, then its source image."""
    import cv2

    from tasks.segmentation import draw
    from vsynth.data.formats.seg_folders import read_mask

    imgs, gts, preds = [], [], []
    for i in shown:
        j = int(pairs.source_of[i])
        label = read_mask(pairs.generated[i].label)
        for path, pred in ((pairs.generated[i].image, gen.kept[i]), (pairs.sources[j].image, src.kept[j])):
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img.shape[:2] != label.shape:
                img = cv2.resize(img, (label.shape[1], label.shape[0]), interpolation=cv2.INTER_LINEAR)
            imgs.append(img)
            gts.append(label)
            preds.append(pred)
    draw.write_png(out, draw.prediction_grid(imgs, gts, preds, classes.palette, classes.ignore_index))
