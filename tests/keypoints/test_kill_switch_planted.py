"""The demo kill switch on a planted effect (experiment=kill_switch_planted).

Fast: the preset composes what it promises (the effect on, three seeds in parallel on the local
launcher, arms trained for the same number of steps) and the effect reaches the world the runs
read (every synthetic keypoint moved down, real labels untouched, meta.json says injected). Slow: the whole
experiment finds the planted harm (A - B < 0, interval excluding 0, VERDICT: FAIL) and nothing
with the effect off.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import REPO, run_cli

SMALL = ["data.demo.counts.real={train: 4, val: 2, test: 2}", "data.demo.counts.synthetic={train: 6, val: 2, test: 2}"]
NULL = "data.demo.effects.keypoint_shift.offset=[0.0,0.0]"


def _compose(*overrides: str):
    from vsynth.run.dirs import register_resolvers

    register_resolvers()  # the schema and the ${run_dir:...} resolvers, as the entry point registers them
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        return compose("config", overrides=["experiment=kill_switch_planted", *overrides], return_hydra_config=True)


def test_preset_plants_the_effect_and_runs_seeds_in_parallel() -> None:
    cfg = _compose()
    assert cfg.mode == "killswitch" and cfg.task.name == "keypoints"
    assert cfg.data.demo.effects.keypoint_shift.keypoints == "all"
    assert list(cfg.data.demo.effects.keypoint_shift.offset) == [0.0, 0.25]
    assert list(cfg.killswitch.seeds) == [0, 1, 2] and cfg.killswitch.metric == "oks_map"
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "local" and cfg.hydra.launcher.cpus_per_task == 1
    assert cfg.trainer.threads == 1
    assert "trainer.unit=iter" in cfg.killswitch.overrides  # A and B train for the same number of steps
    assert "PLANTED" in cfg.killswitch.title
    assert list(_compose(NULL).data.demo.effects.keypoint_shift.offset) == [0.0, 0.0]


def test_the_effect_reaches_the_world_the_runs_read(tmp_path: Path) -> None:
    from tasks.keypoints.demo import demo_sources

    planted = demo_sources(_compose(*SMALL).data.demo, tmp_path)
    null = demo_sources(_compose(*SMALL, NULL).data.demo, tmp_path)
    assert planted["root"] != null["root"]
    meta = json.loads((planted["root"] / "meta.json").read_text())
    assert meta["effects"]["injected"] is True and meta["effects"]["keypoint_shift"]["offset"] == [0.0, 0.25]
    assert "effects" not in json.loads((null["root"] / "meta.json").read_text())

    def annotations(root: Path, domain: str) -> list:
        if domain == "synthetic":
            return [a["keypoints"] for a in
                    json.loads((root / "keypoints/synthetic/annotations/train.json").read_text())["annotations"]]
        return [p.read_text() for p in sorted((root / "keypoints/real/labels/train").glob("*.txt"))]

    assert annotations(planted["root"], "real") == annotations(null["root"], "real")
    pairs = [(np.reshape(a, (-1, 3)), np.reshape(b, (-1, 3))) for a, b in
             zip(annotations(planted["root"], "synthetic"), annotations(null["root"], "synthetic"))]
    assert pairs
    for a, b in pairs:  # every labelled point of every vehicle moved down (or out of the image), never sideways
        both = (a[:, 2] > 0) & (b[:, 2] > 0)
        assert (a[both, 1] > b[both, 1]).all() and (a[both, 0] == b[both, 0]).all()
        assert (a[:, 2] <= b[:, 2]).all()


def _kill_switch(tmp_path: Path, name: str, *extra: str) -> dict:
    root = tmp_path / name
    p = run_cli(["experiment=kill_switch_planted", f"hydra.run.dir={root}", *extra], tmp_path, timeout=1800)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return json.loads((root / "killswitch.json").read_text())


@pytest.mark.slow
def test_planted_harm_is_found_and_the_null_is_quiet(tmp_path: Path) -> None:
    planted = _kill_switch(tmp_path, "planted")
    con = planted["contribution"]
    assert con["high"] < 0 and planted["verdict"] == "FAIL", con
    null = _kill_switch(tmp_path, "null", NULL)
    con = null["contribution"]
    assert con["low"] <= 0 <= con["high"], con
