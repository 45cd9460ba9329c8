"""Unit tests of the detection package: box cleaning, COCO reading, init loading, multiscale, model sizes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.detection.data import DetectionData, clean_box, read_coco_boxes, seeded_subset
from tasks.detection.model import YOLOX_SIZES, build_yolox, fit_rule, model_spec
from vsynth.train.checkpoint import read_weights
from vsynth.train.transfer import load_into
from tasks.detection.multiscale import Multiscale, resize_batch
from tests.detection.helpers import CLASSES, coco, write_coco
from vsynth.errors import CheckpointError, ConfigError, DataError

NANO = {"name": "yolox_nano", "depth": 0.33, "width": 0.25, "depthwise": True}


def _images(folder: Path, n: int, w: int = 64, h: int = 48) -> list[dict]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        cv2.imwrite(str(folder / f"im{i}.jpg"), np.full((h, w, 3), 100, np.uint8))
        out.append({"id": i + 1, "file_name": f"im{i}.jpg", "width": w, "height": h})
    return out


def _ann(i: int, image_id: int, bbox, cat: int = 1, **kw) -> dict:
    return {"id": i, "image_id": image_id, "category_id": cat, "bbox": bbox, "area": 10.0, **kw}


# ---- boxes and COCO files ------------------------------------------------------------------------
@pytest.mark.parametrize("bbox, expected, clipped", [
    ([10, 10, 20, 5], [10, 10, 30, 15], False),
    ([0, 0, 0, 5], None, False),             # zero width
    ([5, 5, -3, 4], None, False),            # negative width
    ([5, 5, 4, 0], None, False),             # zero height
    ([70, 10, 5, 5], None, False),           # entirely right of a 64 px wide image
    ([-20, -20, 10, 10], None, False),       # entirely above-left
    ([60, 40, 10, 20], [60, 40, 64, 48], True),  # sticks out: clipped
    ([float("nan"), 0, 4, 4], None, False),
    (["a", 0, 4, 4], None, False),
])
def test_clean_box(bbox, expected, clipped):
    box, was_clipped = clean_box(bbox, 64, 48)
    if expected is None:
        assert box is None
    else:
        assert box.tolist() == expected and was_clipped == clipped


def test_degenerate_boxes_are_dropped_with_one_counted_warning(tmp_path, caplog):
    images = _images(tmp_path / "imgs", 3)
    anns = [_ann(1, 1, [1, 1, 10, 10]), _ann(2, 1, [5, 5, 0, 3]), _ann(3, 2, [5, 5, -2, 3], cat=2),
            _ann(4, 2, [100, 100, 5, 5]), _ann(5, 3, [50, 40, 30, 30], cat=3), _ann(6, 3, [2, 2, 4, 4], cat=3)]
    path = write_coco(tmp_path / "ann.json", coco(images, anns))
    with caplog.at_level(logging.WARNING, logger="vsynth.detection"):
        s = read_coco_boxes(tmp_path / "imgs", path, "data.real.train")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dropped 3 degenerate box(es)" in warnings[0] and "clipped 1 box(es)" in warnings[0] and str(path) in warnings[0]
    assert (s.dropped, s.clipped, s.num_boxes) == (3, 1, 3)
    assert [len(b) for b in s.boxes] == [1, 0, 2]
    assert s.boxes[2][0].tolist() == [50, 40, 64, 48]  # clipped to the 64x48 image
    assert s.labels[2].tolist() == [2, 2]


def test_classes_follow_category_ids_and_labels_map(tmp_path):
    images = _images(tmp_path / "imgs", 1)
    doc = coco(images, [_ann(1, 1, [1, 1, 5, 5], cat=30), _ann(2, 1, [1, 1, 6, 6], cat=10)], classes=[])
    doc["categories"] = [{"id": 30, "name": "truck"}, {"id": 10, "name": "car"}]  # file order != id order
    s = read_coco_boxes(tmp_path / "imgs", write_coco(tmp_path / "a.json", doc), "k")
    assert s.class_names == ["car", "truck"] and s.category_ids == [10, 30]  # YOLOX's order: sorted ids
    assert s.labels[0].tolist() == [1, 0]


@pytest.mark.parametrize("content, message", [
    ("", "empty annotation file"),
    ("   \n", "empty annotation file"),
    ('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}]}', "no images listed"),
    ("IMAGES", "no annotations"),
    ("DEGENERATE", "all 2 boxes are degenerate"),
    ("{", "malformed JSON"),
])
def test_empty_or_useless_annotation_files_are_one_line_errors(tmp_path, content, message):
    images = _images(tmp_path / "imgs", 2)
    if content == "IMAGES":
        content = __import__("json").dumps(coco(images, []))
    elif content == "DEGENERATE":
        content = __import__("json").dumps(coco(images, [_ann(1, 1, [0, 0, 0, 0]), _ann(2, 2, [1, 1, -1, 2])]))
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(DataError) as e:
        read_coco_boxes(tmp_path / "imgs", path, "data.real.train")
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_class_lists_that_differ_between_sources_are_refused(tmp_path):
    images = _images(tmp_path / "imgs", 1)
    a = write_coco(tmp_path / "a.json", coco(images, [_ann(1, 1, [1, 1, 5, 5])]))
    b = write_coco(tmp_path / "b.json", coco(images, [_ann(1, 1, [1, 1, 5, 5])], classes=CLASSES[:6] + ["scooter"]))
    cfg = {"demo": {"enabled": False}, "real": {"train": {"coco": str(a), "images": str(tmp_path / "imgs")}},
           "synthetic": {"train": {"coco": str(b), "images": str(tmp_path / "imgs")}}}
    data = DetectionData(cfg, tmp_path)
    with pytest.raises(DataError, match=r"class names differ between sources 'real/train' and 'synthetic/train'.*scooter"):
        data.classes([("real", "train"), ("synthetic", "train")])
    with pytest.raises(ConfigError, match=r"data.synthetic.val.coco"):
        data.get("synthetic", "val")


def test_seeded_subset_depends_on_subset_seed_only():
    a, b = seeded_subset(50, 10, 0, "data.real_subset"), seeded_subset(50, 10, 0, "data.real_subset")
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 10
    assert seeded_subset(50, 10, 1, "k").tolist() != a.tolist()
    with pytest.raises(ConfigError, match="data.real_subset=60 is larger than the 50"):
        seeded_subset(50, 60, 0, "data.real_subset")


# ---- init loading --------------------------------------------------------------------------------
def _yolox_pth(path: Path, num_classes: int, spec=NANO, seed: int = 5) -> dict:
    model = build_yolox(model_spec(spec), num_classes, seed=seed)
    sd = model.state_dict()
    # as YOLOX's trainer writes it, numpy scalar included (torch >= 2.6 refuses it without an allow-list)
    torch.save({"start_epoch": 300, "model": sd, "optimizer": None, "best_ap": np.float64(40.5), "curr_ap": np.float64(40.1)}, path)
    return sd


def test_init_skips_and_lists_the_shape_mismatched_class_head(tmp_path):
    src = _yolox_pth(tmp_path / "yolox_nano.pth", 80)
    model = build_yolox(model_spec(NANO), 7, seed=0)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    lines = load_into(model, read_weights(tmp_path / "yolox_nano.pth"), "init", fit_rule("yolox_nano", 7))
    text = "\n".join(lines)
    skipped = [f"head.cls_preds.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    assert "skipped 6 tensor(s)" in text
    for name in skipped:
        assert name in text
    assert "head.cls_preds.0.weight: [80, 64, 1, 1] in the checkpoint, [7, 64, 1, 1] in the model" in text
    sd = model.state_dict()
    assert lines[0].startswith(f"init: {len(sd) - 6}/{len(sd)} tensors from yolox checkpoint")
    for k, v in sd.items():
        ref = fresh[k] if k in skipped else src[k]
        assert torch.equal(v, ref), k


def test_init_refuses_a_checkpoint_of_another_model_size(tmp_path):
    _yolox_pth(tmp_path / "yolox_tiny.pth", 80, spec={"name": "yolox_tiny", "depth": 0.33, "width": 0.375})
    model = build_yolox(model_spec(NANO), 7)
    with pytest.raises(CheckpointError, match=r"init=.*yolox_tiny.pth: only \d+ of \d+ tensors fit yolox_nano with 7 "
                                              r"classes; .* check model=yolox_\*"):
        load_into(model, read_weights(tmp_path / "yolox_tiny.pth"), "init", fit_rule("yolox_nano", 7))


def test_strict_load_names_the_mismatch(tmp_path):
    _yolox_pth(tmp_path / "coco.pth", 80)
    model = build_yolox(model_spec(NANO), 7)
    w = read_weights(tmp_path / "coco.pth", key="ckpt")
    with pytest.raises(CheckpointError, match=r"ckpt=.*coco.pth: does not fit yolox_nano with 7 classes \(6 of .* "
                                              r"e.g. head.cls_preds.0.weight: \[80, 64, 1, 1\] in the file"):
        load_into(model, w, "ckpt", fit_rule("yolox_nano", 7), strict=True)


def test_read_weights_accepts_state_dicts_and_refuses_junk(tmp_path):
    model = build_yolox(model_spec(NANO), 3)
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "ddp.pt")
    w = read_weights(tmp_path / "ddp.pt")
    assert w.kind == "state_dict" and set(w.state) == set(model.state_dict())
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"init=.*junk.pth: not a readable checkpoint"):
        read_weights(tmp_path / "junk.pth")
    torch.save({"epoch": 3}, tmp_path / "noweights.pth")
    with pytest.raises(CheckpointError, match="holds no model weights"):
        read_weights(tmp_path / "noweights.pth")
    with pytest.raises(CheckpointError, match="file not found"):
        read_weights(tmp_path / "missing.pth", key="ckpt")


def test_pickled_objects_are_refused_unless_trusted(tmp_path):
    from argparse import Namespace  # a pickled object: not something a YOLOX checkpoint is made of

    model = build_yolox(model_spec(NANO), 3)
    torch.save({"model": model.state_dict(), "args": Namespace(fp16=True)}, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match=r"init=.*old.pth: refused: the file references 'argparse.Namespace'"):
        read_weights(tmp_path / "old.pth")
    w = read_weights(tmp_path / "old.pth", trust=True)
    assert w.kind == "yolox"


# ---- multiscale ----------------------------------------------------------------------------------
def test_multiscale_is_deterministic_from_seed_and_step():
    ms = Multiscale((256, 256), (192, 320), 10, seed=3)
    sizes = [ms.size_at(s) for s in range(200)]
    assert sizes[:10] == [(256, 256)] * 10  # the first size change comes after `interval` steps, as in YOLOX
    assert all(sizes[s] == sizes[(s // 10) * 10] for s in range(200))  # constant within an interval
    assert {h for h, _ in sizes} <= {192, 224, 256, 288, 320} and len({h for h, _ in sizes}) >= 4
    assert sizes == [Multiscale((256, 256), (192, 320), 10, seed=3).size_at(s) for s in range(200)]
    assert sizes != [Multiscale((256, 256), (192, 320), 10, seed=4).size_at(s) for s in range(200)]
    assert Multiscale((256, 256), None, 10, 0).size_at(55) == (256, 256)
    with pytest.raises(ConfigError, match="task.multiscale.range"):
        Multiscale((256, 256), (200, 320), 10, 0)


def test_resize_batch_scales_targets_like_yolox_preprocess():
    imgs = torch.rand(2, 3, 64, 64)
    t = torch.tensor([[[1.0, 32, 16, 10, 20]], [[0.0, 8, 8, 4, 4]]])
    out, tt = resize_batch(imgs, t, (64, 64), (96, 128))
    assert out.shape == (2, 3, 96, 128)
    assert tt[0, 0].tolist() == [1.0, 64, 24, 20, 30]
    assert t[0, 0].tolist() == [1.0, 32, 16, 10, 20]  # input untouched


# ---- model sizes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(YOLOX_SIZES))
def test_model_configs_match_yolox_exps(name):
    from omegaconf import OmegaConf
    from yolox.config import YoloxConfig

    from vsynth.paths import conf_dir

    cfg = OmegaConf.load(conf_dir() / "model" / f"{name}.yaml")
    spec = model_spec(cfg)
    exp = YoloxConfig.get_named_config(name)
    assert (spec["depth"], spec["width"], spec["depthwise"]) == (exp.depth, exp.width, exp.depthwise) == YOLOX_SIZES[name]
    assert spec["name"] == name


def test_backbone_prefix_is_the_cspdarknet():
    from yolox.models.darknet import CspDarknet

    model = build_yolox(model_spec(NANO), 7)
    assert isinstance(dict(model.named_modules())["backbone.backbone"], CspDarknet)
    assert model.head.num_classes == 7


# ---- configs -------------------------------------------------------------------------------------
def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vsynth.paths import conf_dir
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_users_recipe_preset_holds_their_numbers():
    cfg = _compose("task=detection", "experiment=yolox_l_two_phase", "arm=base")
    t, a = cfg.trainer, cfg.task.augment
    assert cfg.model.name == "yolox_l" and (cfg.model.depth, cfg.model.width) == (1.0, 1.0)
    assert (t.batch_size, t.length, t.unit) == (24, 30, "epoch")
    assert [(p.name, p.length, list(p.freeze)) for p in t.phases] == [("frozen", 15, ["backbone.backbone"]), ("unfrozen", None, [])]
    assert t.optimizer.lr == pytest.approx(0.0005 / 64 * 24) and cfg.task.basic_lr_per_img == pytest.approx(0.0005 / 64)
    assert (a.mosaic_prob, a.mixup_prob, a.hsv_prob, a.flip_prob, a.degrees, a.translate, a.shear) == (0.7, 0.4, 0.5, 0.5, 5.0, 0.1, 2.0)
    assert list(cfg.task.multiscale.range) == [736, 1056]
    assert (t.val.interval, t.val.metric, t.checkpoint.every, t.amp, t.ema.enabled) == (5, "val/ap", 5, "auto", True)
    assert cfg.data.name == "coco_detection" and cfg.name == "yolox_l_two_phase-base"
    # the preset on the demo data composes too (a quick look without your data)
    assert _compose("task=detection", "experiment=yolox_l_two_phase", "data=demo_detection").data.demo.enabled


def test_demo_defaults_have_both_phases_and_fit_a_cpu():
    cfg = _compose("task=detection", "arm=base")
    assert cfg.model.name == "yolox_nano" and cfg.data.name == "demo_detection"
    assert [p.name for p in cfg.trainer.phases] == ["frozen", "unfrozen"]
    assert max(cfg.task.input_size) <= 320 and cfg.trainer.length <= 20
