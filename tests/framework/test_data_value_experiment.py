"""experiment=data_value: the runs it launches and the answer it writes.

Fast: the orchestration with the runs faked (what a launcher leaves: metrics.json, status.json,
data/sources.json): the commands (arms differing only in the extra source, the size override, the
recipe, the experiment's own overrides passed on), "all" read from the run, the answer from a
with-extra curve shifted by a known number of frames. Slow: the real command on the tiny task.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO, run_cli, tiny_args
from vsynth.errors import ConfigError
from vsynth.experiments import data_value as dv
from vsynth.experiments import launch as launch_mod

ALL_FRAMES = 160


def curve(n: float) -> float:
    return 0.6 - 0.9 * n ** -0.5


class _Ctx:
    def __init__(self, d: Path) -> None:
        self.dir = d


def _cfg(task: str = "keypoints", **section) -> OmegaConf:
    preset = OmegaConf.load(REPO / "conf" / "experiment" / "data_value.yaml")
    metrics = {"keypoints": ["oks_map"], "detection": ["ap"], "segmentation": ["miou"], "tiny": ["acc"]}[task]
    cfg = OmegaConf.create({"task": {"name": task, "metrics": metrics}, "seed": 0, "init": None, "data_value": preset.data_value})
    for k, v in section.items():
        OmegaConf.update(cfg, f"data_value.{k}", v, merge=False)
    return cfg


def _fake_runs(monkeypatch, k: float, metric: str = "test/oks_map"):
    """Every launched run 'trains' to curve(n) (real only) or curve(n + k) (with extra), plus seed noise."""
    launched = []

    def run(self, specs):
        for spec in specs:
            folder = self.folder(spec)
            launched.append(spec.overrides)
            args = dict(o.split("=", 1) for o in spec.overrides)
            subset = args.get("data.real_subset") or args.get("arm.sources.real.subset")
            n = ALL_FRAMES if subset == "null" else int(subset)
            extra = args["arm"] == "A" or args.get("data.ratio") == "0.5"
            seed = int(args["seed"])
            value = curve(n + (k if extra else 0)) + 0.002 * np.random.default_rng([seed, n, extra]).normal()
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({metric: value}))
            (folder / "status.json").write_text(json.dumps({"state": "done", "seed": seed}))
            (folder / "data").mkdir()
            (folder / "data" / "sources.json").write_text(json.dumps({"real": {"train_items": ALL_FRAMES, "used": n}}))

    monkeypatch.setattr(launch_mod.Runs, "run", run)
    monkeypatch.setattr(dv, "command_overrides", lambda ctx: ["experiment=data_value", "data.demo.counts.real.test=200",
                                                              "data_value.seeds=[0,1,2]", "data.real_subset=7",
                                                              "hydra.run.dir=/x", "trainer.threads=1"])
    monkeypatch.setattr(dv, "experiment_choice", lambda ctx: "data_value")
    return launched


def test_runs_differ_only_in_the_extra_source_and_the_answer_is_k_frames(monkeypatch, tmp_path) -> None:
    launched = _fake_runs(monkeypatch, k=30)
    cfg = _cfg(seeds=[0, 1, 2], sizes=[12, 24, 48, 96, "all"], bootstrap={"samples": 300, "seed": 0, "level": 0.95})
    metrics, extra = dv.DataValue(cfg, _Ctx(tmp_path)).run()
    assert len(launched) == 5 * 2 * 3
    for overrides in launched:
        assert overrides[:3] == ["experiment=data_value", "data.demo.counts.real.test=200", "trainer.threads=1"]
        assert "trainer.unit=iter" in overrides and "mode=train" in overrides and "init=null" in overrides
        assert not any(o.startswith(("data_value.", "hydra.", "data.real_subset=7")) for o in overrides)
    by_arm = {}
    for o in launched:
        args = dict(x.split("=", 1) for x in o)
        by_arm.setdefault((args["data.real_subset"], args["seed"]), set()).add(
            tuple(x for x in o if not x.startswith(("arm=", "name="))))
    assert all(len(v) == 1 for v in by_arm.values())  # A and B runs differ in the arm (and name) only
    assert (tmp_path / "with_extra-nall-seed2").is_dir() and (tmp_path / "real_only-n12-seed0").is_dir()
    result = json.loads((tmp_path / "data_value.json").read_text())
    assert result["metric"] == "oks_map" and result["per_image"] is False and result["seeds"] == [0, 1, 2]
    assert [p["real_frames"] for p in result["points"]] == [12, 24, 48, 96, ALL_FRAMES]
    for p in result["points"][:3]:
        w = p["worth"]
        assert w["status"] == "measured" and w["low"] <= 30 <= w["high"] and abs(w["frames"] - 30) < 8, p
    assert result["points"][-1]["worth"]["status"] == "beyond"
    assert metrics["data_value/all/real_frames"] == ALL_FRAMES and extra["report_written"] is True
    report = (tmp_path / "report.md").read_text()
    assert "| all | 160 |" in report and "data_value.png" in report and (tmp_path / "data_value.png").is_file()


def test_segmentation_arms_are_ratio_mixes_of_the_same_subset(monkeypatch, tmp_path) -> None:
    launched = _fake_runs(monkeypatch, k=20, metric="test/miou")
    cfg = _cfg("segmentation", seeds=[0], sizes=[12, 24, 48], bootstrap={"samples": 50, "seed": 0, "level": 0.95})
    dv.DataValue(cfg, _Ctx(tmp_path)).run()
    arms = {tuple(o for o in x if o.startswith(("arm=", "data.ratio=", "arm.sources.real.subset=12"))) for x in launched}
    assert ("data.ratio=1.0", "arm=ratio", "arm.sources.real.subset=12") in arms
    assert ("data.ratio=0.5", "arm=ratio", "arm.sources.real.subset=12") in arms


def test_bad_settings_are_named(monkeypatch, tmp_path) -> None:
    _fake_runs(monkeypatch, k=0)
    for section, message in (({"sizes": [10, 20]}, "data_value.sizes: the real-only curve needs at least three"),
                             ({"sizes": [10, 0, 20]}, "data_value.sizes: 0 is not a number of real frames"),
                             ({"sizes": [10, 10, 20]}, "data_value.sizes: a size is listed twice"),
                             ({"real_only": {"arm": "B", "extra": 1}}, "data_value.real_only.extra: unknown key"),
                             ({"real_only": {"arm": "B", "label": "x"}},  # runs are named by role, never ignored
                              r"data_value.real_only.label: unknown key \(known: arm, overrides\)"),
                             ({"with_extra": {"arm": "A", "overrides": ["trainer.length"]}},
                              "data_value.with_extra.overrides: expected a list of key=value")):
        with pytest.raises(ConfigError, match=message):
            dv.DataValue(_cfg(**section), _Ctx(tmp_path))
    with pytest.raises(ConfigError, match="data_value.metric: not set, neither in data_value.tasks.tiny nor"):
        dv.DataValue(_cfg("tiny", metric=None), _Ctx(tmp_path))
    with pytest.raises(ConfigError, match="has no test/acc"):
        dv.DataValue(_cfg(metric="acc", sizes=[1, 2, 3], seeds=[0]), _Ctx(tmp_path / "r")).run()


@pytest.mark.slow
def test_data_value_on_the_tiny_task(tmp_path) -> None:
    root = tmp_path / "dv"
    args = tiny_args("experiment=data_value", "data_value.sizes=[8,16,all]",
                     "data_value.seeds=[0]", "data_value.overrides=['trainer.unit=iter','trainer.length=4']",
                     "data_value.bootstrap.samples=50", "trainer.threads=1", f"hydra.run.dir={root}")
    p = run_cli(args, tmp_path, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    result = json.loads((root / "data_value.json").read_text())
    assert [p["real_frames"] for p in result["points"]] == [8, 16, 40] and result["per_image"] is False
    for role in ("real_only", "with_extra"):
        for size in (8, 16, "all"):
            run = root / f"{role}-n{size}-seed0"
            assert json.loads((run / "status.json").read_text())["state"] == "done"
            sources = json.loads((run / "data" / "sources.json").read_text())
            assert sources["real"]["used"] == (40 if size == "all" else size)
            assert ("synthetic" in sources) == (role == "with_extra")
    assert (root / "data_value.png").is_file() and "worth" in (root / "report.md").read_text()
    assert json.loads((root / "status.json").read_text())["state"] == "done"
    p = run_cli(args, tmp_path, timeout=900)  # rerun: every run is reused, the answer rewritten
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((root / "real_only-n8-seed0" / "status.json").read_text())["attempts"] == 1


def test_preset_composes_for_every_task() -> None:
    from hydra import compose, initialize_config_dir

    from vsynth.run.dirs import register_resolvers

    register_resolvers()  # the schema and the ${run_dir:...} resolvers, as the entry point registers them
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        for task in ("keypoints", "detection", "segmentation"):
            cfg = compose("config", overrides=["experiment=data_value", f"task={task}"])
            assert cfg.mode == "datavalue" and cfg.name == f"data_value-{task}"
            entry = cfg.data_value.tasks[task]
            assert cfg.data_value.metric == cfg.task.metrics[0]  # the task's headline metric
            assert entry.size_key and entry.real_only.arm and entry.with_extra.arm
            parent, _, leaf = entry.size_key.rpartition(".")
            assert leaf in OmegaConf.select(cfg, parent)  # the size key exists in the task's config
