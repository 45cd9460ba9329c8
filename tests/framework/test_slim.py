"""``python -m vsynth.train.slim``: a training checkpoint reduced to its EMA weights for ``init=``."""

import torch

from vsynth.train.checkpoint import load_checkpoint, save_checkpoint
from vsynth.train.slim import main, slim_checkpoint


def _ckpt(path, with_ema=True):
    model = {"w": torch.ones(3, 2), "bn.num_batches_tracked": torch.tensor(7)}
    ema = {"module": {"w": torch.full((3, 2), 2.0), "bn.num_batches_tracked": torch.tensor(7)}, "updates": 5}
    save_checkpoint(path, {"task": "keypoints", "meta": {"model": "yolo11p-pose.yaml"}, "model": model,
                           "ema": ema if with_ema else None, "step": 42, "best": {"value": 0.5},
                           "optimizer": {"state": {0: {"exp_avg": torch.zeros(1000)}}}, "config": "a: 1\n"})


def test_keeps_the_ema_weights_and_the_meta_and_drops_the_rest(tmp_path):
    src, dst = tmp_path / "best.pt", tmp_path / "init.pt"
    _ckpt(src)
    out = slim_checkpoint(src, dst, half=True, note="made by a test")
    obj = load_checkpoint(dst)
    assert torch.equal(obj["model"]["w"], torch.full((3, 2), 2.0, dtype=torch.float16))  # EMA, halved
    assert obj["model"]["bn.num_batches_tracked"].dtype == torch.int64  # integers stay integers
    assert "optimizer" not in obj and obj["ema"] is None and obj["task"] == "keypoints"
    assert obj["meta"]["model"] == "yolo11p-pose.yaml" and obj["meta"]["step"] == 42
    assert obj["meta"]["note"] == "made by a test" and out["bytes"] < src.stat().st_size


def test_without_ema_keeps_the_raw_weights_and_cli_reports_errors(tmp_path, capsys):
    src, dst = tmp_path / "last.pt", tmp_path / "init.pt"
    _ckpt(src, with_ema=False)
    assert main([str(src), str(dst)]) == 0
    assert torch.equal(load_checkpoint(dst)["model"]["w"], torch.ones(3, 2))
    _ckpt(src, with_ema=True)
    assert main([str(src), str(dst), "--weights", "model"]) == 0  # the raw weights although an EMA exists
    assert torch.equal(load_checkpoint(dst)["model"]["w"], torch.ones(3, 2))
    assert load_checkpoint(dst)["meta"]["weights"] == "model"
    assert main([str(src), str(dst), "--drop", "bn."]) == 0  # an output layer to learn afresh
    assert set(load_checkpoint(dst)["model"]) == {"w"} and load_checkpoint(dst)["meta"]["dropped"] == [
        "bn.num_batches_tracked"]
    assert main([str(src), str(dst), "--drop", "head."]) == 2  # a prefix matching nothing is a typo
    assert main([str(tmp_path / "nope.pt"), str(dst)]) == 2
    assert "src=" in capsys.readouterr().err
