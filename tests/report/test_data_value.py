"""What the extra data is worth in real frames: known answers on simulated per-image scores (no training).

The real-only learning curve is f(n) = 0.6 - 0.9 n^-0.5 over 25..400 frames; every run scores 200
shared test images with image difficulty, seed-to-seed and per-image noise. A with-extra curve equal
to the real-only curve shifted by k frames is worth k frames; an identical one is worth nothing
(its interval holds 0); a lower one is worth less than nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vsynth.errors import ConfigError, DataError
from vsynth.report.data_value import BELOW, BEYOND, MEASURED, Cell, analyze, flat_metrics, write_outputs
from vsynth.report.learning_curve import fit_power_law
from vsynth.report.uncertainty import PerImageScores

SIZES = (25, 50, 100, 200, 400)


def curve(n):
    return 0.6 - 0.9 * np.asarray(n, dtype=float) ** -0.5


def simulate(k: float = 0.0, drop: float = 0.0, seeds: int = 3, images: int = 200, rs: int = 0,
             per_image: bool = True, seed_sd: float = 0.006, noise_sd: float = 0.05) -> list[Cell]:
    """Cells of both arms; with-extra at n scores curve(n + k) - drop."""
    rng = np.random.default_rng(rs)
    difficulty = rng.normal(0, 0.15, images)
    cells = []
    for n in SIZES:
        for role, mean in (("real_only", curve(n)), ("with_extra", curve(n + k) - drop)):
            states, values = [], []
            for _ in range(seeds):
                scores = mean + difficulty + rng.normal(0, seed_sd) + rng.normal(0, noise_sd, images)
                states.append(PerImageScores(scores))
                values.append(float(scores.mean()))
            cells.append(Cell(role, str(n), n, values, states if per_image else None, list(range(seeds)),
                              [f"{role}-n{n}-seed{s}" for s in range(seeds)]))
    return cells


def bounds(w: dict) -> tuple[float, float]:
    """The worth interval with censored ends as -inf (below the measured range) / +inf (beyond)."""
    ends = {BELOW: -np.inf, BEYOND: np.inf}
    return (ends.get(w["low_censored"], w["low"]), ends.get(w["high_censored"], w["high"]))


def test_power_law_fit_recovers_its_curve_and_inverts_within_the_measured_range() -> None:
    n = np.array(SIZES, dtype=float)
    fit = fit_power_law(n, curve(n))
    assert fit.params()["rmse"] < 1e-3
    assert fit.invert(np.array([curve(60.0), curve(300.0)])) == pytest.approx([60.0, 300.0], rel=0.02)
    assert fit.invert(np.array([0.59]))[0] == np.inf  # above the curve at 400 frames: beyond, not extrapolated
    assert fit.invert(np.array([0.3]))[0] == -np.inf  # below the curve at 25 frames
    flat = fit_power_law(n, np.array([0.5, 0.48, 0.47, 0.45, 0.44]))  # falling data: a flat line, not a falling curve
    assert flat.b[0] == 0 and flat.invert(np.array([0.5, 0.4])).tolist() == [np.inf, -np.inf]
    many = fit_power_law(n, np.vstack([curve(n), curve(n) + 0.1]))  # R fits at once
    assert many.a[1] - many.a[0] == pytest.approx(0.1, abs=1e-6)
    with pytest.raises(DataError, match="at least three distinct positive sizes"):
        fit_power_law(np.array([10.0, 20.0, 20.0]), np.array([0.1, 0.2, 0.2]))


@pytest.mark.parametrize("seed_sd, noise_sd, tolerance", [(0.0005, 0.005, 3), (0.006, 0.05, 25)])
def test_a_curve_shifted_by_k_frames_is_worth_k(seed_sd, noise_sd, tolerance) -> None:
    k = 50
    result = analyze(simulate(k=k, seed_sd=seed_sd, noise_sd=noise_sd), metric="mean", samples=1000, seed=0)
    for p in result["points"]:
        w = p["worth"]
        if p["real_frames"] + k <= 250:
            low, high = bounds(w)
            assert w["status"] == MEASURED and low <= k <= high, p
            assert w["answer"].startswith("worth about")
        if p["real_frames"] + k <= 150:  # where the curve is steep, frames are read off it precisely
            assert w["frames"] == pytest.approx(k, abs=tolerance)
        if p["real_frames"] == 400:  # above the real-only curve's top: beyond, never extrapolated
            assert w["status"] == BEYOND and w["frames"] is None and w["bound"] == 0
            assert w["answer"].startswith("beyond the measured range")
    assert result["per_image"] and result["num_images"] == 200 and result["fit"]["range"] == [25.0, 400.0]


def test_identical_curves_give_an_interval_holding_zero() -> None:
    result = analyze(simulate(k=0, rs=1), metric="mean", samples=1000, seed=0)
    for p in result["points"]:
        w = p["worth"]
        low, high = bounds(w)
        assert low <= 0 <= high, p
        assert "not distinguishable from worthless" in w["answer"]
        assert p["delta"]["low"] <= 0 <= p["delta"]["high"]


def test_a_lower_curve_is_worth_less_than_nothing() -> None:
    result = analyze(simulate(drop=0.03, rs=2), metric="mean", samples=500, seed=0)
    for p in result["points"]:
        w = p["worth"]
        assert w["answer"].startswith("worth less than nothing"), p
        assert w["status"] == BELOW or (w["frames"] < 0 and bounds(w)[1] < 0)
        assert p["delta"]["high"] < 0
    assert flat_metrics(result)["data_value/25/worth_status"] == BELOW


def test_interval_covers_the_true_worth() -> None:
    """Over repeated simulated experiments (3 seeds per cell) the 95 % interval holds the true k often enough."""
    k, hits, total = 40, 0, 0
    for rs in range(40):
        result = analyze(simulate(k=k, rs=100 + rs), metric="mean", samples=300, seed=rs)
        for p in result["points"][:2]:  # 25 and 50 real frames
            low, high = bounds(p["worth"])
            hits += low <= k <= high
            total += 1
    assert hits / total >= 0.9  # measured 0.96-1.0 over 100 repetitions (censored ends make it conservative)


def test_without_per_image_files_seeds_are_resampled(tmp_path) -> None:
    result = analyze(simulate(k=50, per_image=False), metric="mean", samples=400, seed=0)
    assert result["per_image"] is False and result["num_images"] is None
    assert any("seeds only" in n for n in result["notes"])
    assert result["points"][0]["worth"]["status"] == MEASURED
    write_outputs(tmp_path, result, "Data value", {"real_only": "B", "with_extra": "A"})
    saved = json.loads((tmp_path / "data_value.json").read_text())
    assert saved["points"][0]["worth"]["answer"] == result["points"][0]["worth"]["answer"]
    report = (tmp_path / "report.md").read_text()
    assert "![mean vs real frames](data_value.png)" in report and "| 25 | 25 |" in report
    assert (tmp_path / "data_value.png").stat().st_size > 10_000


def test_single_seed_and_lower_is_better_metrics() -> None:
    cells = simulate(k=50, seeds=1)
    for c in cells:  # a loss: lower is better
        c.states = [PerImageScores(-s.scores) for s in c.states]
        c.values = [-v for v in c.values]
    result = analyze(cells, metric="mean", mode="min", samples=300)
    assert any("One seed per size" in n for n in result["notes"])
    assert result["points"][0]["worth"]["frames"] == pytest.approx(50, abs=15)


def test_bad_designs_are_named() -> None:
    cells = simulate()
    with pytest.raises(DataError, match="no with_extra runs at size 400"):
        analyze(cells[:-1], metric="mean", samples=10)
    with pytest.raises(ConfigError, match="at least three sizes"):
        analyze(cells[:4], metric="mean", samples=10)
    with pytest.raises(ConfigError, match="data_value.mode"):
        analyze(cells, metric="mean", mode="up", samples=10)
    dup = [Cell(c.role, "all" if c.label == "400" else c.label, 200 if c.label == "400" else c.frames, c.values,
                c.states) for c in cells]
    with pytest.raises(ConfigError, match="two sizes train on the same 200 real frames"):
        analyze(dup, metric="mean", samples=10)
