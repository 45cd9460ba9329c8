"""Paired bootstrap over test images: the uncertainty of "arm A minus arm B".

Two prediction sets on the same ground truth are compared on the *same* resampled image sets,
so image difficulty cancels out and the interval reflects only how much the difference depends
on which test images happened to be drawn.

Efficiency: matching is done once. Each evaluator's state keeps, per image, the matching
outcome (per-threshold TP/ignore flags with scores and the ground-truth count, or the per-class
pixel counts); a resample is a vector of image multiplicities, and the metrics are re-accumulated
from those weights (see :func:`vsynth.eval.matching.coco_precision_recall`). At weights of one
the result is exactly ``compute()``, so ``delta`` equals metric(A) - metric(B).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from vsynth.errors import ConfigError, DataError


class BootstrapState(Protocol):
    """What the bootstrap needs from an evaluator: sorted image ids and reweighted metrics."""

    image_ids: np.ndarray

    def summarize(self, image_weights: np.ndarray | None = None) -> dict[str, Any]: ...


def _state(obj: Any) -> BootstrapState:
    return obj.bootstrap_state() if hasattr(obj, "bootstrap_state") else obj


def metric_value(metrics: dict[str, Any], metric: str) -> float:
    """A scalar metric by key; nested entries as ``group/name`` (e.g. ``per_class_ap/car``)."""
    value: Any = metrics
    for part in metric.split("/"):
        if not isinstance(value, dict) or part not in value:
            scalars = sorted(k for k, v in metrics.items() if isinstance(v, float))
            raise ConfigError(f"metric: {metric!r} is not a metric of this evaluator (scalars: {', '.join(scalars)})")
        value = value[part]
    if isinstance(value, dict):
        raise ConfigError(f"metric: {metric!r} is a group; name one entry, e.g. '{metric}/{next(iter(value))}'")
    return float(value)


def image_weights(rng: np.random.Generator, rows: int, n_images: int) -> np.ndarray:
    """(rows, n_images) multiplicities of ``n_images`` images drawn with replacement, one draw per row."""
    idx = rng.integers(0, n_images, size=(rows, n_images)) + (np.arange(rows) * n_images)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n_images).reshape(rows, n_images)


def paired_bootstrap(
    a: Any,
    b: Any,
    metric: str = "oks_map",
    n: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Percentile confidence interval of metric(A) - metric(B) over resampled test images.

    ``a``/``b`` are evaluators (anything with ``bootstrap_state()``) or their states, filled with
    the same images. Returns ``value_a``, ``value_b``, ``delta`` (on all images), ``low``/``high``
    (the ``ci`` interval), ``prob_a_better`` (share of resamples with A > B), ``p_value``
    (two-sided: twice the smaller share of resamples on either side of 0, at most 1), ``n``,
    ``ci``, ``num_images``.
    """
    if not (0 < ci < 1):
        raise ConfigError(f"ci: expected a level in (0, 1), got {ci!r}")
    if int(n) < 1:
        raise ConfigError(f"n: expected a positive number of resamples, got {n!r}")
    state_a, state_b = _state(a), _state(b)
    ids_a, ids_b = np.asarray(state_a.image_ids), np.asarray(state_b.image_ids)
    if ids_a.shape != ids_b.shape or (ids_a != ids_b).any():
        only_a = np.setdiff1d(ids_a, ids_b)
        only_b = np.setdiff1d(ids_b, ids_a)
        example = f"e.g. {only_a[0]!r} only in A" if only_a.size else (f"e.g. {only_b[0]!r} only in B" if only_b.size else "")
        raise DataError(f"paired bootstrap: A and B were evaluated on different images ({example})")
    n_images = ids_a.size
    if n_images == 0:
        raise DataError("paired bootstrap: no images to resample")
    value_a = metric_value(state_a.summarize(None), metric)
    value_b = metric_value(state_b.summarize(None), metric)
    rng = np.random.default_rng(seed)
    deltas = np.empty(int(n))
    for r in range(int(n)):
        weights = np.bincount(rng.integers(0, n_images, size=n_images), minlength=n_images)
        deltas[r] = metric_value(state_a.summarize(weights), metric) - metric_value(
            state_b.summarize(weights), metric
        )
    tail = (1 - ci) / 2
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(deltas, [tail, 1 - tail]) if np.isfinite(deltas).any() else (np.nan, np.nan)
    finite = deltas[np.isfinite(deltas)]
    share_le = float(np.mean(finite <= 0)) if finite.size else float("nan")
    share_ge = float(np.mean(finite >= 0)) if finite.size else float("nan")
    return {
        "metric": metric,
        "value_a": value_a,
        "value_b": value_b,
        "delta": value_a - value_b,
        "low": float(low),
        "high": float(high),
        "prob_a_better": float(np.mean(finite > 0)) if finite.size else float("nan"),
        "p_value": min(1.0, 2 * min(share_le, share_ge)),
        "n": int(n),
        "ci": float(ci),
        "num_images": int(n_images),
    }
