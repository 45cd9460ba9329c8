"""Every data path the user sets is used; the demo world fills in only sources the user set nothing for."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.trust.test_bad_input_catalogue import DET, KP


def _world(tmp_path):
    from vsynth.data.demo import write_demo

    world = tmp_path / "user"
    write_demo(world, seed=5, counts={"real": {"train": 6, "val": 3, "test": 3}, "synthetic": {"train": 4, "val": 2}},
               size=(160, 128), tasks=["keypoints", "detection"])
    return world


def test_given_sources_are_used_and_the_demo_fills_only_the_others(tmp_path):
    world = _world(tmp_path)
    cache = tmp_path / "cache"
    rd = tmp_path / "kp"
    # keypoints: the real source is the user's; arm A's synthetic source is left to the demo world
    p = run_cli([*KP, "arm=A", f"data.real.yaml={world / 'keypoints' / 'real' / 'data.yaml'}", f"hydra.run.dir={rd}"],
                tmp_path, env={"VSYNTH_CACHE": str(cache), "YOLO_CONFIG_DIR": str(cache / "ultralytics")})
    assert p.returncode == 0, p.stderr[-3000:]
    log = (rd / "run.log").read_text()
    assert f"source real: your data (data.real.yaml={world / 'keypoints' / 'real' / 'data.yaml'})" in log
    assert "source synthetic: the demo world (nothing set under data.synthetic)" in log
    gt = json.loads((rd / "gt_test.json").read_text())
    assert str(world) in gt["info"]["description"]  # scored on the user's test split
    # detection with every real split given and arm base: the demo world is not even generated
    real = world / "detection" / "real"
    given = [f"data.real.{s}.{k}={v}" for s in ("train", "val", "test")
             for k, v in (("coco", real / "annotations" / f"instances_{s}.json"), ("images", real / "frames" / s))]
    det_cache = tmp_path / "det-cache"
    rd = tmp_path / "det"
    p = run_cli([*DET, *given, f"hydra.run.dir={rd}"], tmp_path, env={"VSYNTH_CACHE": str(det_cache)})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "source real: your data (data.real.train.coco" in (rd / "run.log").read_text()
    assert not (det_cache / "demo").exists()
