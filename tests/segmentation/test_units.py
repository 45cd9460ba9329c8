"""Model configs, init=PATH, SyncBN conversion, pipelines and data stats without the CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from tests.conftest import REPO
from vsynth.errors import CheckpointError, ConfigError

MODELS = ["pspnet_r50", "deeplabv3_r50", "deeplabv3_r101", "deeplabv3plus_r50", "deeplabv3plus_r101",
          "pspnet_r50_demo", "deeplabv3plus_r50_demo"]


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        return compose("config", overrides=["task=segmentation", "arm=ratio", *overrides])


@pytest.mark.parametrize("name", MODELS)
def test_model_configs_fill_channels_classes_losses(name):
    from tasks.segmentation.model import segmentor_config

    cfg = _cfg(f"model={name}")
    d = segmentor_config(cfg, ["a", "b", "c"])
    depth, width = cfg.model.depth, cfg.model.width
    assert d["backbone"]["depth"] == depth and d["backbone"]["init_cfg"] is None and d["pretrained"] is None
    expansion = 1 if depth in (18, 34) else 4
    assert d["decode_head"]["in_channels"] == width * 8 * expansion
    assert d["auxiliary_head"]["in_channels"] == width * 4 * expansion
    if "plus" in name:
        assert d["decode_head"]["c1_in_channels"] == width * expansion
    for head in ("decode_head", "auxiliary_head"):
        assert d[head]["num_classes"] == 3 and d[head]["loss_decode"]["type"] == "VsynthSegLoss"
        assert d[head]["norm_cfg"]["type"] == "BN"
    assert d["auxiliary_head"]["loss_decode"]["loss_weight"] == pytest.approx(0.4)
    assert d["data_preprocessor"]["size"] == (128, 128) and d["data_preprocessor"]["seg_pad_val"] == 255
    if name == "pspnet_r50":
        assert (d["decode_head"]["in_channels"], d["auxiliary_head"]["in_channels"]) == (2048, 1024)
    if name == "deeplabv3plus_r101":
        assert d["backbone"]["depth"] == 101 and d["decode_head"]["c1_in_channels"] == 256


@pytest.mark.parametrize("name", ["pspnet_r50", "deeplabv3_r50", "deeplabv3plus_r50"])
def test_each_architecture_builds_and_predicts_at_toy_width(name):
    from tasks.segmentation.model import build_segmentor, segmentor_config, set_inference

    cfg = _cfg(f"model={name}", "model.depth=18", "model.width=8", "model.head_channels=8", "model.aux_channels=8")
    model = build_segmentor(segmentor_config(cfg, ["a", "b"])).eval()
    x = torch.randn(1, 3, 64, 80)
    meta = [dict(img_shape=(64, 80), ori_shape=(64, 80), pad_shape=(64, 80), padding_size=[0, 0, 0, 0])]
    with torch.no_grad():
        assert model.inference(x, meta).shape == (1, 2, 64, 80)
        set_inference(model, {"mode": "slide", "crop_size": (48, 48), "stride": (32, 32)})
        assert model.inference(x, meta).shape == (1, 2, 64, 80)


def test_full_size_pspnet_r50_builds_without_download():
    from tasks.segmentation.model import build_segmentor, segmentor_config

    model = build_segmentor(segmentor_config(_cfg("model=pspnet_r50"), [str(i) for i in range(19)]))
    n = sum(p.numel() for p in model.parameters())
    assert 45e6 < n < 52e6  # mmseg's PSPNet-R50-D8 (with its auxiliary head) has ~49M parameters


def test_remote_weights_and_bad_knobs_are_refused():
    from tasks.segmentation.model import inference_cfg, segmentor_config

    with pytest.raises(ConfigError, match="model.mmseg.pretrained=open-mmlab://resnet50_v1c"):
        segmentor_config(_cfg("model.mmseg.pretrained=open-mmlab://resnet50_v1c"), ["a", "b"])
    with pytest.raises(ConfigError, match="task.loss.class_weight: 3 weights for 2 classes"):
        segmentor_config(_cfg("task.loss.class_weight=[1,2,3]"), ["a", "b"])
    with pytest.raises(ConfigError, match="task.loss.mining"):
        segmentor_config(_cfg("task.loss.mining=focal"), ["a", "b"])
    with pytest.raises(ConfigError, match="task.inference"):
        inference_cfg(_cfg("task.inference=tiled").task)
    with pytest.raises(ConfigError, match="task.slide.stride"):
        inference_cfg(_cfg("task.inference=slide", "task.slide.stride=[200,200]").task)
    d = segmentor_config(_cfg("task.loss.class_weight={b: 10.0}"), ["a", "b"])
    assert d["decode_head"]["loss_decode"]["class_weight"] == [1.0, 10.0]


class Evil:
    def __reduce__(self):
        return (os.system, ("touch evil-was-here",))


def _mmengine_checkpoint(model, path, **extra):
    """What mmengine's ``Runner.save_checkpoint`` writes: meta, state_dict, the message hub (HistoryBuffer
    objects of numpy arrays) and the optimizer, through mmengine's own ``save_checkpoint``."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

    hub = MessageHub.get_instance("vsynth-test-hub")
    for i in range(3):
        hub.update_scalar("train/loss", 1.0 / (i + 1))
    hub.update_info("iter", 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    save_checkpoint({"meta": {"epoch": 3, "iter": 3, "seed": 0, "mmengine_version": "0.10.7", "cfg": "model = dict()"},
                     "state_dict": weights_to_cpu(model.state_dict()), "message_hub": hub.state_dict(),
                     "optimizer": opt.state_dict(), **extra}, str(path))


def _small_model(classes=2):
    from tasks.segmentation.model import build_segmentor, segmentor_config

    cfg = _cfg("model.width=8", "model.head_channels=8", "model.aux_channels=8")
    return build_segmentor(segmentor_config(cfg, [str(i) for i in range(classes)]))


def test_init_from_mmengine_checkpoint_skips_mismatched_heads(tmp_path):
    from tasks.segmentation.model import fit_rule, mmengine_allow_list
    from vsynth.train.checkpoint import read_weights
    from vsynth.train.transfer import transfer

    src = _small_model(classes=5)  # another dataset's head
    path = tmp_path / "mmseg.pth"
    _mmengine_checkpoint(src, path)
    w = read_weights(path, allow=(mmengine_allow_list,))
    assert w.kind == "mmseg"
    dst = _small_model(classes=2)
    m = transfer(dst, w.state, "init", path, fit_rule())
    assert m.missing == [] and len(m.skipped) == 4  # conv_seg weight + bias of both heads
    assert all("conv_seg" in k for k, _, _ in m.skipped) and m.loaded == m.total - 4
    k = "backbone.layer1.0.conv1.weight"
    assert torch.equal(dst.state_dict()[k], src.state_dict()[k])
    with pytest.raises(CheckpointError, match="only 0 of"):
        transfer(dst, {"foo": torch.zeros(1)}, "init", path, fit_rule())


def test_mmengine_checkpoint_with_a_payload_is_refused_and_never_runs(tmp_path, monkeypatch):
    from tasks.segmentation.model import mmengine_allow_list
    from vsynth.train.checkpoint import read_weights

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    _mmengine_checkpoint(_small_model(), path, x=Evil())
    with pytest.raises(CheckpointError, match=r"init=.*evil.pth: refused: the file references '(posix|os).system'"):
        read_weights(path, allow=(mmengine_allow_list,))
    assert not (tmp_path / "evil-was-here").exists()


def test_sync_bn_only_under_multi_process_cuda():
    from tasks.segmentation.model import maybe_sync_bn

    m = _small_model()
    assert not any(isinstance(x, torch.nn.SyncBatchNorm) for x in maybe_sync_bn(m, "auto", 1, torch.device("cpu")).modules())
    assert not any(isinstance(x, torch.nn.SyncBatchNorm) for x in maybe_sync_bn(m, "auto", 2, torch.device("cpu")).modules())
    conv = maybe_sync_bn(_small_model(), "auto", 2, torch.device("cuda", 0))
    assert any(isinstance(x, torch.nn.SyncBatchNorm) for x in conv.modules())
    assert not any(type(x) is torch.nn.BatchNorm2d for x in conv.modules())
    assert not any(isinstance(x, torch.nn.SyncBatchNorm) for x in maybe_sync_bn(_small_model(), "BN", 2, torch.device("cuda", 0)).modules())


def test_pipeline_is_reproducible_from_the_sample_seed(seg_cache):
    from vsynth.data.demo import ensure_demo
    from tasks.segmentation.data import SegItem, SegPipelineSet, read_classes

    world = ensure_demo("segmentation", seg_cache / "demo", 0,
                        {"real": {"train": 12, "val": 4, "test": 4}, "generated": {"train": 12}}, (96, 64))
    real = world / "segmentation" / "real"
    img = sorted((real / "img_dir" / "train").glob("*.jpg"))[0]
    item = SegItem(img, real / "ann_dir" / "train" / f"{img.stem}.png")
    cfg = _cfg("task.crop_size=[48,48]", "task.scale=[96,64]")
    ds = SegPipelineSet([item], cfg.task.train_pipeline, "task.train_pipeline", read_classes(real / "classes.json"))
    outs = []
    for seed in (7, 7, 8):
        np.random.seed(seed)
        outs.append(ds[0])
    assert torch.equal(outs[0]["inputs"], outs[1]["inputs"])
    assert torch.equal(outs[0]["data_samples"].gt_sem_seg.data, outs[1]["data_samples"].gt_sem_seg.data)
    assert outs[0]["inputs"].shape[0] == 3 and max(outs[0]["inputs"].shape[1:]) <= 48  # crops; padded later
    assert not torch.equal(outs[0]["inputs"], outs[2]["inputs"])


def test_task_segmentation_alone_selects_the_ratio_arm():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=["task=segmentation"])
    assert list(cfg.arm.sources) == ["real", "generated"] and cfg.data.name == "demo_seg"
