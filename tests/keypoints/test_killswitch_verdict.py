"""The kill switch's verdict, summary and report on fabricated metrics (no training)."""

import json

import pytest

from vsynth.errors import ConfigError
from vsynth.experiments.killswitch import passthrough_overrides
from vsynth.report.killswitch import (
    FAIL,
    MARGINAL,
    PASS,
    ArmSummary,
    build_summary,
    render_report,
    verdict,
    write_outputs,
)

METRICS = ["oks_map", "oks_map50", "pck@0.05"]


@pytest.mark.parametrize(
    "a, base, margin, expected",
    [
        (0.2399, 0.2199, 0.02, PASS),  # exactly base + margin (the users' gate 0.2399): PASS despite float rounding
        (0.2400, 0.2199, 0.02, PASS),
        (0.23989, 0.2199, 0.02, MARGINAL),  # just under the gate
        (0.2199, 0.2199, 0.02, MARGINAL),  # exactly base: MARGINAL (interval closed at base)
        (0.21989, 0.2199, 0.02, FAIL),  # just below base
        (0.3575, 0.2199, 0.02, PASS),  # the users' corrected arm A against the stale v1 baseline
        (0.10, 0.2199, 0.02, FAIL),
        (0.5, 0.5, 0.0, PASS),  # zero margin: at base is a pass
    ],
)
def test_verdict_boundaries(a, base, margin, expected):
    assert verdict(a, base, margin) == expected


def test_verdict_rejects_nan_and_negative_margin():
    with pytest.raises(ValueError):
        verdict(float("nan"), 0.2, 0.02)
    with pytest.raises(ConfigError):
        verdict(0.3, 0.2, -0.01)


def _arm(name, values, origin="trained here", measured=True, seeds=None):
    arm = ArmSummary(name=name, description=f"{name} mix", origin=origin, measured=measured)
    n = len(next(iter(values.values())))
    arm.seeds = seeds or list(range(n))
    arm.runs = [f"/runs/{name}-seed{s}" for s in arm.seeds]
    arm.values = {m: list(v) for m, v in values.items()}
    return arm


def _users_case():
    """The users' published numbers: v1 0.2199 (stale, identity flip), B 0.3808, A 0.3575."""
    base = _arm("base", {"oks_map": [0.2199], "oks_map50": [0.350], "pck@0.05": [0.496]},
                origin="given in config (killswitch.base.metrics)", measured=False, seeds=[])
    b = _arm("B", {"oks_map": [0.3808], "oks_map50": [0.60], "pck@0.05": [0.70]})
    a = _arm("A", {"oks_map": [0.3575], "oks_map50": [0.58], "pck@0.05": [0.68]})
    return base, b, a


def test_summary_users_case_flags_stale_baseline_and_control():
    base, b, a = _users_case()
    contribution = {"low": -0.04, "high": -0.006, "level": 0.95, "samples": 1000, "num_images": 12761}
    s = build_summary(base, b, a, metrics=METRICS, metric="oks_map", margin=0.02, contribution=contribution)
    assert s["verdict"] == PASS and s["verdict_line"] == "VERDICT: PASS"
    assert s["contribution"]["mean"] == pytest.approx(0.3575 - 0.3808)
    assert s["delta_vs_base"]["A"]["oks_map"] == pytest.approx(0.3575 - 0.2199)
    notes = " ".join(s["notes"])
    assert "not measured in this experiment" in notes  # stale baseline flagged
    assert "control arm alone clears the gate" in notes  # the users' lesson
    assert "includes 0" not in notes  # this interval excludes 0
    json.dumps(s)  # serialisable


def test_summary_interval_including_zero_is_called_out():
    base = _arm("base", {"oks_map": [0.30], "oks_map50": [0.5], "pck@0.05": [0.6]})
    b = _arm("B", {"oks_map": [0.305], "oks_map50": [0.5], "pck@0.05": [0.6]})
    a = _arm("A", {"oks_map": [0.31], "oks_map50": [0.5], "pck@0.05": [0.6]})
    s = build_summary(base, b, a, metrics=METRICS, metric="oks_map", margin=0.02,
                      contribution={"low": -0.01, "high": 0.02, "level": 0.95})
    assert s["verdict"] == MARGINAL
    assert any("includes 0" in n for n in s["notes"])


def test_seeds_mean_and_spread_drive_the_verdict():
    base = _arm("base", {"oks_map": [0.30], "oks_map50": [0.5], "pck@0.05": [0.6]})
    b = _arm("B", {"oks_map": [0.28, 0.30, 0.32], "oks_map50": [0.5] * 3, "pck@0.05": [0.6] * 3})
    a = _arm("A", {"oks_map": [0.31, 0.33, 0.29], "oks_map50": [0.5] * 3, "pck@0.05": [0.6] * 3})
    assert a.mean("oks_map") == pytest.approx(0.31)
    assert a.spread("oks_map") == pytest.approx(0.02)
    s = build_summary(base, b, a, metrics=METRICS, metric="oks_map", margin=0.02, contribution=None)
    assert s["verdict"] == MARGINAL  # 0.31 in [0.30, 0.32)
    report = render_report(s, base, b, a, METRICS)
    assert "0.3100 ± 0.0200" in report
    assert report.rstrip().endswith("VERDICT: MARGINAL")


def test_fail_and_report_table(tmp_path):
    base = _arm("base", {"oks_map": [0.50], "oks_map50": [0.70], "pck@0.05": [0.76]})
    b = _arm("B", {"oks_map": [0.45], "oks_map50": [0.66], "pck@0.05": [0.72]})
    a = _arm("A", {"oks_map": [0.44], "oks_map50": [0.65], "pck@0.05": [0.71]})
    s = build_summary(base, b, a, metrics=METRICS, metric="oks_map", margin=0.02,
                      contribution={"low": -0.03, "high": 0.01, "level": 0.95, "samples": 200, "num_images": 96})
    assert s["verdict"] == FAIL
    write_outputs(tmp_path, s, base, b, a, METRICS)
    report = (tmp_path / "report.md").read_text()
    lines = report.splitlines()
    assert sum(1 for ln in lines if ln.startswith("VERDICT: ")) == 1 and "VERDICT: FAIL" in lines
    for row in ("| base: base | 0.5000 | 0.7000 | 0.7600 |", "| B (control): B | 0.4500", "| A (treatment): A | 0.4400"):
        assert row in report
    assert "-6.0 pp" in report and "-5.0 pp" in report  # delta vs base
    assert "A - B = **-1.0 pp**" in report and "[-3.0 pp, +1.0 pp]" in report
    data = json.loads((tmp_path / "killswitch.json").read_text())
    assert data["verdict"] == FAIL and data["arms"]["A"]["mean"]["oks_map"] == pytest.approx(0.44)


def test_unknown_gate_metric_is_a_config_error():
    base, b, a = _users_case()
    with pytest.raises(ConfigError, match="killswitch.metric"):
        build_summary(base, b, a, metrics=METRICS, metric="ap", margin=0.02, contribution=None)


def test_arm_runs_inherit_only_the_users_data_and_recipe_overrides():
    got = passthrough_overrides(["experiment=kill_switch", "mode=killswitch", "killswitch.seeds=[0,1]",
                                 "hydra.run.dir=/x", "data.real_subset=50", "trainer.length=2", "arm=A", "seed=3",
                                 "init=/w.pt", "+foo=1", "hydra.searchpath=[file:///my/conf]", "hydra/launcher=slurm"])
    # Hydra's keys are not task overrides: the launcher passes the command's own hydra overrides (the user's
    # config search path) itself (vsynth.experiments.launch.hydra_overrides; tests/segmentation/test_killswitch.py)
    assert got == ["data.real_subset=50", "trainer.length=2", "+foo=1"]
