"""Uncertainty of "arm A minus arm B" that includes training noise: a two-level bootstrap over seeds and images.

A paired bootstrap over test images (:mod:`vsynth.eval.bootstrap`) answers "how much would A - B
move with another test set?", but a retrained model moves too: two seeds of the same arm differ
by about as much as the effects people try to measure. This module puts both sources in one
interval and says how much of the spread each contributes.

Resampling (``samples`` times): within each arm, draw its S seeds with replacement; draw the N
shared test images with replacement (one draw for every run of both arms, so image difficulty
cancels in the difference); score every drawn run on the drawn images and take mean(A) - mean(B).
Scoring reuses the evaluators' per-image states (``summarize(image_weights)``), so metrics such
as OKS-mAP that are not means over images are resampled exactly; the array form
(:class:`PerImageScores`, one score per image) does the same with a matrix product.

What is reported (all for the difference of arm means):

* ``variance.seed``: training noise, sum over arms of (sample variance of the arm's per-seed
  metric on the full test set) / S. ``variance.image``: test-image noise, the variance of the
  difference over image resamples with every seed kept. ``seed_share``/``image_share`` are their
  shares of the sum (None when no arm has two seeds). The seed x image interaction is in both
  (slightly conservative).
* the interval: delta +- t * SE, SE the standard deviation of the two-level resamples, t from
  Student's t with Welch-Satterthwaite degrees of freedom (a handful of seeds estimates the seed
  variance poorly, and 1.96 would be overconfident). Seed resamples are rescaled by sqrt(S/(S-1))
  so that their variance is unbiased (a plain bootstrap of 3 seeds has 2/3 of the variance).
* a single-seed arm leaves its training noise unmeasured: it is listed in ``single_seed`` and the
  interval covers test images (and the other arm's seeds) only.
* power (:mod:`vsynth.report.power`): the minimum detectable effect and the seeds and images a
  gate needs.

:func:`compare_arms` is two pieces that also serve experiments of more than two arms (the data value
of :mod:`vsynth.report.data_value`): :func:`resample_groups` scores every run of any number of arms on
the same image draws, and :func:`difference` sums up one pair of them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.eval.bootstrap import image_weights, metric_value
from vsynth.report.power import Variances, power_report, t_quantile

#: image resamples scored per chunk (bounds the (chunk, N) weight matrix for large test sets)
_CHUNK = 64
ARRAY_METRIC = "mean"


class PerImageScores:
    """Array form of one run: a metric that is the mean of one score per test image.

    ``scores`` (N,) in the order of ``image_ids`` (default 0..N-1). Behaves like an evaluator's
    bootstrap state (``summarize(weights)`` gives ``{"mean": ...}``) and resamples many image
    draws at once with a matrix product.
    """

    def __init__(self, scores: Sequence[float] | np.ndarray, image_ids: Sequence[Any] | np.ndarray | None = None) -> None:
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        self.image_ids = np.arange(self.scores.size) if image_ids is None else np.asarray(image_ids)
        if self.image_ids.shape != self.scores.shape:
            raise DataError(f"per-image scores: {self.scores.size} scores for {self.image_ids.size} image ids")

    def summarize(self, image_weights: np.ndarray | None = None) -> dict[str, float]:
        if image_weights is None:
            return {ARRAY_METRIC: float(self.scores.mean())}
        return {ARRAY_METRIC: float(image_weights @ self.scores / image_weights.sum())}

    def resampled_metric(self, metric: str, weights: np.ndarray) -> np.ndarray:
        """The metric on each row of image multiplicities ``weights`` (R, N)."""
        if metric != ARRAY_METRIC:
            raise ConfigError(f"metric: per-image scores have one metric, {ARRAY_METRIC!r}, not {metric!r}")
        return weights @ self.scores / weights.sum(axis=1)


def arm_states(arm: Any, name: str) -> list[Any]:
    """One bootstrap state per seed: evaluator states as they are, arrays as :class:`PerImageScores`."""
    if isinstance(arm, np.ndarray) and arm.ndim in (1, 2):
        return [PerImageScores(row) for row in arm.reshape(-1, arm.shape[-1])]
    states = [s.bootstrap_state() if hasattr(s, "bootstrap_state") else s for s in arm]
    states = [PerImageScores(s) if isinstance(s, (np.ndarray, list, tuple)) else s for s in states]
    if not states:
        raise DataError(f"arm {name}: no runs to compare")
    return states


def _resampled(state: Any, metric: str, weights: np.ndarray) -> np.ndarray:
    fast = getattr(state, "resampled_metric", None)
    if fast is not None:
        return np.asarray(fast(metric, weights), dtype=np.float64)
    return np.array([metric_value(state.summarize(w), metric) for w in weights])


def _check_same_images(states: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    ref = np.asarray(states[0].image_ids)
    for s, name in zip(states[1:], names[1:]):
        ids = np.asarray(s.image_ids)
        if ids.shape != ref.shape or (ids != ref).any():
            raise DataError(f"{name} was scored on other test images than {names[0]} (a paired comparison needs the same)")
    if ref.size < 2:
        raise DataError("arm comparison: at least two test images are needed to resample them")
    return ref


def seed_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per resample r, the mean over S seeds drawn with replacement from ``values[:, r]``, rescaled.

    The deviation from the mean over all seeds is scaled by sqrt(S / (S - 1)), which makes the
    resampled variance an unbiased estimate of (seed variance) / S.
    """
    s, r = values.shape
    everyone = values.mean(axis=0)
    if s == 1:
        return everyone
    drawn = values[rng.integers(0, s, size=(r, s)), np.arange(r)[:, None]].mean(axis=1)
    return everyone + math.sqrt(s / (s - 1)) * (drawn - everyone)


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (image draws, seed draws) random streams of a two-level bootstrap with this ``seed``."""
    return np.random.default_rng([int(seed), 0]), np.random.default_rng([int(seed), 1])


def resample_groups(groups: Sequence[Sequence[Any]], labels: Sequence[str], *, metric: str, samples: int,
                    rng_images: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Every state of every group scored on the same ``samples`` image resamples.

    ``groups``: lists of states (one per seed) of arms scored on the same test images;
    ``labels``: one name per group for errors. Returns (full, resampled, N): per group the metric
    of each seed on all images (S,) and on each resample (S, R); resamples where any state's
    metric is undefined are dropped from every group.
    """
    flat = [s for g in groups for s in g]
    n_images = _check_same_images(flat, [f"{lab} seed {i}" for lab, g in zip(labels, groups) for i in range(len(g))]).size
    full = [np.array([metric_value(s.summarize(None), metric) for s in g]) for g in groups]
    values = [np.empty((len(g), int(samples))) for g in groups]
    for lo in range(0, int(samples), _CHUNK):
        weights = image_weights(rng_images, min(_CHUNK, int(samples) - lo), n_images)
        for vals, states in zip(values, groups):
            for i, state in enumerate(states):
                vals[i, lo : lo + weights.shape[0]] = _resampled(state, metric, weights)
    finite = np.logical_and.reduce([np.isfinite(v).all(axis=0) for v in values])
    if finite.sum() < 2:
        raise DataError(f"{metric} is undefined on (almost) every image resample; cannot bootstrap it")
    return full, [v[:, finite] for v in values], n_images


def compare_arms(a: Any, b: Any, *, metric: str = ARRAY_METRIC, samples: int = 1000, seed: int = 0,
                 level: float = 0.95, alpha: float = 0.05, power: float = 0.8, gate: float | None = 0.02,
                 names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """Two-level bootstrap of mean(A) - mean(B) over seeds and shared test images, with power.

    ``a``/``b``: one entry per seed, each an evaluator, its ``bootstrap_state()``, or a 1-D array
    of per-image scores (a 2-D array (S, N) is S seeds); all scored on the same images. ``metric``
    as in :func:`vsynth.eval.bootstrap.metric_value` (``mean`` for arrays). ``gate``: the effect
    the power section plans for (None: MDE only).

    Returns a JSON-able dict: ``metric``, ``delta``, ``low``/``high`` (the ``level`` interval),
    ``se``, ``df``, ``p_value`` (two-sided t test of 0), ``prob_a_better`` (share of resamples
    with A > B), ``samples``, ``num_images``, ``seeds`` ({name: S}), ``values`` ({name: per-seed
    metric}), ``variance`` (``seed``, ``seed_by_arm``, ``image``, ``two_level``, ``seed_share``,
    ``image_share``), ``training_noise`` (measured | partly measured | unmeasured),
    ``single_seed`` (names), ``notes`` and ``power`` (see :func:`vsynth.report.power.power_report`).
    """
    _check_options(level, samples)
    na, nb = names
    rng_images, rng_seeds = streams(seed)
    (full_a, full_b), (values_a, values_b), n_images = resample_groups(
        [arm_states(a, na), arm_states(b, nb)], names, metric=metric, samples=samples, rng_images=rng_images)
    return difference(full_a, full_b, values_a, values_b, n_images, rng_seeds=rng_seeds, metric=metric, level=level,
                      alpha=alpha, power=power, gate=gate, names=names)


def _check_options(level: float, samples: int) -> None:
    if not (0 < level < 1):
        raise ConfigError(f"level: expected an interval level in (0, 1), got {level!r}")
    if int(samples) < 2:
        raise ConfigError(f"samples: expected at least 2 resamples, got {samples!r}")


def difference(full_a: np.ndarray, full_b: np.ndarray, values_a: np.ndarray, values_b: np.ndarray, n_images: int, *,
               rng_seeds: np.random.Generator, metric: str, level: float = 0.95, alpha: float = 0.05,
               power: float = 0.8, gate: float | None = 0.02, names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """The two-level summary of mean(A) - mean(B) from per-seed metrics on all images (``full_*``, (S,))
    and on shared image resamples (``values_*``, (S, R)), as returned by :func:`compare_arms`."""
    _check_options(level, values_a.shape[1])
    na, nb = names
    delta = float(full_a.mean() - full_b.mean())
    image_only = values_a.mean(axis=0) - values_b.mean(axis=0)
    two_level = seed_means(values_a, rng_seeds) - seed_means(values_b, rng_seeds)

    seed_var = {name: (float(np.var(full, ddof=1)) if full.size > 1 else None)
                for name, full in ((na, full_a), (nb, full_b))}
    v_seed_terms = {name: (v / n if v is not None else None)
                    for (name, v), n in zip(seed_var.items(), (full_a.size, full_b.size))}
    v_seed = sum(v for v in v_seed_terms.values() if v is not None)
    v_image = float(np.var(image_only, ddof=1))
    v_two_level = float(np.var(two_level, ddof=1))
    components = Variances(seed_var[na], seed_var[nb], v_image * n_images)
    df = components.df(full_a.size, full_b.size, n_images)
    se = math.sqrt(v_two_level)
    half = t_quantile(0.5 + level / 2, df) * se
    p_value = _two_sided_p(delta, se, df)
    single = [name for name, full in ((na, full_a), (nb, full_b)) if full.size == 1]
    measured = "unmeasured" if len(single) == 2 else ("partly measured" if single else "measured")
    total = v_seed + v_image
    result: dict[str, Any] = {
        "metric": metric,
        "delta": delta,
        "low": delta - half,
        "high": delta + half,
        "level": level,
        "se": se,
        "df": df if math.isfinite(df) else None,
        "p_value": p_value,
        "prob_a_better": float(np.mean(two_level > 0)),
        "samples": int(values_a.shape[1]),
        "num_images": int(n_images),
        "seeds": {na: int(full_a.size), nb: int(full_b.size)},
        "values": {na: full_a.tolist(), nb: full_b.tolist()},
        "variance": {
            "seed": v_seed,
            "seed_by_arm": v_seed_terms,
            "image": v_image,
            "two_level": v_two_level,
            "seed_share": v_seed / total if total > 0 and measured != "unmeasured" else None,
            "image_share": v_image / total if total > 0 and measured != "unmeasured" else None,
        },
        "training_noise": measured,
        "single_seed": single,
        "method": "two-level bootstrap (seeds within each arm, then shared test images); t interval with "
                  "Welch-Satterthwaite df",
        "notes": _notes(single, names, v_seed, v_image),
    }
    result["power"] = power_report(components, int(full_a.size), int(full_b.size), int(n_images), se=se, df=df,
                                   gate=gate, alpha=alpha, power=power)
    return result


def _two_sided_p(delta: float, se: float, df: float) -> float:
    if se == 0:
        return 1.0 if delta == 0 else 0.0
    from scipy import stats

    z = abs(delta) / se
    return float(2 * (stats.norm.sf(z) if math.isinf(df) else stats.t.sf(z, df)))


def _notes(single: list[str], names: tuple[str, str], v_seed: float, v_image: float) -> list[str]:
    notes = []
    if len(single) == 2:
        notes.append("One seed per arm: training noise is unmeasured and the interval covers test images only; "
                     "two retrainings of the same arm can differ by more than this interval. Run >= 2 seeds per arm.")
    elif single:
        notes.append(f"Arm {single[0]} has a single seed: its training noise is unmeasured, so the interval covers "
                     f"test images and arm {[n for n in names if n != single[0]][0]}'s seeds only.")
    total = v_seed + v_image
    if total > 0 and not single:
        share = v_seed / total
        notes.append(f"{share:.0%} of the variance comes from training seeds, {1 - share:.0%} from test images: "
                     + ("more seeds narrow the interval most." if share > 0.5 else "more test images narrow it most."))
    return notes
