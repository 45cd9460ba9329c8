"""Streaming state shared by the keypoint and detection evaluators.

Both evaluators keep the same life cycle: ``update()`` adds images as a raw *block* of flat
arrays; blocks are matched (vectorised, see :mod:`vsynth.eval.matching`) as soon as enough images
are pending, which shrinks them to per-detection TP/ignore flags and per-image counts; ``compute()``
gathers those compact blocks from all DDP ranks, sorts images by id like COCOeval does and
accumulates. The same compact, image-sorted state (:class:`InstanceState`) is what the paired
bootstrap resamples, so a bootstrap at weight 1 reproduces ``compute()`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.eval import distributed
from vsynth.eval.arrays import image_id_array, image_id_kind
from vsynth.eval.matching import (
    COCO_THRESHOLDS,
    ULTRALYTICS_THRESHOLDS,
    CategoryCurve,
    build_category_curves,
    coco_precision_recall,
    match_pairs,
    rank_in_groups,
)

# pycocotools' areaRng "all" is [0 ** 2, 1e5 ** 2]: objects outside it are ignored.
AREA_ALL = (0.0, 1e10)
PROTOCOLS = ("coco", "ultralytics")


@dataclass
class InstanceBlock:
    """Raw inputs of some images as flat arrays (one row per ground truth / detection).

    ``gt``: ``image`` (M,) local image index, ``cat`` (M,) category index, ``boxes`` (M, 4)
    xywh, ``areas`` (M,), ``crowd`` (M,) bool, ``ignore`` (M,) bool (COCO's ignore flag), plus
    task fields (``keypoints`` (M, K, 3)). ``det``: ``image``, ``cat``, ``score``, ``area`` (N,)
    and task fields (``boxes`` (N, 4) xywh or ``keypoints`` (N, K, 2)); rows in input order.
    """

    image_ids: np.ndarray
    gt: dict[str, np.ndarray]
    det: dict[str, np.ndarray]


@dataclass
class MatchedBlock:
    """Matching outcome of some images: all that accumulation and the bootstrap need.

    Detections are ordered by (image, descending score, input order) and already truncated to
    ``max_dets``; ``det_tp``/``det_ig`` are (T, N). ``gt_count`` (I, C) counts the ground truths
    that recall is measured against; ``extras`` holds task-specific per-image arrays (I, ...).
    """

    image_ids: np.ndarray
    det_image: np.ndarray
    det_cat: np.ndarray
    det_score: np.ndarray
    det_tp: np.ndarray
    det_ig: np.ndarray
    gt_count: np.ndarray
    extras: dict[str, np.ndarray]


def merge_blocks(blocks: Sequence[MatchedBlock], n_thr: int, n_cat: int) -> MatchedBlock:
    """One block with images sorted by id; an image id seen twice keeps its first occurrence.

    Duplicates across blocks only arise from DDP (DistributedSampler pads the last batch with
    repeated images); within one process :meth:`InstanceEvaluator.update` rejects them.
    """
    if not blocks:
        return MatchedBlock(
            image_ids=np.zeros(0, dtype=np.int64),
            det_image=np.zeros(0, dtype=np.int64),
            det_cat=np.zeros(0, dtype=np.int64),
            det_score=np.zeros(0),
            det_tp=np.zeros((n_thr, 0), dtype=bool),
            det_ig=np.zeros((n_thr, 0), dtype=bool),
            gt_count=np.zeros((0, n_cat), dtype=np.int64),
            extras={},
        )
    all_ids = np.concatenate([b.image_ids for b in blocks])
    unique_ids, first = np.unique(all_ids, return_index=True)
    rank = np.full(all_ids.size, -1, dtype=np.int64)
    rank[first] = np.arange(unique_ids.size)
    offsets = np.cumsum([0] + [b.image_ids.size for b in blocks])
    parts: dict[str, list[np.ndarray]] = {"image": [], "cat": [], "score": [], "tp": [], "ig": []}
    for block, off in zip(blocks, offsets[:-1]):
        det_rank = rank[off + block.det_image]
        keep = det_rank >= 0
        parts["image"].append(det_rank[keep])
        parts["cat"].append(block.det_cat[keep])
        parts["score"].append(block.det_score[keep])
        parts["tp"].append(block.det_tp[:, keep])
        parts["ig"].append(block.det_ig[:, keep])
    det_image = np.concatenate(parts["image"])
    order = np.argsort(det_image, kind="stable")
    gt_count = np.concatenate([b.gt_count for b in blocks])[first]
    extras = {key: np.concatenate([b.extras[key] for b in blocks])[first] for key in blocks[0].extras}
    return MatchedBlock(
        image_ids=unique_ids,
        det_image=det_image[order],
        det_cat=np.concatenate(parts["cat"])[order],
        det_score=np.concatenate(parts["score"])[order],
        det_tp=np.concatenate(parts["tp"], axis=1)[:, order],
        det_ig=np.concatenate(parts["ig"], axis=1)[:, order],
        gt_count=gt_count,
        extras=extras,
    )


@dataclass
class InstanceState:
    """Image-sorted matching statistics of one prediction set; ``summarize`` turns them into metrics.

    ``summarize(image_weights)`` evaluates the metrics on a reweighted image set (weights = how
    often each image is drawn), which is how the paired bootstrap avoids re-running matching.
    """

    matched: MatchedBlock
    protocol: str
    summarize_fn: Callable[[InstanceState, np.ndarray | None], dict[str, Any]]
    _curves: list[CategoryCurve] | None = field(default=None, repr=False)

    @property
    def image_ids(self) -> np.ndarray:
        """Image ids, sorted."""
        return self.matched.image_ids

    @property
    def n_thresholds(self) -> int:
        return self.matched.det_tp.shape[0]

    def curves(self) -> list[CategoryCurve]:
        """Per-category COCO curves, built once and reused by every bootstrap resample."""
        if self._curves is None:
            m = self.matched
            self._curves = build_category_curves(
                m.det_cat, np.arange(m.det_cat.size), m.det_image, m.det_score, m.det_tp, m.det_ig, m.gt_count
            )
        return self._curves

    def coco_precision_recall(self, image_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """COCOeval's precision (T, R, C) and recall (T, C) for area 'all' and the last maxDets."""
        return coco_precision_recall(self.curves(), self.n_thresholds, image_weights)

    def ultralytics_inputs(
        self, image_weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tp (N, T), conf, pred_cls, target_cls) as ultralytics' validator concatenates them.

        With weights, an image drawn k times contributes its detections and targets k times
        (consecutively), i.e. the metric of the resampled test set itself.
        """
        m = self.matched
        tp, conf, cls = m.det_tp.T, m.det_score, m.det_cat
        counts = m.gt_count.sum(axis=0)
        if image_weights is not None:
            reps = image_weights[m.det_image]
            tp, conf, cls = np.repeat(tp, reps, axis=0), np.repeat(conf, reps), np.repeat(cls, reps)
            counts = image_weights @ m.gt_count
        target_cls = np.repeat(np.arange(counts.size), counts)
        return tp, conf, cls, target_cls

    def summarize(self, image_weights: np.ndarray | None = None) -> dict[str, Any]:
        """All metrics of this prediction set, optionally on a reweighted image set."""
        return self.summarize_fn(self, image_weights)


def sum_per_image(image: np.ndarray, values: np.ndarray, n_images: int) -> np.ndarray:
    """(n_images, ...) sums of ``values`` rows grouped by ``image`` (a vectorised np.add.at)."""
    out = np.zeros((n_images,) + values.shape[1:], dtype=values.dtype)
    np.add.at(out, image, values)
    return out


def weighted_total(values: np.ndarray, image_weights: np.ndarray | None) -> np.ndarray:
    """Sum over images (axis 0), each image counted ``image_weights[i]`` times.

    Multiply-then-sum (not a matrix product) keeps the float summation order of ``values.sum(0)``,
    so unit weights reproduce the unweighted total bit for bit.
    """
    if image_weights is None:
        return values.sum(axis=0)
    return (image_weights.reshape((-1,) + (1,) * (values.ndim - 1)) * values).sum(axis=0)


class InstanceEvaluator:
    """Base of the COCO-style evaluators: streaming blocks, matching, DDP gather, state.

    Subclasses convert their ``update()`` inputs into an :class:`InstanceBlock` and supply the
    similarity (OKS or IoU), any per-image extras (PCK) and the summary.
    """

    #: pending raw images are matched once this many have accumulated (bounds memory)
    flush_images = 2048

    def __init__(self, categories: Mapping[int, str], protocol: str, max_dets: int) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")
        if not categories:
            raise ConfigError("categories: at least one category is needed")
        if int(max_dets) < 1:
            raise ConfigError(f"max_dets: must be >= 1, got {max_dets!r}")
        self.protocol = protocol
        self.max_dets = int(max_dets)
        self.categories = {int(k): str(v) for k, v in sorted(categories.items())}
        self._cat_ids = np.array(list(self.categories), dtype=np.int64)
        self.thresholds = COCO_THRESHOLDS if protocol == "coco" else ULTRALYTICS_THRESHOLDS
        self.reset()

    # ---- streaming -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every image added so far (call before each evaluation pass)."""
        self._pending: list[InstanceBlock] = []
        self._pending_images = 0
        self._matched: list[MatchedBlock] = []
        self._seen: set[Hashable] = set()
        self._id_kind: str | None = None

    def _register_image_ids(self, image_ids: Sequence[Hashable], source: str) -> np.ndarray:
        """Check ids are new and of one kind (int or str); returns them as an array."""
        ids = list(image_ids)
        for image_id in ids:
            kind = image_id_kind(image_id, source)
            if self._id_kind is None:
                self._id_kind = kind
            elif kind != self._id_kind:
                raise DataError(f"{source}: image id {image_id!r} is a {kind}, earlier ids were {self._id_kind}s")
        as_py = [int(i) if self._id_kind == "int" else i for i in ids]
        seen_now = set(as_py)
        if len(seen_now) != len(as_py) or self._seen & seen_now:
            dup = next(i for i in as_py if i in self._seen or as_py.count(i) > 1)
            raise DataError(f"{source}: image id {dup!r} was added twice")
        self._seen |= seen_now
        return image_id_array(as_py, self._id_kind or "int")

    def _category_index(self, labels: np.ndarray, source: str, what: str) -> np.ndarray:
        """Category ids -> index into the sorted category list; unknown ids are an error."""
        idx = np.searchsorted(self._cat_ids, labels)
        idx_c = np.minimum(idx, self._cat_ids.size - 1)
        bad = self._cat_ids[idx_c] != labels
        if bad.any():
            known = ", ".join(str(c) for c in self._cat_ids[:20])
            raise DataError(f"{source}: {what} has unknown category id {int(labels[bad][0])} (known: {known})")
        return idx_c

    def _add_block(self, block: InstanceBlock) -> None:
        self._pending.append(block)
        self._pending_images += block.image_ids.size
        if self._pending_images >= self.flush_images:
            self._flush()

    def update(
        self,
        image_ids: Sequence[Hashable],
        targets: Sequence[Mapping[str, Any]],
        preds: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add a batch of images (see the subclass docstring for the mapping keys)."""
        if not (len(image_ids) == len(targets) == len(preds)):
            raise DataError(
                f"update(): {len(image_ids)} image ids, {len(targets)} targets and {len(preds)} preds; one each per image"
            )
        if len(image_ids) == 0:
            return
        parts = [
            self._image_parts(local, image_id, target, pred, per_image_source("update()", image_id))
            for local, (image_id, target, pred) in enumerate(zip(image_ids, targets, preds))
        ]
        gt = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
        det = {key: np.concatenate([p[1][key] for p in parts]) for key in parts[0][1]}
        self._add_raw(self._register_image_ids(image_ids, "update()"), gt, det)

    def _image_parts(self, local: int, image_id: Hashable, target: Mapping[str, Any], pred: Mapping[str, Any],
                     src: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        raise NotImplementedError

    def _add_raw(self, image_ids: np.ndarray, gt: dict[str, np.ndarray], det: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        if not self._pending:
            return
        block = self._pending[0] if len(self._pending) == 1 else concat_blocks(self._pending)
        self._pending, self._pending_images = [], 0
        self._matched.append(self._match_block(block))

    # ---- matching ----------------------------------------------------------------------------

    def _match_block(self, block: InstanceBlock) -> MatchedBlock:
        """Match one block and reduce it to per-detection flags and per-image counts."""
        n_img, n_cat = block.image_ids.size, self._cat_ids.size
        gt, det = block.gt, block.det
        coco = self.protocol == "coco"
        n_det = det["score"].size
        pos = np.arange(n_det)
        score, image, cat = det["score"], det["image"], det["cat"]
        if coco:  # COCO keeps the best max_dets per (image, category)
            order = np.lexsort((pos, -score, image, cat))
            keep = rank_in_groups(cat[order] * n_img + image[order], n_cat * n_img) < self.max_dets
            det_sel = order[keep]
        else:  # ultralytics keeps the best max_det per image (NMS output)
            order = np.lexsort((pos, -score, image))
            kept = order[rank_in_groups(image[order], n_img) < self.max_dets]
            det_sel = kept[np.lexsort((kept, -score[kept], image[kept], cat[kept]))]
        gt_rows = np.arange(gt["image"].size) if coco else np.flatnonzero(~gt["crowd"])
        g_order = gt_rows[np.lexsort((gt_rows, gt["image"][gt_rows], gt["cat"][gt_rows]))]

        def similarity(d_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
            return self._similarity(block, det_sel[d_idx], g_order[g_idx])

        g_ignore = gt["ignore"][g_order] if coco else np.zeros(g_order.size, dtype=bool)
        g_crowd = gt["crowd"][g_order] if coco else np.zeros(g_order.size, dtype=bool)
        matched = match_pairs(
            cat[det_sel] * n_img + image[det_sel],
            gt["cat"][g_order] * n_img + gt["image"][g_order],
            n_cat * n_img,
            similarity,
            g_ignore,
            g_crowd,
            self.thresholds,
            self.protocol,
        )
        has = matched >= 0
        matched_ignored = np.append(g_ignore, False)[matched]  # index -1 (unmatched) -> the False
        tp = has & ~matched_ignored
        area = det["area"][det_sel]
        outside = (area < AREA_ALL[0]) | (area > AREA_ALL[1]) if coco else np.zeros(area.size, dtype=bool)
        ig = matched_ignored | (~has & outside[None, :])
        counted = ~g_ignore
        cells = gt["image"][g_order][counted] * n_cat + gt["cat"][g_order][counted]
        gt_count = np.bincount(cells, minlength=n_img * n_cat).reshape(n_img, n_cat).astype(np.int64)
        gt_det = np.full(g_order.size, -1, dtype=np.int64)
        first = matched[0]
        gt_det[first[first >= 0]] = det_sel[first >= 0]
        extras = self._extras(block, g_order[counted], gt_det[counted])
        final = np.lexsort((det_sel, -score[det_sel], image[det_sel]))
        return MatchedBlock(
            image_ids=block.image_ids,
            det_image=image[det_sel][final],
            det_cat=cat[det_sel][final],
            det_score=score[det_sel][final],
            det_tp=tp[:, final],
            det_ig=ig[:, final],
            gt_count=gt_count,
            extras=extras,
        )

    # ---- results -----------------------------------------------------------------------------

    def state(self) -> InstanceState:
        """Image-sorted statistics of everything added (gathered over DDP ranks)."""
        self._flush()
        gathered = distributed.all_gather_objects(self._matched)
        blocks = [block for rank_blocks in gathered for block in rank_blocks]
        merged = merge_blocks(blocks, self.thresholds.size, self._cat_ids.size)
        return InstanceState(matched=merged, protocol=self.protocol, summarize_fn=self._summarize)

    def bootstrap_state(self) -> InstanceState:
        """The per-image state :func:`vsynth.eval.bootstrap.paired_bootstrap` resamples."""
        return self.state()

    def compute(self) -> dict[str, Any]:
        """The metrics over every image added so far (on all DDP ranks together)."""
        return self.state().summarize(None)

    # ---- hooks -------------------------------------------------------------------------------

    def _similarity(self, block: InstanceBlock, det_idx: np.ndarray, gt_idx: np.ndarray) -> np.ndarray:
        """(P, D, G) similarity of detections ``det_idx`` (P, D) and ground truths ``gt_idx`` (P, G)."""
        raise NotImplementedError

    def _extras(self, block: InstanceBlock, gt_idx: np.ndarray, gt_det: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image arrays from the counted ground truths and their match at the first threshold."""
        return {}

    def _summarize(self, state: InstanceState, image_weights: np.ndarray | None) -> dict[str, Any]:
        raise NotImplementedError


def concat_blocks(blocks: Sequence[InstanceBlock]) -> InstanceBlock:
    """One raw block from several, re-basing the local image indices."""
    offsets = np.cumsum([0] + [b.image_ids.size for b in blocks])
    gt: dict[str, np.ndarray] = {}
    det: dict[str, np.ndarray] = {}
    for out, side in ((gt, "gt"), (det, "det")):
        keys = getattr(blocks[0], side).keys()
        for key in keys:
            arrays = [getattr(b, side)[key] for b in blocks]
            if key == "image":
                arrays = [a + off for a, off in zip(arrays, offsets)]
            out[key] = np.concatenate(arrays)
    return InstanceBlock(image_ids=np.concatenate([b.image_ids for b in blocks]), gt=gt, det=det)


def gt_ignore_flags(crowd: np.ndarray, areas: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """COCOeval's ground-truth ``_ignore`` for area range 'all': crowd, out-of-range area, extra."""
    ignore = crowd | (areas < AREA_ALL[0]) | (areas > AREA_ALL[1])
    return ignore if extra is None else ignore | extra


def unique_names(names: Sequence[str], ids: Sequence[Any]) -> list[str]:
    """Output keys for named classes/keypoints; a repeated name gets its id appended."""
    return [f"{name} ({i})" if list(names).count(name) > 1 else name for name, i in zip(names, ids)]


def per_image_source(source: str, image_id: Hashable) -> str:
    """Error-message prefix for one image passed to ``update()``."""
    return f"{source}: image {image_id!r}"
