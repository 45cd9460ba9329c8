"""The kill-switch orchestration with the arm runs faked (no training): commands, reuse, outputs."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vsynth.experiments import killswitch as ks
from vsynth.experiments import launch as launch_mod


def _cfg(**killswitch):
    base = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "experiment" / "kill_switch.yaml")
    task = {"name": "keypoints", "metrics": ["oks_map", "oks_map50", "pck@0.05"]}
    cfg = OmegaConf.create({"task": task, "seed": 0, "init": None, "killswitch": base.killswitch})
    for k, v in killswitch.items():
        OmegaConf.update(cfg, f"killswitch.{k}", v, merge=False)
    return cfg


class _Ctx:
    def __init__(self, d):
        self.dir = d


def _coco(run: Path, quality: float):
    """gt/predictions for 6 images with one vehicle each; predictions offset by (1 - quality) * 4 px x 1..6
    (OKS 0.08-0.94: per-image scores that differ between arms and images, so power can be estimated)."""
    sig = [0.08] * 14
    images, anns, preds = [], [], []
    for i in range(6):
        kp = [[20.0 + 5 * k, 30.0 + 3 * k, 2] for k in range(14)]
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 150})
        anns.append({"id": i + 1, "image_id": i, "category_id": 1, "bbox": [15, 25, 80, 50], "area": 2120.0,
                     "iscrowd": 0, "keypoints": [v for p in kp for v in p], "num_keypoints": 14})
        off = (1 - quality) * 4 * (1 + i)
        preds.append({"image_id": i, "category_id": 1, "score": 0.9, "bbox": [15, 25, 80, 50],
                      "keypoints": [v for p in kp for v in (p[0] + off, p[1], 1.0)]})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "vehicle", "keypoints": [f"p{k}" for k in range(14)], "kpt_oks_sigmas": sig}]}
    (run / "gt_test.json").write_text(json.dumps(gt))
    (run / "predictions_test.json").write_text(json.dumps(preds))


def _fake_runs(monkeypatch, quality):
    launched = []

    def run(self, specs):  # what a launcher does: one finished run folder per spec
        for spec in specs:
            run_dir = self.folder(spec)
            cmd = [*spec.overrides, f"hydra.run.dir={run_dir}"]
            launched.append(cmd)
            run_dir.mkdir(parents=True, exist_ok=True)
            arm = next(c.split("=", 1)[1] for c in cmd if c.startswith("arm="))
            ratio = next((c for c in cmd if c.startswith("data.ratio=")), None)
            q = quality[ratio or arm]
            metrics = {"test/oks_map": q, "test/oks_map50": q + 0.1, "test/pck@0.05": q + 0.2}
            (run_dir / "metrics.json").write_text(json.dumps(metrics))
            (run_dir / "status.json").write_text(json.dumps({"state": "done"}))
            (run_dir / "checkpoints").mkdir(exist_ok=True)
            (run_dir / "checkpoints" / "best.pt").write_bytes(b"x")
            _coco(run_dir, q)

    monkeypatch.setattr(launch_mod.Runs, "run", run)
    monkeypatch.setattr(ks, "_command_overrides", lambda ctx: ["experiment=kill_switch", "data.real_subset=50",
                                                               "killswitch.seeds=[0,1]", "hydra.run.dir=/x"])
    monkeypatch.setattr(ks, "_experiment_choice", lambda ctx: "kill_switch")
    return launched


def test_trains_base_then_arms_from_its_best_checkpoint(monkeypatch, tmp_path):
    launched = _fake_runs(monkeypatch, {"base": 0.30, "B": 0.31, "A": 0.335})
    cfg = _cfg(seeds=[0, 1], bootstrap={"samples": 50, "seed": 0, "level": 0.95})
    metrics, extra = ks.Orchestrator(cfg, _Ctx(tmp_path)).run()
    arms = [next(c for c in cmd if c.startswith("arm=")) for cmd in launched]
    assert arms == ["arm=base", "arm=B", "arm=B", "arm=A", "arm=A"]
    base_best = str(tmp_path / "base-seed0" / "checkpoints" / "best.pt")
    for cmd in launched[1:]:
        assert f"init={base_best}" in cmd and "mode=train" in cmd and "data.real_subset=50" in cmd
        assert "trainer.length=4" in cmd  # the arms' recipe (killswitch.overrides)
        assert not any(c.startswith("killswitch.") for c in cmd)
    assert "trainer.length=20" in launched[0] and "init=null" in launched[0]
    assert f"hydra.run.dir={tmp_path / 'A-seed1'}" in launched[-1]
    assert metrics["killswitch/verdict"] == "PASS"  # 0.335 >= 0.30 + 0.02
    s = json.loads((tmp_path / "killswitch.json").read_text())
    assert s["arms"]["A"]["seeds"] == [0, 1] and s["contribution"]["seeds"] == {"A": 2, "B": 2}
    assert s["contribution"]["mean"] == pytest.approx(0.025)
    con = s["contribution"]  # two-level bootstrap: seeds and images, with power
    assert con["low"] <= con["delta"] <= con["high"] and con["training_noise"] == "measured"
    assert {"mde", "gate_detectable", "seeds_needed", "images_needed"} <= set(con["power"])
    assert set(s["delta_vs_base_uncertainty"]) == {"A", "B"}
    assert [p["seed"] for p in s["keypoint_audit"]["pairs"]] == [0, 1]
    assert (tmp_path / "keypoint_audit" / "seed0" / "keypoint_audit.png").is_file()
    report = (tmp_path / "report.md").read_text()
    assert "VERDICT: PASS" in report and "## Power" in report and "Which keypoints moved" in report
    assert "contribution/mde" in metrics and "seed_share" in con["variance"]
    assert extra["report_written"] is True


def test_given_baseline_and_reused_control(monkeypatch, tmp_path):
    launched = _fake_runs(monkeypatch, {"A": 0.21})
    prior = tmp_path / "prior-B"
    prior.mkdir()
    (prior / "metrics.json").write_text(json.dumps({"test/oks_map": 0.2204, "test/oks_map50": 0.3, "test/pck@0.05": 0.4}))
    (prior / "status.json").write_text(json.dumps({"state": "done", "seed": 0}))
    _coco(prior, 0.2204)
    cfg = _cfg(base={"arm": "base", "ckpt": None, "run": None, "overrides": [],
                     "metrics": {"oks_map": 0.2199, "oks_map50": 0.35, "pck@0.05": 0.496}},
               reuse={"B": str(prior)}, bootstrap={"samples": 20, "seed": 0, "level": 0.95})
    root = tmp_path / "root"
    metrics, _ = ks.Orchestrator(cfg, _Ctx(root)).run()
    assert [next(c for c in cmd if c.startswith("arm=")) for cmd in launched] == ["arm=A"]
    assert "init=null" in launched[0]  # no baseline checkpoint: the arms start from `init`
    assert metrics["killswitch/verdict"] == "FAIL" and metrics["base/oks_map"] == 0.2199
    s = json.loads((root / "killswitch.json").read_text())
    assert s["arms"]["B"]["origin"].startswith("reused") and s["arms"]["base"]["measured"] is False


def test_conflicting_baseline_sources(monkeypatch, tmp_path):
    _fake_runs(monkeypatch, {})
    cfg = _cfg(base={"arm": "base", "ckpt": None, "run": str(tmp_path), "overrides": [],
                     "metrics": {"oks_map": 0.2}})
    with pytest.raises(Exception, match="killswitch.base: set one of"):
        ks.Orchestrator(cfg, _Ctx(tmp_path / "r")).run()


def test_roles_of_one_arm_told_apart_by_overrides_and_labels(monkeypatch, tmp_path):
    """Segmentation's comparison: arm ratio with data.ratio=1.0 (control) vs 0.5 (treatment)."""
    launched = _fake_runs(monkeypatch, {"base": 0.30, "data.ratio=1.0": 0.31, "data.ratio=0.5": 0.36})
    cfg = _cfg(control={"arm": "ratio", "label": "real-only", "overrides": ["data.ratio=1.0"]},
               treatment={"arm": "ratio", "label": "mix0.5", "overrides": ["data.ratio=0.5"]},
               bootstrap={"samples": 20, "seed": 0, "level": 0.95})
    metrics, _ = ks.Orchestrator(cfg, _Ctx(tmp_path)).run()
    assert (tmp_path / "real-only-seed0" / "metrics.json").is_file() and (tmp_path / "mix0.5-seed0").is_dir()
    control = next(c for c in launched if "data.ratio=1.0" in c)
    assert "arm=ratio" in control and "name=keypoints-real-only" in control
    assert metrics["killswitch/verdict"] == "PASS"
    s = json.loads((tmp_path / "killswitch.json").read_text())
    assert s["names"] == {"base": "base", "B": "real-only", "A": "mix0.5"}  # B: the control, A: the treatment
    assert "data.ratio=0.5" in s["arms"]["A"]["description"]


def test_roles_need_different_labels(monkeypatch, tmp_path):
    _fake_runs(monkeypatch, {"base": 0.3})
    cfg = _cfg(control={"arm": "ratio", "overrides": ["data.ratio=1.0"]},
               treatment={"arm": "ratio", "overrides": ["data.ratio=0.5"]})
    with pytest.raises(Exception, match="different labels"):
        ks.Orchestrator(cfg, _Ctx(tmp_path)).run()


def test_the_baseline_numbers_can_be_given_on_the_command_line(monkeypatch, tmp_path):
    """killswitch.base.metrics={...} composes (the schema field is null by default) and a non-number is named."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vsynth.errors import ConfigError
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=kill_switch",
                                           "killswitch.base.metrics={oks_map: 0.2199, oks_map50: 0.35, pck@0.05: 0.496}"])
    assert dict(cfg.killswitch.base.metrics) == {"oks_map": 0.2199, "oks_map50": 0.35, "pck@0.05": 0.496}
    _fake_runs(monkeypatch, {"B": 0.31, "A": 0.335})
    bad = _cfg(seeds=[0], base={"metrics": {"oks_map": "high"}, "overrides": []})
    with pytest.raises(ConfigError, match="killswitch.base.metrics.oks_map must be a number, got 'high'"):
        ks.Orchestrator(bad, _Ctx(tmp_path)).run()
