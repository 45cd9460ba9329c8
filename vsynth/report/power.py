"""Power of an arm comparison: the smallest effect it could detect, and the seeds and test images a gate needs.

"A - B is not distinguishable from zero" means little until one knows what the experiment could
have seen. Given the measured variance components of a difference of arm means (see
:mod:`vsynth.report.uncertainty`), this module answers: what is the smallest true difference the
experiment detects with the given power at the given two-sided level, and how many seeds per arm
(at the current test set) or test images (at the current seeds) would make a gate, e.g. the
users' 2 pp, detectable.

Model. Over S_A and S_B seeds and N shared test images, the variance of mean(A) - mean(B) is

    SE^2 = v_A / S_A + v_B / S_B + v_img / N

with v_X the seed-to-seed variance of arm X's metric (training noise, as seen on this test set)
and v_img the per-image variance of the paired difference (N times the variance of the
difference over image resamples). The minimum detectable effect (MDE) at two-sided level alpha
and power 1 - beta is (t_{1-alpha/2, nu} + t_{1-beta, nu}) * SE, with nu the Welch-Satterthwaite
degrees of freedom of SE^2 (v_X is estimated from S_X - 1 degrees of freedom, v_img from N - 1):
with few seeds the t quantiles, not 1.96 and 0.84, are what keeps the numbers honest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from vsynth.errors import ConfigError

#: upper bounds of the searches (beyond them a design is reported as not reachable)
MAX_SEEDS = 10_000
MAX_IMAGES = 10**9


@dataclass(frozen=True)
class Variances:
    """Variance components of a difference of arm means (see the module docstring).

    ``seed_a``/``seed_b``: per-seed variance of each arm's metric, None when unmeasured (one seed);
    ``image``: per-image variance of the paired difference.
    """

    seed_a: float | None
    seed_b: float | None
    image: float

    def parts(self, seeds_a: float, seeds_b: float, images: float) -> list[tuple[float, float]]:
        """(variance, degrees of freedom) of each measured term at a design of seeds and images."""
        out = []
        for v, s in ((self.seed_a, seeds_a), (self.seed_b, seeds_b)):
            if v is not None and s >= 1:
                out.append((v / s, s - 1))
        out.append((self.image / images, images - 1))
        return out

    def se(self, seeds_a: float, seeds_b: float, images: float) -> float:
        """Standard error of the difference at this design (unmeasured seed terms count as 0)."""
        return math.sqrt(sum(v for v, _ in self.parts(seeds_a, seeds_b, images)))

    def df(self, seeds_a: float, seeds_b: float, images: float) -> float:
        """Welch-Satterthwaite degrees of freedom of the variance at this design."""
        return satterthwaite_df(self.parts(seeds_a, seeds_b, images))


def satterthwaite_df(parts: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of independent variance estimates ``(variance, df)``.

    nu = (sum v)^2 / sum(v^2 / df); terms with df <= 0 carry no information and are skipped in
    the denominator; an all-zero variance gives infinity (nothing random left).
    """
    total = sum(v for v, _ in parts)
    denom = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    if total <= 0 or denom <= 0:
        return math.inf
    return total * total / denom


def t_quantile(q: float, df: float) -> float:
    """Quantile ``q`` of Student's t with ``df`` degrees of freedom (normal for infinite df)."""
    from scipy import stats

    return float(stats.norm.ppf(q)) if math.isinf(df) else float(stats.t.ppf(q, df))


def check_levels(alpha: float, power: float) -> None:
    """ConfigError unless 0 < alpha < 1 and 0 < power < 1."""
    if not (0 < alpha < 1):
        raise ConfigError(f"alpha: expected a test level in (0, 1), got {alpha!r}")
    if not (0 < power < 1):
        raise ConfigError(f"power: expected a power in (0, 1), got {power!r}")


def minimum_detectable_effect(se: float, df: float = math.inf, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference detected with probability ``power`` by a two-sided level-``alpha`` test.

    (t_{1-alpha/2, df} + t_{power, df}) * se; for infinite df and the defaults, 2.8016 * se.
    """
    check_levels(alpha, power)
    if se == 0:
        return 0.0
    return (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se


def _mde_at(v: Variances, seeds_a: float, seeds_b: float, images: float, alpha: float, power: float) -> float:
    return minimum_detectable_effect(v.se(seeds_a, seeds_b, images), v.df(seeds_a, seeds_b, images), alpha, power)


def _smallest(ok, lo: int, hi: int) -> int | None:
    """Smallest integer n in [lo, hi] with ok(n), for ok monotone (False ... True); None if ok(hi) fails."""
    if ok(lo):
        return lo
    step = lo
    while step < hi and not ok(min(2 * step, hi)):
        step = min(2 * step, hi)
    if step >= hi:
        return None
    a, b = step, min(2 * step, hi)  # ok(a) False, ok(b) True
    while b - a > 1:
        mid = (a + b) // 2
        if ok(mid):
            b = mid
        else:
            a = mid
    return b


def seeds_needed(v: Variances, effect: float, images: int, alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """Seeds per arm (the same in both) that make ``effect`` detectable at ``images`` test images.

    Returns ``{"seeds": n or None, "images": images, "reason": None or why not}``. Both seed
    variances must be known; with infinitely many seeds only the image term is left, so when
    that alone exceeds the effect the answer is "not reachable by seeds alone".
    """
    out: dict[str, Any] = {"seeds": None, "images": int(images), "reason": None}
    if v.seed_a is None or v.seed_b is None:
        out["reason"] = "the seed-to-seed variance is unmeasured (one seed per arm): run at least two seeds per arm"
        return out
    limit = minimum_detectable_effect(math.sqrt(v.image / images), images - 1, alpha, power)
    if limit >= effect:
        out["reason"] = (f"not reachable by seeds alone: at {images} test images the image term alone gives an MDE of "
                         f"{limit:.4g} >= {effect:.4g}; more test images are needed")
        return out
    n = _smallest(lambda s: _mde_at(v, s, s, images, alpha, power) <= effect, 2, MAX_SEEDS)
    if n is None:
        out["reason"] = f"more than {MAX_SEEDS} seeds per arm"
    out["seeds"] = n
    return out


def images_needed(v: Variances, effect: float, seeds_a: int, seeds_b: int, alpha: float = 0.05,
                  power: float = 0.8) -> dict[str, Any]:
    """Test images that make ``effect`` detectable at ``seeds_a``/``seeds_b`` seeds.

    Returns ``{"images": n or None, "seeds": {"a": .., "b": ..}, "reason": None or why not}``.
    With infinitely many images only the seed terms are left: when they alone exceed the effect
    the answer is "not reachable by images alone". An unmeasured seed variance counts as 0, which
    makes the answer a lower bound (``reason`` says so while ``images`` is still given).
    """
    out: dict[str, Any] = {"images": None, "seeds": {"a": int(seeds_a), "b": int(seeds_b)}, "reason": None}
    seed_only = Variances(v.seed_a, v.seed_b, 0.0)
    limit = minimum_detectable_effect(seed_only.se(seeds_a, seeds_b, 1), seed_only.df(seeds_a, seeds_b, 1),
                                      alpha, power)
    if limit >= effect:
        out["reason"] = (f"not reachable by images alone: with {seeds_a} and {seeds_b} seeds the training noise alone "
                         f"gives an MDE of {limit:.4g} >= {effect:.4g}; more seeds are needed")
        return out
    n = _smallest(lambda m: _mde_at(v, seeds_a, seeds_b, m, alpha, power) <= effect, 2, MAX_IMAGES)
    out["images"] = n
    if n is None:
        out["reason"] = f"more than {MAX_IMAGES} test images"
    elif v.seed_a is None or v.seed_b is None:
        out["reason"] = "a lower bound: the training noise of a single-seed arm is unmeasured and counted as 0"
    return out


def power_report(v: Variances, seeds_a: int, seeds_b: int, images: int, *, se: float, df: float, gate: float | None,
                 alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """MDE at the current design (from the interval's ``se`` and ``df``), and what ``gate`` would need.

    When only one arm's seed variance is measured, the projections assume the other arm varies
    alike (listed under ``assumptions``); with neither measured, ``seeds_needed`` says so.
    """
    check_levels(alpha, power)
    mde = minimum_detectable_effect(se, df, alpha, power)
    out: dict[str, Any] = {"alpha": alpha, "power": power, "mde": mde, "gate": gate, "assumptions": []}
    if not se > 0:  # identical per-image scores and no seed spread: nothing to estimate power from
        out.update(mde=None, gate_detectable=None,
                   reason="no variance observed (A and B scored every test image alike, e.g. models that predict "
                          "one class everywhere): power cannot be estimated")
        return out
    if gate is None:
        return out
    if not gate > 0:
        raise ConfigError(f"gate: the effect to plan for must be > 0, got {gate!r}")
    projected = v
    if (v.seed_a is None) != (v.seed_b is None):
        known = v.seed_a if v.seed_a is not None else v.seed_b
        projected = Variances(known, known, v.image)
        out["assumptions"].append("the single-seed arm's training noise is taken equal to the other arm's")
    out["gate_detectable"] = bool(mde <= gate)
    out["seeds_needed"] = seeds_needed(projected, gate, images, alpha, power)
    out["images_needed"] = images_needed(projected, gate, seeds_a, seeds_b, alpha, power)
    return out
