"""COCO-style greedy matching and precision/recall accumulation, vectorised in numpy.

Keypoint (OKS) and detection (IoU) evaluation share everything except the similarity between a
detection and a ground truth: detections are matched greedily by descending score at ten
thresholds at once, and the matches are turned into a precision/recall curve per category. This
module holds that shared part, so the two evaluators cannot drift apart.

Two matching rules are implemented, because users compare against numbers printed by both tools:

* ``coco``: exactly ``pycocotools.cocoeval.COCOeval.evaluateImg`` (ignored/crowd ground truth,
  ties between equally similar ground truths go to the *last* one, crowd regions can absorb any
  number of detections);
* ``ultralytics``: exactly ``ultralytics.engine.validator.BaseValidator.match_predictions``
  (no ignore flags, ties go to the *first* ground truth).

Speed comes from matching all (image, category) pairs of a block at once: pairs are bucketed by
their padded (detections, ground truths) size, and the greedy loop runs over the detection slot
(at most ``max_dets`` iterations) with numpy operations over every pair and threshold together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Exactly the expressions pycocotools' Params uses, so threshold comparisons agree bit for bit.
COCO_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
# ultralytics compares against torch.linspace(0.5, 0.95, 10) in float32; these are the same values.
ULTRALYTICS_THRESHOLDS = np.linspace(0.5, 0.95, 10).astype(np.float32).astype(np.float64)
# ultralytics.utils.metrics._AP_X: 101-point recall grid integrated with the trapezoid rule.
_ULTRALYTICS_AP_X = np.linspace(0, 1, 101)

# A similarity callback gets padded detection and ground-truth indices (P, D) and (P, G) into the
# block's flat arrays and returns the (P, D, G) similarity; padded slots are masked afterwards.
SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Bound on P * D * G per matching chunk; the OKS similarity multiplies it by K keypoints.
_MAX_CHUNK_ELEMENTS = 1 << 17


def group_offsets(group_sorted: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and size of each group in an array sorted by group id (ids 0..n_groups-1)."""
    counts = np.bincount(group_sorted, minlength=n_groups).astype(np.int64)
    starts = np.zeros(n_groups, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts


def rank_in_groups(group_sorted: np.ndarray, n_groups: int) -> np.ndarray:
    """Position of every element inside its group (0 for the first), for a group-sorted array."""
    starts, _ = group_offsets(group_sorted, n_groups)
    return np.arange(group_sorted.size, dtype=np.int64) - starts[group_sorted]


def _bucket_size(n: np.ndarray) -> np.ndarray:
    """Padded size for n items: exact up to 32 (few distinct sizes, no waste), else the next
    power of two (bounds both the number of buckets and the padding waste by 2x)."""
    pow2 = (1 << np.ceil(np.log2(np.maximum(n, 1))).astype(np.int64)).astype(np.int64)
    return np.where(n <= 32, n, pow2)


def greedy_match_coco(
    sim: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """COCOeval's greedy matching for many (image, category) pairs at once.

    ``sim`` is (P, D, G) with detections already in descending score order and ``-inf`` in padded
    slots; ``gt_ignore``/``gt_crowd`` are (P, G), a crowd ground truth always being ignored too
    (as COCOeval sets it). Returns (P, T, D): the matched ground-truth slot per threshold, or -1.

    Per detection COCOeval scans ground truths sorted non-ignored first and keeps the last one
    whose similarity is >= the best so far (starting at the threshold), stopping at the first
    ignored ground truth once a non-ignored one matched; a taken ground truth is skipped unless it
    is a crowd region. That equals: the last maximum among free non-ignored candidates, else the
    last maximum among free ignored candidates.
    """
    n_pairs, n_det, n_gt = sim.shape
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    two_tier = bool(gt_ignore.any())  # crowd implies ignore; without either, one tier suffices
    ignore = gt_ignore[:, None, :]
    reusable = gt_crowd[:, None, :]
    taken = np.zeros((n_pairs, thresholds.size, n_gt), dtype=bool)
    matched = np.full((n_pairs, thresholds.size, n_det), -1, dtype=np.int64)
    for d in range(n_det):
        s = sim[:, None, d, :]
        if two_tier:
            cand = (s >= thr) & (reusable | ~taken)
            regular = cand & ~ignore
            has_regular = regular.any(axis=-1, keepdims=True)
            cand = np.where(has_regular, regular, cand & ignore)
        else:
            cand = (s >= thr) & ~taken
        found = cand.any(axis=-1)
        if not found.any():
            continue
        values = np.where(cand, s, -np.inf)
        last = n_gt - 1 - np.argmax(values[..., ::-1], axis=-1)
        matched[:, :, d] = np.where(found, last, -1)
        pi, ti = np.nonzero(found)
        taken[pi, ti, last[pi, ti]] = True
    return matched


def greedy_match_ultralytics(sim: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """ultralytics' ``match_predictions`` (non-scipy branch) for many pairs at once.

    Each detection in descending confidence takes, per threshold, the first unclaimed ground
    truth with the highest similarity, and counts as correct if that similarity reaches the
    threshold. Same shapes and return convention as :func:`greedy_match_coco`.
    """
    n_pairs, n_det, n_gt = sim.shape
    thr = thresholds[None, :]
    taken = np.zeros((n_pairs, thresholds.size, n_gt), dtype=bool)
    matched = np.full((n_pairs, thresholds.size, n_det), -1, dtype=np.int64)
    for d in range(n_det):
        available = np.where(taken, 0.0, sim[:, None, d, :])
        best = np.argmax(available, axis=-1)
        correct = np.take_along_axis(available, best[..., None], axis=-1)[..., 0] >= thr
        if not correct.any():
            continue
        matched[:, :, d] = np.where(correct, best, -1)
        pi, ti = np.nonzero(correct)
        taken[pi, ti, best[pi, ti]] = True
    return matched


def match_pairs(
    det_pair: np.ndarray,
    gt_pair: np.ndarray,
    n_pairs: int,
    similarity: SimilarityFn,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
    rule: str,
) -> np.ndarray:
    """Match every detection of a block to a ground truth of the same (image, category) pair.

    ``det_pair``/``gt_pair`` give the pair id of each detection/ground truth; both arrays must be
    sorted by pair id, and detections inside a pair must be in descending score order. Returns
    (T, N_det): the index of the matched ground truth (into the ``gt_*`` arrays) or -1.
    """
    n_thr = thresholds.size
    out = np.full((n_thr, det_pair.size), -1, dtype=np.int64)
    d_start, d_count = group_offsets(det_pair, n_pairs)
    g_start, g_count = group_offsets(gt_pair, n_pairs)
    active = np.flatnonzero((d_count > 0) & (g_count > 0))
    if active.size == 0:
        return out
    d_pad = _bucket_size(d_count[active])
    g_pad = _bucket_size(g_count[active])
    # pairs without ignored ground truth get their own buckets: COCO matching is simpler there
    has_ignore = np.bincount(gt_pair[gt_ignore], minlength=n_pairs)[active] > 0
    bucket_key = (d_pad << 33) + (g_pad << 1) + has_ignore
    for key in np.unique(bucket_key):
        pairs = active[bucket_key == key]
        n_det, n_gt = int(key >> 33), int((key >> 1) & 0xFFFFFFFF)
        chunk = max(1, _MAX_CHUNK_ELEMENTS // (n_det * n_gt))
        for lo in range(0, pairs.size, chunk):
            p = pairs[lo : lo + chunk]
            d_slot = np.arange(n_det)[None, :]
            g_slot = np.arange(n_gt)[None, :]
            d_ok = d_slot < d_count[p][:, None]
            g_ok = g_slot < g_count[p][:, None]
            d_idx = np.where(d_ok, d_start[p][:, None] + d_slot, 0)
            g_idx = np.where(g_ok, g_start[p][:, None] + g_slot, 0)
            sim = similarity(d_idx, g_idx)
            sim = np.where(d_ok[:, :, None] & g_ok[:, None, :], sim, -np.inf)
            if rule == "coco":
                local = greedy_match_coco(sim, gt_ignore[g_idx] & g_ok, gt_crowd[g_idx] & g_ok, thresholds)
            elif rule == "ultralytics":
                local = greedy_match_ultralytics(sim, thresholds)
            else:
                raise ValueError(f"unknown matching rule {rule!r}")
            glob = np.where(local >= 0, np.take_along_axis(g_idx[:, None, :], np.maximum(local, 0), axis=-1), -1)
            pi, di = np.nonzero(d_ok)
            out[:, d_idx[pi, di]] = glob[pi, :, di].T
    return out


# --------------------------------------------------------------------------------------------
# Accumulation (COCOeval.accumulate), restricted to what the headline metrics need.


@dataclass
class CategoryCurve:
    """One category's detections in COCO's global score order, reduced to what AP/AR need.

    Only true positives move the COCO precision envelope sampled at recall thresholds (a false
    positive never raises a later precision), so per threshold the curve keeps the positions of
    true positives and of ignored detections; false positives are "everything else". This makes
    re-accumulating under bootstrap image weights O(#TP) per threshold instead of O(#detections).
    """

    det_image: np.ndarray  # (N,) image index of each detection, in global descending-score order
    tp_pos: list[np.ndarray]  # per threshold: positions (into the N order) of true positives
    ig_pos: list[np.ndarray]  # per threshold: positions of ignored detections (neither TP nor FP)
    gt_per_image: np.ndarray  # (I,) non-ignored ground truths of this category per image
    has_eval: bool  # COCO skips a category with no ground truth and no detection in any image


def build_category_curves(
    det_cat: np.ndarray,
    det_order: np.ndarray,
    det_image: np.ndarray,
    det_score: np.ndarray,
    tp: np.ndarray,
    ignored: np.ndarray,
    gt_count: np.ndarray,
) -> list[CategoryCurve]:
    """Sort each category's detections as COCOeval.accumulate does and index its TP/ignore flags.

    ``det_order`` must put detections in COCO's concatenation order (images by ascending id, each
    image's detections by descending score, ties in input order); a stable sort by descending
    score on top of it reproduces COCO's ``np.argsort(-dtScores, kind='mergesort')``.
    ``tp``/``ignored`` are (T, N); ``gt_count`` is (I, C) non-ignored ground truths.
    """
    curves = []
    n_cat = gt_count.shape[1]
    gt_any = gt_count.sum(axis=0) > 0
    for c in range(n_cat):
        sel = det_order[det_cat[det_order] == c]
        sel = sel[np.argsort(-det_score[sel], kind="mergesort")]
        t_flags = tp[:, sel]
        i_flags = ignored[:, sel]
        curves.append(
            CategoryCurve(
                det_image=det_image[sel],
                tp_pos=[np.flatnonzero(row) for row in t_flags],
                ig_pos=[np.flatnonzero(row) for row in i_flags],
                gt_per_image=gt_count[:, c].astype(np.int64),
                has_eval=bool(gt_any[c] or sel.size > 0),
            )
        )
    return curves


def coco_precision_recall(
    curves: list[CategoryCurve], n_thresholds: int, image_weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate's precision (T, R, C) and recall (T, C) for one area range / maxDets.

    Categories without (weighted) ground truth get -1, as in COCOeval. ``image_weights`` (I,)
    counts how often each image is drawn (bootstrap); None means every image once. The numbers
    are computed with the same floating-point operations as pycocotools.
    """
    n_rec = RECALL_THRESHOLDS.size
    precision = -np.ones((n_thresholds, n_rec, len(curves)))
    recall = -np.ones((n_thresholds, len(curves)))
    eps = np.spacing(1)
    for c, curve in enumerate(curves):
        if not curve.has_eval:
            continue
        if image_weights is None:
            npig = int(curve.gt_per_image.sum())
            w_det = None
            n_det = curve.det_image.size
        else:
            npig = int(image_weights @ curve.gt_per_image)
            w_det = image_weights[curve.det_image]
            n_det = int(w_det.sum())
        if npig == 0:
            continue
        cum_w = np.arange(1, curve.det_image.size + 1) if w_det is None else np.cumsum(w_det)
        for t in range(n_thresholds):
            pos = curve.tp_pos[t]
            if pos.size == 0:
                precision[t, :, c] = 0.0
                recall[t, c] = 0.0
                continue
            ig = curve.ig_pos[t]
            if w_det is None:
                tp_sum = np.arange(1, pos.size + 1).astype(float)
                ig_before = np.searchsorted(ig, pos, side="right")
            else:
                tp_sum = np.cumsum(w_det[pos]).astype(float)
                ig_cum = np.concatenate(([0], np.cumsum(w_det[ig])))
                ig_before = ig_cum[np.searchsorted(ig, pos, side="right")]
            fp_sum = (cum_w[pos] - ig_before).astype(float) - tp_sum
            rc = tp_sum / npig
            pr = tp_sum / (fp_sum + tp_sum + eps)
            envelope = np.maximum.accumulate(pr[::-1])[::-1]
            idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            inside = idx < pos.size
            precision[t, :, c] = np.where(inside, envelope[np.minimum(idx, pos.size - 1)], 0.0)
            recall[t, c] = rc[-1] if n_det else 0.0
    return precision, recall


def mean_valid(values: np.ndarray) -> float:
    """COCOeval.summarize's mean over entries > -1; NaN where pycocotools would print -1."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


# --------------------------------------------------------------------------------------------
# Accumulation (ultralytics.utils.metrics.ap_per_class / compute_ap).


def ultralytics_ap(
    tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AP per class and threshold exactly as ultralytics' ``ap_per_class`` returns it.

    ``tp`` is (N, T) bool in concatenation order, ``conf``/``pred_cls`` (N,), ``target_cls`` (M,)
    one entry per ground truth. Returns (ap (nc, T), classes (nc,)) over the classes that have
    ground truth; predictions of other classes are ignored, as in ultralytics.
    """
    order = np.argsort(-conf)
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    classes, n_labels = np.unique(target_cls, return_counts=True)
    ap = np.zeros((classes.size, tp.shape[1]))
    eps = 1e-16
    for ci, c in enumerate(classes):
        sel = pred_cls == c
        if not sel.any():
            continue
        tpc = tp[sel].cumsum(0)
        fpc = (1 - tp[sel]).cumsum(0)
        rec = tpc / (n_labels[ci] + eps)
        prec = tpc / (tpc + fpc)
        for j in range(tp.shape[1]):
            ap[ci, j] = _ultralytics_compute_ap(rec[:, j], prec[:, j])
    return ap, classes


def _ultralytics_compute_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """ultralytics' ``compute_ap``: precision envelope, 101-point interpolation, trapezoid rule."""
    mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(np.trapezoid(np.interp(_ULTRALYTICS_AP_X, mrec, mpre), _ULTRALYTICS_AP_X))
