"""Genuine checkpoints written by each backend's own code still load through vsynth's safe reader.

ultralytics: ``YOLO.save`` and a ``best.pt`` from its own trainer; YOLOX: its trainer's layout through
``yolox.utils.save_checkpoint`` (and an older trainer's numpy scalars); mmengine: a real ``Runner``'s
epoch checkpoint (message hub with HistoryBuffers). Each kind loads into the matching model by name and
shape, tensors equal to the source.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsynth.train.checkpoint import read_weights
from vsynth.train.transfer import load_into


def _same(state_a, state_b, names) -> None:
    for k in names:
        assert torch.equal(state_a[k].float(), state_b[k].float()), k


# ---- ultralytics ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ul_env(tmp_path_factory, monkeypatch_module=None):
    import os

    d = tmp_path_factory.mktemp("ul")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(d / "settings"))
    return d


def _pose(k: int = 14, seed: int = 0):
    from tasks.keypoints.hyp import build_hyp
    from tasks.keypoints.model import build_pose_model

    return build_pose_model("yolo11n-pose.yaml", [k, 3], build_hyp({"augment": {}, "loss": {}}, 64), [0.08] * k, seed=seed)


def test_ultralytics_model_save(ul_env):
    from ultralytics import YOLO

    from tasks.keypoints.model import ultralytics_allow_list, ultralytics_fit_rule

    y = YOLO("yolo11n-pose.yaml")
    path = ul_env / "saved.pt"
    y.save(str(path))
    w = read_weights(path, "init", allow=(ultralytics_allow_list,))
    assert w.kind == "ultralytics" and w.which == "model"
    dst = _pose(14)  # like a COCO person checkpoint given to a vehicle model: 80 classes and 17 points in the file
    lines = load_into(dst, w, "init", ultralytics_fit_rule())
    n = len(dst.state_dict())
    got = int(lines[0].split("init: ")[1].split("/")[0])
    assert 0.5 * n < got < n and "skipped" in lines[1]
    saved = {k: v.half() for k, v in y.model.state_dict().items()}  # YOLO.save stores float16
    _same(dst.state_dict(), saved, ["model.0.conv.weight", "model.10.m.0.attn.qkv.conv.weight"])


def test_ultralytics_trainer_best_pt(ul_env):
    """A ``best.pt`` written by ultralytics' own trainer (1 epoch on a tiny demo world, offline)."""
    from ultralytics import YOLO

    from tasks.keypoints.model import ultralytics_allow_list, ultralytics_fit_rule
    from vsynth.data.demo import write_demo

    world = ul_env / "world"
    write_demo(world, seed=3, counts={"real": {"train": 4, "val": 2, "test": 2}}, size=(160, 128), tasks=["keypoints"])
    YOLO("yolo11n-pose.yaml").train(data=str(world / "keypoints" / "real" / "data.yaml"), epochs=1, imgsz=64, batch=2,
                                    workers=0, device="cpu", project=str(ul_env / "runs"), name="t", exist_ok=True,
                                    plots=False, amp=False, verbose=False)
    best = ul_env / "runs" / "t" / "weights" / "best.pt"
    w = read_weights(best, "init", allow=(ultralytics_allow_list,))
    assert w.kind == "ultralytics"  # the trainer's final strip_optimizer moves the EMA into "model"
    dst = _pose(14)
    load_into(dst, w, "init", ultralytics_fit_rule(), strict=True)
    ck = torch.load(best, weights_only=False)  # the test trusts its own file
    raw = (ck.get("ema") or ck["model"]).float().state_dict()
    _same(dst.state_dict(), raw, ["model.0.conv.weight", "model.22.cv4.0.2.weight" if "model.22.cv4.0.2.weight" in raw
                                  else "model.23.cv4.0.2.weight"])


# ---- YOLOX ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("best_ap", [40.5, np.float64(40.5)], ids=["float", "numpy-scalar"])
def test_yolox_trainer_checkpoint(tmp_path, best_ap):
    from yolox.utils import save_checkpoint

    from tasks.detection.model import build_yolox, fit_rule, model_spec

    spec = model_spec({"name": "yolox_nano", "depth": 0.33, "width": 0.25, "depthwise": True})
    src = build_yolox(spec, 7, seed=1)
    opt = torch.optim.SGD(src.parameters(), lr=0.01, momentum=0.9)
    save_checkpoint({"start_epoch": 5, "model": src.state_dict(), "optimizer": opt.state_dict(), "best_ap": best_ap,
                     "curr_ap": best_ap}, True, str(tmp_path), "latest")
    w = read_weights(tmp_path / "best_ckpt.pth", "init")
    assert w.kind == "yolox"
    dst = build_yolox(spec, 7, seed=2)
    load_into(dst, w, "ckpt", fit_rule("yolox_nano", 7), strict=True)
    _same(dst.state_dict(), src.state_dict(), list(src.state_dict())[:5])


# ---- mmengine / mmseg ---------------------------------------------------------------------------------
def test_mmengine_runner_checkpoint(tmp_path):
    """An epoch checkpoint written by a real mmengine ``Runner`` (message hub, optimizer, meta)."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    from tasks.segmentation.model import mmengine_allow_list

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(2, 1)

        def forward(self, x, y=None, mode="tensor"):
            out = self.l(x)
            return {"loss": ((out.squeeze(-1) - y) ** 2).mean()} if mode == "loss" else out

    class Data(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"x": torch.ones(2) * i, "y": torch.tensor(float(i))}

    model = Toy()
    runner = Runner(model=model, work_dir=str(tmp_path / "work"), experiment_name="vsynth-genuine-mmengine",
                    train_dataloader={"dataset": Data(), "sampler": {"type": "DefaultSampler", "shuffle": True},
                                      "batch_size": 4, "collate_fn": {"type": "default_collate"}},
                    optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.01}}, train_cfg={"by_epoch": True, "max_epochs": 1},
                    default_hooks={"checkpoint": {"type": "CheckpointHook", "interval": 1}})
    runner.train()
    ckpt = tmp_path / "work" / "epoch_1.pth"
    w = read_weights(ckpt, "init", allow=(mmengine_allow_list,))
    assert w.kind == "mmseg" and set(w.state) == {"l.weight", "l.bias"}
    _same(w.state, model.state_dict(), ["l.weight", "l.bias"])
    with pytest.raises(Exception, match="refused: the file references '(builtins.getattr|mmengine.logging.history_buffer.HistoryBuffer)'"):
        read_weights(ckpt, "init")  # without mmengine's allow-list (another task) the file is refused
