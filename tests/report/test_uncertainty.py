"""Known answers for the two-level bootstrap and power: simulated runs with known seed and image variances.

Per-image scores of arm X, seed s, image i: mu_X + seed_sd * z_{X,s} + b_i + img_sd * u_{X,i}
(+ noise_sd * e_{X,s,i}): b_i is image difficulty shared by both arms (it cancels in A - B),
u_{X,i} the arm's own image effect. For the difference of arm means over S seeds per arm and N
images: seed variance 2 seed_sd^2 / S, image variance 2 img_sd^2 / N (plus the interaction
noise_sd^2 / N * 2 / S in both when noise_sd > 0). Everything is seeded, and the tolerances are
many binomial / Monte Carlo standard errors wide.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsynth.errors import ConfigError, DataError
from vsynth.eval.bootstrap import paired_bootstrap
from vsynth.report.power import (
    Variances,
    images_needed,
    minimum_detectable_effect,
    satterthwaite_df,
    seeds_needed,
)
from vsynth.report.uncertainty import PerImageScores, compare_arms


def simulate(rng: np.random.Generator, seeds: tuple[int, int], n: int, seed_sd: float, img_sd: float,
             effect: float = 0.0, noise_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    difficulty = rng.normal(0.5, 0.2, n)
    arms = []
    for s, mu in zip(seeds, (0.5 + effect, 0.5)):
        own = rng.normal(0.0, img_sd, n)
        arms.append(mu + rng.normal(0.0, seed_sd, (s, 1)) + difficulty + own + rng.normal(0.0, noise_sd, (s, n)))
    return arms[0], arms[1]


def test_decomposition_recovers_the_known_seed_and_image_variances() -> None:
    rng = np.random.default_rng(0)
    s, n, seed_sd, img_sd = 4, 150, 0.02, 0.1
    seed_v, image_v, two_level = [], [], []
    for k in range(200):
        a, b = simulate(rng, (s, s), n, seed_sd, img_sd)
        out = compare_arms(a, b, samples=300, seed=k, gate=None)
        seed_v.append(out["variance"]["seed"])
        image_v.append(out["variance"]["image"])
        two_level.append(out["variance"]["two_level"])
    true_seed, true_image = 2 * seed_sd**2 / s, 2 * img_sd**2 / n
    # means over 200 simulations: relative standard errors about 6 % (seed, 6 df each) and 2 % (image)
    assert np.mean(seed_v) == pytest.approx(true_seed, rel=0.2)
    assert np.mean(image_v) == pytest.approx(true_image, rel=0.08)
    # the two-level resamples carry both (seed resamples rescaled to be unbiased)
    assert np.mean(two_level) == pytest.approx(true_seed + true_image, rel=0.1)
    share = true_seed / (true_seed + true_image)  # 0.6
    assert np.mean(np.array(seed_v) / (np.array(seed_v) + np.array(image_v))) == pytest.approx(share, abs=0.08)


@pytest.mark.parametrize("seeds,seed_sd,img_sd,noise_sd", [
    ((3, 3), 0.015, 0.1, 0.0),    # seeds and images about equal; the t quantile matters with 3 seeds
    ((5, 2), 0.02, 0.05, 0.05),   # unequal seeds, seeds dominate, per-run image noise
    ((2, 2), 0.0, 0.1, 0.0),      # no training noise at all
])
def test_interval_covers_the_true_difference_95_percent_of_the_time(seeds, seed_sd, img_sd, noise_sd) -> None:
    rng = np.random.default_rng(1)
    reps, effect = 600, 0.01
    hits = 0
    for k in range(reps):
        a, b = simulate(rng, seeds, 120, seed_sd, img_sd, effect=effect, noise_sd=noise_sd)
        out = compare_arms(a, b, samples=300, seed=k, gate=None)
        hits += out["low"] <= effect <= out["high"]
    # binomial sd of the coverage is 0.009 at 600 repetitions: 0.90..0.99 is > 5 sd from 0.95 on the low side
    assert 0.90 <= hits / reps <= 0.99


def test_images_only_interval_undercovers_when_seeds_matter_and_single_seed_is_flagged() -> None:
    """Why the seed level exists: resampling images alone misses training noise."""
    rng = np.random.default_rng(2)
    reps, hits_images_only, hits_two_level = 300, 0, 0
    for k in range(reps):
        a, b = simulate(rng, (4, 4), 200, 0.03, 0.05)
        out = compare_arms(a, b, samples=200, seed=k, gate=None)
        hits_two_level += out["low"] <= 0 <= out["high"]
        var = out["variance"]["image"]
        hits_images_only += abs(out["delta"]) <= 1.96 * math.sqrt(var)
    assert hits_images_only / reps < 0.6 < 0.9 < hits_two_level / reps

    a, b = simulate(rng, (1, 3), 100, 0.03, 0.05)
    out = compare_arms(a, b, samples=100, names=("A", "B"))
    assert out["single_seed"] == ["A"] and out["training_noise"] == "partly measured"
    assert out["variance"]["seed_by_arm"]["A"] is None and out["variance"]["seed_by_arm"]["B"] > 0
    assert any("single seed" in n for n in out["notes"])
    assert "taken equal" in out["power"]["assumptions"][0]
    out = compare_arms(a[:1], b[:1], samples=100)
    assert out["training_noise"] == "unmeasured" and out["variance"]["seed"] == 0.0
    assert out["variance"]["seed_share"] is None
    assert "interval covers test images only" in out["notes"][0]
    assert out["power"]["seeds_needed"]["seeds"] is None
    assert "unmeasured" in out["power"]["seeds_needed"]["reason"]


def test_null_p_values_are_uniform_enough_and_an_effect_is_found() -> None:
    rng = np.random.default_rng(3)
    p_null = [compare_arms(*simulate(rng, (3, 3), 100, 0.01, 0.08), samples=200, seed=k, gate=None)["p_value"]
              for k in range(400)]
    assert 0.02 <= np.mean(np.array(p_null) < 0.05) <= 0.09  # nominal 0.05, binomial sd 0.011
    out = compare_arms(*simulate(rng, (4, 4), 400, 0.002, 0.05, effect=0.05), samples=500, gate=0.02)
    assert out["low"] > 0 and out["p_value"] < 0.001
    assert out["power"]["gate_detectable"] is True


def test_single_seed_matches_the_paired_image_bootstrap() -> None:
    """With one seed per arm the two-level bootstrap is the existing paired bootstrap over images."""
    rng = np.random.default_rng(4)
    a, b = simulate(rng, (1, 1), 300, 0.0, 0.1, effect=0.02)
    ours = compare_arms(a, b, samples=2000, seed=0, gate=None)
    theirs = paired_bootstrap(PerImageScores(a[0]), PerImageScores(b[0]), metric="mean", n=2000, seed=0)
    assert ours["delta"] == pytest.approx(theirs["delta"], abs=1e-12)
    width_ours, width_theirs = ours["high"] - ours["low"], theirs["high"] - theirs["low"]
    assert width_ours == pytest.approx(width_theirs, rel=0.1)
    assert ours["variance"]["image"] == pytest.approx(np.var(a[0] - b[0], ddof=1) / 300, rel=0.15)


def test_evaluator_states_and_arrays_agree() -> None:
    """The general path (summarize per resample) and the array fast path give the same numbers."""

    class Slow:
        def __init__(self, scores):
            self.inner = PerImageScores(scores)
            self.image_ids = self.inner.image_ids

        def summarize(self, w=None):
            return {"nested": {"value": self.inner.summarize(w)["mean"]}}

    rng = np.random.default_rng(5)
    a, b = simulate(rng, (2, 3), 40, 0.02, 0.1)
    fast = compare_arms(a, b, samples=50, seed=1)
    slow = compare_arms([Slow(r) for r in a], [Slow(r) for r in b], metric="nested/value", samples=50, seed=1)
    for key in ("delta", "low", "high", "se", "p_value"):
        assert slow[key] == pytest.approx(fast[key], abs=1e-12)


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(6)
    a, b = simulate(rng, (2, 2), 30, 0.02, 0.1)
    with pytest.raises(DataError, match="other test images"):
        compare_arms(a, b[:, :20])
    with pytest.raises(ConfigError, match="level"):
        compare_arms(a, b, level=95)
    with pytest.raises(ConfigError, match="metric"):
        compare_arms(a, b, metric="oks_map")
    with pytest.raises(ConfigError, match="gate"):
        compare_arms(a, b, gate=0.0)
    with pytest.raises(DataError, match="no runs"):
        compare_arms([], b)


# ---- power ----------------------------------------------------------------------------------------

def test_mde_closed_form() -> None:
    # z_{0.975} + z_{0.80} = 1.959964 + 0.841621
    assert minimum_detectable_effect(0.01) == pytest.approx(0.02801585, abs=1e-7)
    assert minimum_detectable_effect(0.01, alpha=0.01, power=0.9) == pytest.approx(0.01 * (2.575829 + 1.281552), abs=1e-7)
    # few degrees of freedom: t quantiles (df 4: 2.776445 + 0.940965)
    assert minimum_detectable_effect(0.01, df=4) == pytest.approx(0.01 * (2.776445 + 0.940965), abs=1e-6)
    assert minimum_detectable_effect(0.0) == 0.0
    with pytest.raises(ConfigError, match="power"):
        minimum_detectable_effect(0.01, power=80)


def test_satterthwaite_df_known_values() -> None:
    assert satterthwaite_df([(1.0, 4)]) == pytest.approx(4)
    assert satterthwaite_df([(1.0, 4), (1.0, 4)]) == pytest.approx(8)  # two equal terms add their df
    assert satterthwaite_df([(1.0, 2), (0.0, 2)]) == pytest.approx(2)
    assert satterthwaite_df([(0.0, 2)]) == math.inf


def test_mde_from_measured_variances_matches_the_closed_form() -> None:
    """Across simulations, the reported MDE matches (t + t) * sqrt(true variance) within 10 %."""
    rng = np.random.default_rng(7)
    s, n, seed_sd, img_sd = 6, 200, 0.01, 0.1
    outs = [compare_arms(*simulate(rng, (s, s), n, seed_sd, img_sd), samples=300, seed=k) for k in range(100)]
    true_se = math.sqrt(2 * seed_sd**2 / s + 2 * img_sd**2 / n)
    df = float(np.median([o["df"] for o in outs]))
    expected = minimum_detectable_effect(true_se, df)
    assert np.median([o["power"]["mde"] for o in outs]) == pytest.approx(expected, rel=0.1)


def test_seeds_and_images_needed_solve_the_gate() -> None:
    # seed variance 4e-4 per arm, image variance 0.02 per image; gate 2 pp
    v = Variances(seed_a=4e-4, seed_b=4e-4, image=0.02)
    need = seeds_needed(v, 0.02, images=1000)
    n = need["seeds"]
    assert n is not None and need["reason"] is None
    mde = lambda s, m: minimum_detectable_effect(v.se(s, s, m), v.df(s, s, m))  # noqa: E731
    assert mde(n, 1000) <= 0.02 < mde(n - 1, 1000)
    # the large-sample closed form is a lower bound: 2 * 4e-4 / S + 0.02 / 1000 <= (0.02 / 2.8016)^2
    assert n >= math.ceil(8e-4 / ((0.02 / 2.801585) ** 2 - 0.02 / 1000))

    imgs = images_needed(v, 0.02, seeds_a=20, seeds_b=20)
    m = imgs["images"]
    assert m is not None and mde(20, m) <= 0.02 < mde(20, m - 1)

    # seed noise alone exceeds the gate at 3 seeds: no number of images helps
    out = images_needed(v, 0.02, seeds_a=3, seeds_b=3)
    assert out["images"] is None and out["reason"].startswith("not reachable by images alone")
    # images alone exceed the gate at 50 images: no number of seeds helps
    out = seeds_needed(v, 0.02, images=50)
    assert out["seeds"] is None and out["reason"].startswith("not reachable by seeds alone")
    # unmeasured seed variance: images are a lower bound, seeds cannot be planned
    blind = Variances(None, None, 0.02)
    assert "lower bound" in images_needed(blind, 0.02, 1, 1)["reason"]
    assert seeds_needed(blind, 0.02, images=1000)["seeds"] is None


def test_compare_arms_power_section_is_consistent() -> None:
    rng = np.random.default_rng(8)
    out = compare_arms(*simulate(rng, (3, 3), 200, 0.02, 0.1), samples=400, gate=0.02)
    p = out["power"]
    assert p["mde"] == pytest.approx(minimum_detectable_effect(out["se"], out["df"]), rel=1e-12)
    assert p["gate_detectable"] == (p["mde"] <= 0.02)
    assert p["alpha"] == 0.05 and p["power"] == 0.8 and p["gate"] == 0.02
    assert set(p["seeds_needed"]) == {"seeds", "images", "reason"}
    assert set(p["images_needed"]) == {"images", "seeds", "reason"}


def test_identical_arms_give_no_power_claim() -> None:
    """Two models that score every test image alike (e.g. both predict one class everywhere) have no
    observed variance: the power section says so instead of claiming a 0 pp detectable effect."""
    same = np.tile(np.linspace(0.1, 0.9, 20), (1, 1))
    out = compare_arms(same, same.copy(), samples=50, names=("A", "B"), gate=0.02)
    assert out["delta"] == 0.0 and out["low"] == out["high"] == 0.0
    pw = out["power"]
    assert pw["mde"] is None and pw["gate_detectable"] is None and "cannot be estimated" in pw["reason"]
    from vsynth.report.killswitch import power_lines

    text = "\n".join(power_lines(pw, 0.02))
    assert "cannot be estimated" in text and "can detect" not in text
