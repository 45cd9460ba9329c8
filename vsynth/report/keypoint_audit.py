"""Which keypoints moved, and how: a per-keypoint audit of two prediction sets on the same ground truth.

An OKS-mAP difference says that predictions got better or worse, not where. Synthetic labels
often follow a cleaner convention than the real ones (a wheel's centre rather than where the
tyre meets the road): a model trained on them moves those points consistently, and the real
metric punishes it. This audit measures, per keypoint and per prediction set, on the matches
of COCO's own greedy OKS matching at OKS 0.5 (:class:`vsynth.eval.keypoints.KeypointEvaluator`):

* PCK (as the evaluator's ``per_keypoint`` pck) and the mean OKS similarity of matched points;
* the mean signed offset (dx, dy) of the prediction from the ground truth, in units of the
  object's scale sqrt(area), over the visible points of matched ground truths;
* A - B of each, and a test per keypoint of "the systematic offsets of A and B are equal".

Uncertainty: test images are resampled with replacement (the same draw for both prediction
sets, so image difficulty cancels), every statistic is a ratio of per-image sums recomputed on
each resample, and intervals are percentile intervals. The test is Hotelling's test of the 2-D
offset difference with the bootstrap covariance (an F test whose degrees of freedom count both the
images that hold the keypoint and the resamples, see :func:`wald_p_value`); p-values
are Holm-adjusted over the keypoints, so on null data the chance that *any* keypoint of a
comparison is flagged is at most ``alpha``. Flagged keypoints (adjusted p < alpha) are listed in
``flagged`` and drawn (:mod:`vsynth.report.offset_arrows`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.eval.bootstrap import image_weights

STATS = ("pck", "oks", "dx", "dy")
_SUMS = ("visible", "hit", "similarity", "matched", "dx", "dy")
_CHUNK = 64
ADJUSTMENTS = ("holm", "none")


def _per_image_sums(state: Any, path: str) -> np.ndarray:
    """(I, 6, K) per-image sums: visible, PCK hits, similarity, matched, dx, dy (scale units)."""
    ex = state.matched.extras
    if "kp_offset" not in ex:
        raise DataError(f"{path}: no images to audit")
    return np.stack([ex["kp_visible"], ex["kp_hit"], ex["kp_similarity"], ex["kp_matched"],
                     ex["kp_offset"][..., 0], ex["kp_offset"][..., 1]], axis=-2).astype(np.float64)


def _stats(sums: np.ndarray) -> np.ndarray:
    """(..., 6, K) summed quantities -> (..., 4, K): pck, oks (matched), dx, dy; NaN where undefined."""
    visible, hit, sim, matched, dx, dy = (sums[..., i, :] for i in range(len(_SUMS)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([hit / visible, sim / matched, dx / matched, dy / matched], axis=-2)


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring resamples where the statistic is undefined."""
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore"), _quiet():
        low, high = np.nanquantile(reps, [tail, 1 - tail], axis=0)
    return low, high


class _quiet:
    """Silence numpy's 'All-NaN slice' warning (an undefined statistic stays NaN, i.e. null)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def wald_p_value(delta: np.ndarray, reps: np.ndarray, unit_sizes: np.ndarray) -> float:
    """Two-sided p-value of delta (d,) = 0 from bootstrap replicates (R, d) of a mean over images.

    Hotelling's test with the bootstrap covariance S standing in for the sampling covariance:
    T^2 = delta' S^-1 delta and T^2 (nu - r + 1) / (r nu) ~ F(r, nu - r + 1), r the rank of S.
    S is uncertain twice, from the images and from the R resamples, so 1 / nu = 1 / nu_images +
    1 / (R - 1) (relative variances add). ``unit_sizes``: points per image (0 = image without
    the keypoint); images holding more points weigh more, so nu_images = (sum c)^2 / sum c^2 - 1,
    the effective number of images minus one (n - 1 when all hold the same number). S is first
    scaled by n / (n - 1), the bootstrap's own small-sample bias. With many images and resamples
    this is chi-square(r); with few it keeps the far tail (which Holm's adjustment reads) honest.
    """
    from scipy import stats

    sizes = np.asarray(unit_sizes, dtype=np.float64)
    sizes = sizes[sizes > 0]
    n = sizes.size
    finite = reps[np.isfinite(reps).all(axis=1)]
    if not np.isfinite(delta).all() or finite.shape[0] < 3 or n < 2:
        return float("nan")
    cov = np.atleast_2d(np.cov(finite, rowvar=False)) * n / (n - 1)
    rank = int(np.linalg.matrix_rank(cov, tol=1e-12 * max(float(np.trace(cov)), 1e-300)))
    if rank == 0:
        return 1.0 if np.allclose(delta, 0) else 0.0
    t2 = float(delta @ np.linalg.pinv(cov, rcond=1e-10) @ delta)
    nu_images = sizes.sum() ** 2 / (sizes**2).sum() - 1
    nu = 1.0 / (1.0 / max(nu_images, 1e-9) + 1.0 / (finite.shape[0] - 1))
    if nu - rank + 1 <= 0:
        return float("nan")
    return float(stats.f.sf(t2 * (nu - rank + 1) / (rank * nu), rank, nu - rank + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count as tests)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _entry(value: float, low: float, high: float) -> dict[str, float | None]:
    return {"value": _num(value), "low": _num(low), "high": _num(high)}


def audit_states(state_a: Any, state_b: Any, names: Sequence[str], *, samples: int = 1000, seed: int = 0,
                 level: float = 0.95, alpha: float = 0.05, adjust: str = "holm",
                 labels: tuple[str, str] = ("A", "B"), sources: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """The audit of two keypoint evaluator states on the same images (see the module docstring).

    ``names``: keypoint names in order. Returns the ``keypoint_audit.json`` content (without the
    file paths): per keypoint ``{label: {n_visible, n_matched, pck, oks, dx, dy}, "A-B": {pck,
    oks, dx, dy, p_value, p_adjusted, flagged}}`` (each statistic ``{value, low, high}``) and the
    ``flagged`` keypoint names.
    """
    if not (0 < level < 1):
        raise ConfigError(f"level: expected an interval level in (0, 1), got {level!r}")
    if not (0 < alpha < 1):
        raise ConfigError(f"alpha: expected a test level in (0, 1), got {alpha!r}")
    if adjust not in ADJUSTMENTS:
        raise ConfigError(f"adjust: expected one of {ADJUSTMENTS}, got {adjust!r}")
    if int(samples) < 10:
        raise ConfigError(f"samples: expected at least 10 resamples, got {samples!r}")
    ids_a, ids_b = np.asarray(state_a.image_ids), np.asarray(state_b.image_ids)
    if ids_a.shape != ids_b.shape or (ids_a != ids_b).any():
        raise DataError(f"{sources[1]}: scored on other images than {sources[0]}")
    sums = np.stack([_per_image_sums(state_a, sources[0]), _per_image_sums(state_b, sources[1])], axis=1)
    n_images, k = sums.shape[0], sums.shape[-1]
    if len(names) != k:
        raise DataError(f"{len(names)} keypoint names for {k} keypoints")
    full = _stats(sums.sum(axis=0))  # (2, 4, K)
    rng = np.random.default_rng(int(seed))
    flat = sums.reshape(n_images, -1)
    reps = np.empty((int(samples), 2, len(STATS), k))
    for lo in range(0, int(samples), _CHUNK):
        rows = min(_CHUNK, int(samples) - lo)
        weights = image_weights(rng, rows, n_images).astype(np.float64)
        reps[lo : lo + rows] = _stats((weights @ flat).reshape((rows,) + sums.shape[1:]))
    arm_low, arm_high = _interval(reps, level)
    diff_reps = reps[:, 0] - reps[:, 1]
    diff_full = full[0] - full[1]
    diff_low, diff_high = _interval(diff_reps, level)
    points = sums[:, :, 3, :].sum(axis=1)  # (I, K) matched points per image, both sets
    p_values = [wald_p_value(diff_full[2:, j], diff_reps[:, 2:, j], points[:, j]) for j in range(k)]
    p_adjusted = holm(p_values) if adjust == "holm" else [float(p) for p in p_values]
    totals = sums.sum(axis=0)
    keypoints: dict[str, Any] = {}
    flagged = []
    for j, name in enumerate(names):
        entry: dict[str, Any] = {}
        for a, label in enumerate(labels):
            entry[label] = {"n_visible": int(totals[a, 0, j]), "n_matched": int(totals[a, 3, j])}
            entry[label].update({s: _entry(full[a, i, j], arm_low[a, i, j], arm_high[a, i, j])
                                 for i, s in enumerate(STATS)})
        is_flagged = bool(np.isfinite(p_adjusted[j]) and p_adjusted[j] < alpha)
        entry[f"{labels[0]}-{labels[1]}"] = {
            **{s: _entry(diff_full[i, j], diff_low[i, j], diff_high[i, j]) for i, s in enumerate(STATS)},
            "p_value": _num(p_values[j]), "p_adjusted": _num(p_adjusted[j]), "flagged": is_flagged}
        keypoints[name] = entry
        if is_flagged:
            flagged.append(name)
    return {"labels": list(labels), "num_images": int(n_images), "samples": int(samples), "seed": int(seed),
            "level": level, "alpha": alpha, "adjust": adjust, "match_oks": 0.5,
            "offset_unit": "object scale sqrt(area); dx to the right, dy down (image axes)",
            "keypoints": keypoints, "flagged": flagged}


def reference_layout(gt: Any) -> np.ndarray:
    """(K, 2) keypoint positions of a reference object, relative to its box centre, in units of sqrt(area).

    The reference is the non-crowd ground truth with the most labelled points (the largest on a
    tie), so the skeleton is one real pose rather than an average over viewpoints; its unlabelled
    points are filled with the mean relative position over all objects (NaN if never labelled).
    """
    a = gt.arrays
    keep = ~a["crowd"]
    kpts, boxes, areas = a["keypoints"][keep], a["boxes"][keep], a["areas"][keep]
    k = gt.num_keypoints
    if kpts.shape[0] == 0:
        return np.full((k, 2), np.nan)
    scale = np.sqrt(np.maximum(areas, 1.0))[:, None]
    cx, cy = (boxes[:, 0] + boxes[:, 2] / 2)[:, None], (boxes[:, 1] + boxes[:, 3] / 2)[:, None]
    vis = kpts[:, :, 2] > 0
    rel = np.stack([(kpts[:, :, 0] - cx) / scale, (kpts[:, :, 1] - cy) / scale], axis=-1)
    with np.errstate(invalid="ignore"):
        mean = (rel * vis[..., None]).sum(axis=0) / vis.sum(axis=0)[:, None]
    best = int(np.lexsort((-areas, -vis.sum(axis=1)))[0])
    return np.where(vis[best][:, None], rel[best], mean)


def run_audit(gt_path: str | Path, pred_path: str | Path, control_path: str | Path, *,
              sigmas: Sequence[float] | None = None, protocol: str = "coco", pck_alpha: float = 0.05,
              max_dets: int | None = None, out_dir: str | Path = ".", **options: Any) -> dict[str, Any]:
    """Audit two COCO results files on one COCO keypoints ground truth; write the JSON and PNG.

    ``options`` go to :func:`audit_states`. Writes ``out_dir/keypoint_audit.json`` and
    ``out_dir/keypoint_audit.png``; returns the JSON content.
    """
    from vsynth.eval import coco_io
    from vsynth.eval.coco_style import unique_names
    from vsynth.eval.keypoints import KeypointEvaluator
    from vsynth.report.offset_arrows import draw_offset_arrows
    from vsynth.run.atomic import write_json

    gt = coco_io.load_keypoint_gt(str(gt_path))
    resolved = coco_io.resolve_sigmas(gt, sigmas, protocol)
    states = [KeypointEvaluator.from_coco_files(str(gt_path), str(p), sigmas=resolved, protocol=protocol,
                                                pck_alpha=pck_alpha, max_dets=max_dets).bootstrap_state()
              for p in (pred_path, control_path)]
    k = gt.num_keypoints
    names = unique_names(gt.keypoint_names, range(k)) if gt.keypoint_names else [str(i) for i in range(k)]
    result = {"gt": str(gt_path), "pred": {"A": str(pred_path), "B": str(control_path)},
              "sigmas": [float(s) for s in resolved], "protocol": protocol, "pck_alpha": pck_alpha}
    result.update(audit_states(*states, names, sources=(str(pred_path), str(control_path)), **options))
    out = Path(out_dir)
    png = out / "keypoint_audit.png"
    result["png"] = str(png)
    layout = reference_layout(gt)
    skeleton = _skeleton(coco_io.read_json(str(gt_path), "ground truth")[0], k)
    label_a, label_b = result["labels"]
    offsets = {label: np.array([[result["keypoints"][n][label][s]["value"] for s in ("dx", "dy")] for n in names],
                               dtype=np.float64) for label in (label_a, label_b)}
    draw_offset_arrows(png, layout, names, offsets, result["flagged"], skeleton,
                       title=f"Mean keypoint offset: {_short(pred_path)} ({label_a}) vs {_short(control_path)} ({label_b})")
    write_json(out / "keypoint_audit.json", result)
    return result


def _short(path: str | Path) -> str:
    """The file name with its folder (run folders all hold a predictions_test.json)."""
    p = Path(str(path))
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _skeleton(data: Any, k: int) -> list[tuple[int, int]]:
    """0-based keypoint pairs from the first category's COCO ``skeleton`` (1-based), if valid."""
    for cat in data.get("categories", []) if isinstance(data, dict) else []:
        sk = cat.get("skeleton") if isinstance(cat, dict) else None
        if isinstance(sk, list):
            pairs = [(int(a) - 1, int(b) - 1) for a, b in (e for e in sk if isinstance(e, list) and len(e) == 2)]
            return [(a, b) for a, b in pairs if 0 <= a < k and 0 <= b < k]
    return []
