"""Bad input through the CLI: one clear line, exit 2, run folder marked failed."""

import json

import pytest

from tests.keypoints.conftest import status


def _fails(p, rd, *needles):
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error:")]
    assert len(errors) == 1, p.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])
    st = status(rd)
    assert st["state"] == "failed" and st["error"]
    return errors[0]


def test_missing_init_file(kp_cli, tmp_path):
    p, rd = kp_cli("arm=B", f"init={tmp_path / 'nope.pt'}")
    _fails(p, rd, "init=", "nope.pt", "file not found")


def test_missing_demo_init_file(kp_cli, tmp_path):
    p, rd = kp_cli("arm=B", f"data.demo.init={tmp_path / 'gone.pt'}")
    _fails(p, rd, "data.demo.init=", "gone.pt", "file not found")


def test_demo_init_is_skipped_for_another_model(kp_cli):
    """The demo's checkpoint is a yolo11p-pose: another model trains from fresh weights, with a warning."""
    p, rd = kp_cli("arm=B", "model=yolo11n_pose")
    assert p.returncode == 0, p.stderr[-3000:]
    log = (rd / "run.log").read_text()
    assert "data.demo.init was pretrained for yolo11p-pose.yaml, not model.cfg=yolo11n-pose.yaml" in log
    assert "init: fresh weights" in log


def test_init_that_is_not_a_checkpoint(kp_cli, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    p, rd = kp_cli("arm=B", f"init={bad}")
    _fails(p, rd, "init=", "garbage.pt")


def test_keypoint_count_mismatch_between_sources(kp_cli):
    p, rd = kp_cli("arm=A", "data.synthetic.keypoint_map=[0,1,2,3,4,5,6,7,8,9,10,13]")
    _fails(p, rd, "data.synthetic.keypoint_map", "real=14, synthetic=12")


def test_real_subset_larger_than_train_split(kp_cli):
    p, rd = kp_cli("arm=B", "data.real_subset=500")
    _fails(p, rd, "data.real_subset=500", "larger than the 16 images")


def test_empty_synthetic_source(kp_cli, tmp_path):
    coco = tmp_path / "empty.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "vehicle", "keypoints": [f"p{i}" for i in range(24)], "skeleton": []}]}))
    p, rd = kp_cli("arm=A", f"data.synthetic.coco={coco}", f"data.synthetic.images={tmp_path}")
    _fails(p, rd, "data.synthetic.coco", "empty source")


def test_data_yaml_with_relative_paths(kp_cli, tmp_path):
    y = tmp_path / "data.yaml"
    y.write_text("train: images/train\nval: images/val\ntest: images/test\nkpt_shape: [14, 3]\n"
                 "flip_idx: [1, 0, 3, 2, 5, 4, 7, 6, 8, 10, 9, 12, 11, 13]\nnames: {0: vehicle}\n")
    p, rd = kp_cli("arm=B", "data.demo.enabled=false", f"data.real.yaml={y}")
    _fails(p, rd, "data.real.yaml=", "relative path", "absolute")


def test_missing_data_yaml(kp_cli, tmp_path):
    p, rd = kp_cli("arm=B", "data.demo.enabled=false", f"data.real.yaml={tmp_path / 'missing.yaml'}")
    _fails(p, rd, "data.real.yaml=", "file not found")
