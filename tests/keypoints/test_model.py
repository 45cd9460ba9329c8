"""Model building and initialisation from local checkpoints (ultralytics' and vsynth's)."""

import pytest
import torch

from tasks.keypoints.hyp import build_hyp
from tasks.keypoints.model import build_pose_model, ultralytics_allow_list, ultralytics_fit_rule
from vsynth.train.checkpoint import read_weights as _read
from vsynth.train.transfer import load_into
from vsynth.errors import CheckpointError, ConfigError

SIGMAS = [0.08] * 14


def read_weights(path, key="init"):
    return _read(path, key, task_name="keypoints", allow=(ultralytics_allow_list,))


def init_from(model, path, key="init"):
    return "\n".join(load_into(model, read_weights(path, key), key, ultralytics_fit_rule()))


@pytest.fixture(scope="module")
def hyp(kp_cache):
    return build_hyp({"augment": {"fliplr": 0.5}, "loss": {"pose": 12.0}}, 128)


def test_build_from_bundled_yaml_with_data_kpt_shape(hyp):
    m = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS)
    assert list(m.kpt_shape) == [14, 3] and m.model[-1].nk == 42
    assert m.args.pose == 12.0 and m.kpt_oks_sigmas == SIGMAS


def test_unknown_model_yaml_and_unknown_hyp_key(hyp):
    with pytest.raises(ConfigError, match="model.cfg=nope-pose.yaml"):
        build_pose_model("nope-pose.yaml", [14, 3], hyp, SIGMAS)
    with pytest.raises(ConfigError, match="task.augment.mosaik"):
        build_hyp({"augment": {"mosaik": 1.0}}, 128)


def test_init_from_an_ultralytics_checkpoint(hyp, tmp_path):
    """ultralytics pickles whole modules (torch.load's weights_only default refuses them)."""
    src = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS, seed=1)
    p = tmp_path / "ul.pt"
    torch.save({"model": src.half(), "ema": None, "train_args": {}}, p)
    dst = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS, seed=2)
    line = init_from(dst, p)
    assert "ultralytics checkpoint" in line
    n = len(dst.state_dict())
    assert f"{n}/{n} tensors" in line
    k = "model.0.conv.weight"
    assert torch.equal(dst.state_dict()[k], src.float().state_dict()[k])


def test_17_point_person_checkpoint_gives_its_backbone_to_a_14_point_model(hyp, tmp_path):
    person = build_pose_model("yolo11n-pose.yaml", [17, 3], hyp, [0.08] * 17)
    p = tmp_path / "person.pt"
    torch.save({"model": person, "train_args": {}}, p)
    vehicle = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS)
    line = init_from(vehicle, p)
    got, total = (int(x) for x in line.split("init: ")[1].split(" tensors")[0].split("/"))
    assert 0.5 * total < got < total  # all but the keypoint output layers
    with pytest.raises(CheckpointError, match="does not fit model.cfg"):  # but not for evaluation
        load_into(vehicle, read_weights(p, key="ckpt"), "ckpt", ultralytics_fit_rule(), strict=True)


def test_other_architecture_is_refused(hyp, tmp_path):
    small = build_pose_model("yolo11s-pose.yaml", [14, 3], hyp, SIGMAS)
    p = tmp_path / "s.pt"
    torch.save({"model": small, "train_args": {}}, p)
    nano = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS)
    with pytest.raises(CheckpointError, match="init=.*s.pt: only .* tensors fit model.cfg"):
        init_from(nano, p)


def test_a_vsynth_checkpoint_of_another_task_is_refused(tmp_path):
    from vsynth.train.checkpoint import save_checkpoint

    p = tmp_path / "det.pt"
    save_checkpoint(p, {"task": "detection", "model": {}, "ema": None, "meta": {"task": "detection"}})
    with pytest.raises(CheckpointError, match="a checkpoint of task 'detection'"):
        read_weights(p, key="init")


def test_demo_pico_model_yaml_is_found_by_name(hyp):
    m = build_pose_model("yolo11p-pose.yaml", [14, 3], hyp, SIGMAS)
    n = build_pose_model("yolo11n-pose.yaml", [14, 3], hyp, SIGMAS)
    assert sum(p.numel() for p in m.parameters()) < 0.5 * sum(p.numel() for p in n.parameters())


def test_shipped_demo_init_and_the_preset_that_makes_it():
    """The demo's starting checkpoint is in the package, small, and made from a world the demo never sees."""
    from pathlib import Path

    from tests.keypoints.conftest import compose
    from vsynth.run.dirs import package_file

    cfg = compose()
    path = Path(str(cfg.data.demo.init))
    assert path == Path(package_file("tasks.keypoints", "weights/demo_yolo11p_pose.pt")) and path.is_file()
    assert path.stat().st_size < 4_000_000
    w = read_weights(path, key="data.demo.init")
    assert w.kind == "vsynth" and w.meta["model"] == "yolo11p-pose.yaml" and w.meta["kpt_shape"] == [14, 3]
    assert sorted(w.meta["dropped"]) == [f"model.23.cv4.{i}.2.{p}" for i in range(3) for p in ("bias", "weight")]
    assert cfg.model.cfg == "yolo11p-pose.yaml"
    pre = compose("experiment=keypoints_demo_pretrain")
    assert pre.data.demo.seed != cfg.data.demo.seed and pre.data.demo.init is None and pre.arm.name == "base"
