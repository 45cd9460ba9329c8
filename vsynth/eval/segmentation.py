"""Semantic segmentation evaluation: per-class IoU and accuracy, mIoU, mAcc, aAcc.

The numbers are MMSegmentation's ``IoUMetric`` (``mmseg.evaluation.metrics.IoUMetric``) on the
same label maps, as fractions in [0, 1] instead of rounded percentages:

* pixels whose ground truth equals ``ignore_index`` are dropped;
* IoU_c = |pred=c and gt=c| / |pred=c or gt=c|, Acc_c = |pred=c and gt=c| / |gt=c|;
* a class absent from both prediction and ground truth has IoU NaN, a class absent from the
  ground truth has Acc NaN; mIoU / mAcc are ``nanmean`` over classes (unless ``nan_to_num``);
* aAcc = correct pixels / labelled pixels.

Everything is accumulated in one int64 confusion matrix (``bincount``), so memory does not grow
with the test set and counts stay exact (IoUMetric sums float32 histograms, which loses exactness
beyond 2^24 pixels per class; on small sets the two agree exactly).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.eval import distributed
from vsynth.eval.arrays import image_id_array, image_id_kind, to_numpy

LABEL_SUFFIXES = (".png", ".npy", ".bmp", ".tif", ".tiff")


@dataclass
class SegmentationState:
    """Per-image (intersection, prediction, label) pixel counts per class, images sorted by id.

    What the paired bootstrap resamples: metrics of a reweighted image set are those of the
    weighted sums of these counts.
    """

    image_ids: np.ndarray
    counts: np.ndarray  # (I, 3, C) int64
    evaluator: SegmentationEvaluator

    def summarize(self, image_weights: np.ndarray | None = None) -> dict[str, Any]:
        """All metrics, optionally for a reweighted image set."""
        flat = self.counts.reshape(self.counts.shape[0], -1)
        total = flat.sum(axis=0) if image_weights is None else image_weights @ flat
        intersect, pred, label = total.reshape(3, -1)
        n_images = self.image_ids.size if image_weights is None else int(image_weights.sum())
        return self.evaluator._metrics(intersect, pred, label, n_images)


class SegmentationEvaluator:
    """Streaming IoU evaluator over label maps (DDP-aware).

    ``update(preds, targets, image_ids=None)``: ``preds`` and ``targets`` are integer label maps,
    each either one array (B, H, W) / (H, W) or a sequence of (H, W) arrays (numpy or torch; torch
    tensors are counted on their own device). Predictions must lie in [0, num_classes); target
    pixels must lie in [0, num_classes) or equal ``ignore_index``. ``image_ids`` (one per map) is
    needed only with ``keep_per_image=True``, which keeps 3 x num_classes counts per image for the
    bootstrap and for exact DDP results when the sampler pads with repeated images.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        nan_to_num: float | None = None,
        keep_per_image: bool = False,
    ) -> None:
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ConfigError(f"num_classes: expected a positive integer, got {num_classes!r}")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"class_names: {len(class_names)} names for num_classes={num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.class_names = [str(n) for n in class_names] if class_names is not None else None
        self.nan_to_num = nan_to_num
        self.keep_per_image = keep_per_image
        self.reset()

    def reset(self) -> None:
        """Forget everything added so far."""
        self._confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._n_images = 0
        self._ids: list[Hashable] = []
        self._per_image: list[np.ndarray] = []
        self._id_kind: str | None = None

    # ---- input -------------------------------------------------------------------------------

    def update(self, preds: Any, targets: Any, image_ids: Sequence[Hashable] | None = None) -> None:
        """Add a batch of (prediction, ground truth) label maps."""
        pred_maps, gt_maps = _as_map_list(preds), _as_map_list(targets)
        if len(pred_maps) != len(gt_maps):
            raise DataError(f"update(): {len(pred_maps)} predicted maps but {len(gt_maps)} ground-truth maps")
        if image_ids is not None and len(image_ids) != len(pred_maps):
            raise DataError(f"update(): {len(image_ids)} image ids for {len(pred_maps)} maps")
        if self.keep_per_image and image_ids is None:
            raise DataError("update(): image_ids are required with keep_per_image=True (the bootstrap pairs images)")
        for i, (pred, gt) in enumerate(zip(pred_maps, gt_maps)):
            name = f"image {image_ids[i]!r}" if image_ids is not None else f"map {i}"
            self.add_map(pred, gt, source=f"update(): {name}", image_id=None if image_ids is None else image_ids[i])

    def add_map(self, pred: Any, gt: Any, *, source: str, image_id: Hashable | None = None) -> None:
        """Add one (H, W) prediction / ground-truth pair; ``source`` names it in errors."""
        if _is_torch(pred) or _is_torch(gt):
            confusion = self._confusion_torch(pred, gt, source)
        else:
            confusion = self._confusion_numpy(to_numpy(pred), to_numpy(gt), source)
        if self.keep_per_image:
            kind = image_id_kind(image_id, source)
            if self._id_kind is None:
                self._id_kind = kind
            elif kind != self._id_kind:
                raise DataError(f"{source}: image id {image_id!r} is a {kind}, earlier ids were {self._id_kind}s")
            self._ids.append(image_id)
            self._per_image.append(_counts(confusion))
        self._confusion += confusion
        self._n_images += 1

    def _check(self, shape_p: tuple, shape_g: tuple, source: str) -> None:
        if shape_p != shape_g:
            raise DataError(f"{source}: prediction shape {shape_p} differs from ground-truth shape {shape_g}")
        if len(shape_p) != 2:
            raise DataError(f"{source}: label maps must be 2-D (H, W), got shape {shape_p}")

    def _confusion_numpy(self, pred: np.ndarray, gt: np.ndarray, source: str) -> np.ndarray:
        pred, gt = np.squeeze(pred), np.squeeze(gt)
        self._check(tuple(pred.shape), tuple(gt.shape), source)
        for arr, what in ((pred, "prediction"), (gt, "ground truth")):
            if arr.dtype.kind not in "iub":
                if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
                    continue
                raise DataError(f"{source}: {what} label map must hold integer class ids, got dtype {arr.dtype}")
        gt = gt.astype(np.int64, copy=False)
        pred = pred.astype(np.int64, copy=False)
        keep = gt != self.ignore_index
        g, p = gt[keep], pred[keep]
        self._check_range(g, p, source)
        c = self.num_classes
        return np.bincount(g * c + p, minlength=c * c).reshape(c, c)

    def _confusion_torch(self, pred: Any, gt: Any, source: str) -> np.ndarray:
        import torch

        pred = torch.as_tensor(pred).squeeze()
        gt = torch.as_tensor(gt, device=pred.device).squeeze()
        self._check(tuple(pred.shape), tuple(gt.shape), source)
        for arr, what in ((pred, "prediction"), (gt, "ground truth")):
            if arr.is_floating_point() or arr.is_complex():
                raise DataError(f"{source}: {what} label map must hold integer class ids, got dtype {arr.dtype}")
        keep = gt != self.ignore_index
        g, p = gt[keep].long(), pred[keep].long()
        if g.numel():
            self._check_range(
                np.array([int(g.min()), int(g.max())]), np.array([int(p.min()), int(p.max())]), source
            )
        c = self.num_classes
        return torch.bincount(g * c + p, minlength=c * c).reshape(c, c).cpu().numpy().astype(np.int64)

    def _check_range(self, g: np.ndarray, p: np.ndarray, source: str) -> None:
        c = self.num_classes
        if g.size and (g.min() < 0 or g.max() >= c):
            bad = int(g[(g < 0) | (g >= c)][0])
            raise DataError(
                f"{source}: ground-truth label {bad} is outside [0, {c - 1}] and is not ignore_index {self.ignore_index}"
            )
        if p.size and (p.min() < 0 or p.max() >= c):
            bad = int(p[(p < 0) | (p >= c)][0])
            raise DataError(f"{source}: predicted label {bad} is outside [0, {c - 1}]")

    @classmethod
    def from_label_dirs(
        cls,
        gt_dir: str | Path,
        pred_dir: str | Path,
        num_classes: int,
        *,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        keep_per_image: bool = False,
    ) -> SegmentationEvaluator:
        """An evaluator filled from two folders of label maps matched by file stem (.png or .npy)."""
        evaluator = cls(num_classes, ignore_index=ignore_index, class_names=class_names, keep_per_image=keep_per_image)
        for stem, gt_path, pred_path in pair_label_files(gt_dir, pred_dir):
            gt = read_label_map(gt_path)
            pred = read_label_map(pred_path)
            evaluator.add_map(pred, gt, source=str(pred_path), image_id=stem)
        return evaluator

    # ---- results -----------------------------------------------------------------------------

    def compute(self) -> dict[str, Any]:
        """mIoU, mAcc, aAcc and per-class IoU / Acc over everything added (all DDP ranks).

        With ``keep_per_image=True`` the per-image counts are gathered and an image id seen on
        two ranks (DistributedSampler padding) counts once; otherwise the confusion matrices are
        summed over ranks, padding included.
        """
        if self.keep_per_image:
            return self.bootstrap_state().summarize(None)
        confusion = distributed.all_reduce_sum(self._confusion)
        n_images = int(distributed.all_reduce_sum(np.array([self._n_images], dtype=np.int64))[0])
        return self._metrics(*_counts(confusion), n_images)

    def bootstrap_state(self) -> SegmentationState:
        """Per-image counts (needs ``keep_per_image=True``), gathered over DDP ranks, sorted by id."""
        if not self.keep_per_image:
            raise ConfigError("keep_per_image: must be True to bootstrap a segmentation evaluator")
        gathered = distributed.all_gather_objects((self._ids, self._per_image))
        ids = [i for rank_ids, _ in gathered for i in rank_ids]
        counts = [c for _, rank_counts in gathered for c in rank_counts]
        id_array = image_id_array(ids, self._id_kind or "int")
        unique, first = np.unique(id_array, return_index=True)  # DDP padding repeats images
        stacked = np.stack(counts) if counts else np.zeros((0, 3, self.num_classes), dtype=np.int64)
        return SegmentationState(image_ids=unique, counts=stacked[first], evaluator=self)

    def _metrics(self, intersect: np.ndarray, pred: np.ndarray, label: np.ndarray, n_images: int) -> dict[str, Any]:
        union = pred + label - intersect
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = intersect / union
            acc = intersect / label
            aacc = intersect.sum() / label.sum() if label.sum() else float("nan")
        if self.nan_to_num is not None:
            iou, acc = np.nan_to_num(iou, nan=self.nan_to_num), np.nan_to_num(acc, nan=self.nan_to_num)
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        names = [f"{n} ({i})" if names.count(n) > 1 else n for i, n in enumerate(names)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice -> NaN, on purpose
            miou, macc = float(np.nanmean(iou)), float(np.nanmean(acc))
        return {
            "miou": miou,
            "macc": macc,
            "aacc": float(aacc),
            "iou": {n: float(v) for n, v in zip(names, iou)},
            "acc": {n: float(v) for n, v in zip(names, acc)},
            "num_images": n_images,
        }


def _counts(confusion: np.ndarray) -> np.ndarray:
    """(3, C): intersection, predicted and labelled pixels per class, from a confusion matrix."""
    return np.stack([np.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)]).astype(np.int64)


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _as_map_list(maps: Any) -> list[Any]:
    """A batch as a list of (H, W) maps: (B, H, W) array -> B maps, (H, W) -> one map."""
    if isinstance(maps, (list, tuple)):
        return list(maps)
    ndim = maps.ndim if hasattr(maps, "ndim") else np.asarray(maps).ndim
    if ndim == 2:
        return [maps]
    if ndim == 4 and maps.shape[1] == 1:  # (B, 1, H, W) as models often return
        return [m[0] for m in maps]
    if ndim == 3:
        return [m for m in maps]
    raise DataError(f"update(): label maps must be (H, W), (B, H, W) or (B, 1, H, W), got shape {tuple(maps.shape)}")


def read_label_map(path: Path) -> np.ndarray:
    """A single-channel integer label map from a .npy or image file (palette PNGs give indices)."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as img:
                if img.mode not in ("L", "P", "I", "I;16", "1"):
                    raise DataError(f"{path}: label map must be single-channel (mode L, P, I or I;16), got mode {img.mode}")
                arr = np.array(img)
    except DataError:
        raise
    except Exception as exc:  # unreadable / truncated files: name the file, keep one line
        raise DataError(f"{path}: cannot read label map ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise DataError(f"{path}: label map must be 2-D (H, W), got shape {arr.shape}")
    return arr


def pair_label_files(gt_dir: str | Path, pred_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, gt path, pred path) for every ground-truth map; every map needs its counterpart."""
    found = []
    for folder in (Path(gt_dir), Path(pred_dir)):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a directory")
        by_stem: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in LABEL_SUFFIXES and path.is_file():
                if path.stem in by_stem:
                    raise DataError(f"{path}: two label maps with stem '{path.stem}' ({by_stem[path.stem].name})")
                by_stem[path.stem] = path
        found.append(by_stem)
    gts, preds = found
    if not gts:
        raise DataError(f"{gt_dir}: no label maps ({', '.join(LABEL_SUFFIXES)})")
    for stem, path in preds.items():
        if stem not in gts:
            raise DataError(f"{path}: prediction for '{stem}', which has no ground truth in {gt_dir}")
    pairs = []
    for stem, path in gts.items():
        if stem not in preds:
            raise DataError(f"{pred_dir}: no prediction for ground truth {path.name}")
        pairs.append((stem, path, preds[stem]))
    return pairs
