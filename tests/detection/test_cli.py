"""The detection task end to end through the CLI, on a tiny YOLOX-Nano and tiny demo data (CPU).

One uninterrupted two-phase run is shared by the module: the frozen phase leaves the CSPDarknet
bit-identical, resume mid-phase ends bit-identical to it, ``mode=eval`` reproduces its final test
metrics (for its own checkpoint and for the same weights in YOLOX's format), and bad input ends
with one line, exit code 2 and a run folder marked failed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.detection.model import build_yolox, model_spec
from tests.detection.helpers import DEMO_DATA, TINY, cli, demo_split, user_data_args, write_coco

NANO = {"name": "yolox_nano", "depth": 0.33, "width": 0.25, "depthwise": True}
BACKBONE = "backbone.backbone."


def _train(run_dir: Path, cwd: Path, cache: Path, *extra: str):
    return cli([*TINY, "arm=base", *DEMO_DATA, f"hydra.run.dir={run_dir}", *extra], cwd, cache)


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, det_cache):
    """One uninterrupted run: 4 steps frozen + 4 steps unfrozen, eval every epoch."""
    cwd = tmp_path_factory.mktemp("det_runs")
    run_dir = cwd / "full"
    p = _train(run_dir, cwd, det_cache)
    assert p.returncode == 0, p.stderr[-3000:]
    return run_dir


def test_two_phase_run_writes_a_complete_run_folder(trained):
    d = trained
    for f in ("checkpoints/last.pt", "checkpoints/best.pt", "checkpoints/frozen_end.pt", "checkpoints/unfrozen_end.pt",
              "metrics.jsonl", "report.md", "composition.json", "samples/train_batch_0.png", "samples/train_real.png",
              "samples/pred_test.png"):
        assert (d / f).is_file(), f
    assert _status(d)["state"] == "done"
    m = _metrics(d)
    assert {"test/ap", "test/ap50", "test/ap75", "test/ar100", "best/val/ap"} <= set(m)
    log = (d / "run.log").read_text()
    assert "Phase 'frozen' (steps 0-4)" in log and "frozen in ['backbone.backbone']" in log
    assert "Phase 'unfrozen' (steps 4-8)" in log
    assert "mosaic (and mixup) off, extra L1 loss on" in log
    assert len((d / "metrics.jsonl").read_text().splitlines()) == 2  # eval every epoch


def test_frozen_phase_keeps_the_backbone_bit_identical(trained):
    init = build_yolox(model_spec(NANO), 7, seed=0).state_dict()
    frozen_end = _ckpt(trained / "checkpoints" / "frozen_end.pt")
    assert frozen_end["step"] == 4 and frozen_end["phase"] == "frozen"
    fz, last = frozen_end["model"], _ckpt(trained / "checkpoints" / "last.pt")["model"]
    backbone = [k for k in init if k.startswith(BACKBONE)]
    assert len(backbone) > 100
    for k in backbone:  # weights and BatchNorm running statistics
        assert torch.equal(fz[k], init[k]), k
    trained_elsewhere = [k for k in init if not k.startswith(BACKBONE) and init[k].is_floating_point()
                         and not torch.equal(fz[k], init[k])]
    assert len(trained_elsewhere) > 50  # neck and head did train
    changed = [k for k in backbone if init[k].is_floating_point() and not torch.equal(last[k], init[k])]
    assert len(changed) > 0.9 * len([k for k in backbone if init[k].is_floating_point()])  # unfrozen afterwards


@pytest.mark.parametrize("stop_at", [2, 6], ids=["mid-frozen", "mid-unfrozen"])
def test_resume_mid_phase_ends_bit_identical(trained, tmp_path, det_cache, stop_at):
    run_dir = tmp_path / "resumed"
    p = _train(run_dir, tmp_path, det_cache, f"trainer.stop_at_step={stop_at}")
    assert p.returncode == 3, p.stderr[-2000:]
    assert _status(run_dir)["state"] == "interrupted"
    assert _ckpt(run_dir / "checkpoints" / "last.pt")["step"] == stop_at
    p = _train(run_dir, tmp_path, det_cache)
    assert p.returncode == 0, p.stderr[-2000:]
    log = (run_dir / "run.log").read_text()
    assert f"Resumed from {run_dir / 'checkpoints' / 'last.pt'} at step {stop_at}/8" in log
    phase = "frozen" if stop_at < 4 else "unfrozen"
    assert log.count(f"Phase '{phase}'") == 2  # the freeze state re-applied after the resume
    a, b = _ckpt(trained / "checkpoints" / "last.pt"), _ckpt(run_dir / "checkpoints" / "last.pt")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["ema"]["module"].items():
        assert torch.equal(v, b["ema"]["module"][k]), k
    fz_a, fz_b = _ckpt(trained / "checkpoints" / "frozen_end.pt"), _ckpt(run_dir / "checkpoints" / "frozen_end.pt")
    for k, v in fz_a["model"].items():
        assert torch.equal(v, fz_b["model"][k]), k
    assert _metrics(run_dir)["test/ap"] == _metrics(trained)["test/ap"]


def _eval(cwd: Path, cache: Path, ckpt: Path, *extra: str, data: list[str] | None = None):
    args = [*TINY, "arm=base", *(DEMO_DATA if data is None else data), "mode=eval", f"ckpt={ckpt}",
            f"hydra.run.dir={cwd / 'eval'}", *extra]
    return cli(args, cwd, cache), cwd / "eval"


def test_eval_mode_reproduces_the_runs_final_metrics(trained, tmp_path, det_cache):
    p, d = _eval(tmp_path, det_cache, trained / "checkpoints" / "best.pt")
    assert p.returncode == 0, p.stderr[-2000:]
    ours, theirs = _metrics(d), _metrics(trained)
    for k in ("test/ap", "test/ap50", "test/ap75", "test/ar100"):
        assert ours[k] == theirs[k], k
    assert {k for k in ours if k.startswith("test/")} == {k for k in theirs if k.startswith("test/")}
    assert (d / "samples" / "pred_test.png").is_file() and _status(d)["state"] == "done"


def test_eval_from_the_checkpoint_alone_and_on_other_data(trained, tmp_path, det_cache, demo_root):
    """No task, model or data on the command line: the checkpoint carries them; data keys score other files."""
    best = trained / "checkpoints" / "best.pt"
    p = cli(["mode=eval", f"ckpt={best}", f"hydra.run.dir={tmp_path / 'alone'}"], tmp_path, det_cache)
    assert p.returncode == 0, p.stderr[-2000:]
    ours, theirs = _metrics(tmp_path / "alone"), _metrics(trained)
    for k in ("test/ap", "test/ap50", "test/ap75", "test/ar100"):
        assert ours[k] == theirs[k], k
    # the real val files given as the test split: the numbers of the evaluation that chose best.pt
    real = demo_root / "detection" / "real"
    p = cli(["mode=eval", f"ckpt={best}", f"data.real.test.coco={real / 'annotations' / 'instances_val.json'}",
             f"data.real.test.images={real / 'frames' / 'val'}", f"hydra.run.dir={tmp_path / 'other'}"], tmp_path, det_cache)
    assert p.returncode == 0, p.stderr[-2000:]
    assert _metrics(tmp_path / "other")["test/ap"] == pytest.approx(theirs["val/ap"], abs=1e-12)
    gt = json.loads((tmp_path / "other" / "gt_test.json").read_text())
    assert "instances_val.json" in gt["info"]["description"]


def test_eval_mode_scores_a_yolox_checkpoint(trained, tmp_path, det_cache):
    best = _ckpt(trained / "checkpoints" / "best.pt")
    pth = tmp_path / "best_ckpt.pth"  # YOLOX trainer's layout, numpy scalar included
    torch.save({"start_epoch": 2, "model": best["ema"]["module"], "optimizer": None, "best_ap": np.float64(1.5)}, pth)
    p, d = _eval(tmp_path, det_cache, pth, "eval.split=val")
    assert p.returncode == 0, p.stderr[-2000:]
    records = [json.loads(ln) for ln in (trained / "metrics.jsonl").read_text().splitlines()]
    record = next(r for r in records if r["step"] == best["best"]["step"])
    assert _metrics(d)["val/ap"] == record["val/ap"] and _metrics(d)["val/ap50"] == record["val/ap50"]


def _failed(p, run_dir: Path, *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error: ")]
    assert len(err) == 1, p.stderr[-2000:]
    for n in needles:
        assert n in err[0], err[0]
    st = _status(run_dir)
    assert st["state"] == "failed" and st["error"]
    return err[0]


def test_eval_refuses_a_checkpoint_of_another_model_size(trained, tmp_path, det_cache):
    p, d = _eval(tmp_path, det_cache, trained / "checkpoints" / "best.pt", "model=yolox_tiny")
    _failed(p, d, "best.pt", "model='yolox_nano'", "model='yolox_tiny'")


def test_eval_refuses_a_checkpoint_of_another_task(tmp_path, det_cache):
    from vsynth.train.checkpoint import save_checkpoint

    other = tmp_path / "keypoints_best.pt"
    save_checkpoint(other, {"task": "keypoints", "meta": {"task": "keypoints"}, "model": {"w": torch.zeros(1)}, "ema": None})
    p, d = _eval(tmp_path, det_cache, other)
    _failed(p, d, "keypoints_best.pt", "task 'keypoints'")


def test_eval_refuses_a_checkpoint_with_other_classes(trained, tmp_path, det_cache, demo_root):
    images, ann = demo_split(demo_root, "real", "test")
    doc = json.loads(ann.read_text())
    doc["categories"] = doc["categories"][:3]
    doc["annotations"] = [a for a in doc["annotations"] if a["category_id"] <= 3]
    three = write_coco(tmp_path / "three.json", doc)
    p, d = _eval(tmp_path, det_cache, trained / "checkpoints" / "best.pt",
                 data=user_data_args({"real.test": (images, three)}))
    _failed(p, d, "num_classes=7", "num_classes=3")
    # YOLOX's own 80-class COCO checkpoint cannot be scored as a 7-class model either
    pth = tmp_path / "yolox_nano_coco.pth"
    torch.save({"model": build_yolox(model_spec(NANO), 80).state_dict()}, pth)
    shutil.rmtree(d)
    p, d = _eval(tmp_path, det_cache, pth)
    _failed(p, d, "does not fit yolox_nano with 7 classes", "head.cls_preds.0.weight")


def test_sources_with_different_class_lists_are_refused(tmp_path, det_cache, demo_root):
    img_r, ann_r = demo_split(demo_root, "real", "train")
    img_s, ann_s = demo_split(demo_root, "synthetic", "train")
    doc = json.loads(ann_s.read_text())
    doc["categories"][2]["name"] = "coach"
    syn = write_coco(tmp_path / "syn.json", doc)
    data = user_data_args({"real.train": (img_r, ann_r), "synthetic.train": (img_s, syn),
                           "real.val": demo_split(demo_root, "real", "val"), "real.test": demo_split(demo_root, "real", "test")})
    run_dir = tmp_path / "run"
    p = cli([*TINY, "arm=A", *data, "data.real_subset=8", f"hydra.run.dir={run_dir}"], tmp_path, det_cache)
    _failed(p, run_dir, "class names differ between sources", "coach")


def test_empty_annotation_file_is_refused(tmp_path, det_cache, demo_root):
    images, _ = demo_split(demo_root, "real", "val")
    empty = tmp_path / "val.json"
    empty.write_text("")
    data = user_data_args({"real.train": demo_split(demo_root, "real", "train"), "real.val": (images, empty),
                           "real.test": demo_split(demo_root, "real", "test")})
    run_dir = tmp_path / "run"
    p = cli([*TINY, "arm=base", *data, f"hydra.run.dir={run_dir}"], tmp_path, det_cache)
    _failed(p, run_dir, f"{empty}: empty annotation file")


def test_degenerate_boxes_are_dropped_and_counted_while_mixing_sources(tmp_path, det_cache, demo_root):
    images, ann = demo_split(demo_root, "real", "train")
    doc = json.loads(ann.read_text())
    n = len(doc["annotations"])
    nid = max(a["id"] for a in doc["annotations"]) + 1
    for i, bbox in enumerate(([10, 10, 0, 20], [10, 10, 15, -4], [400, 300, 20, 20])):
        doc["annotations"].append({"id": nid + i, "image_id": doc["images"][i]["id"], "category_id": 1, "bbox": bbox,
                                   "area": 1.0, "iscrowd": 0})
    bad = write_coco(tmp_path / "train_bad.json", doc)
    data = user_data_args({"real.train": (images, bad), "synthetic.train": demo_split(demo_root, "synthetic", "train"),
                           "real.val": demo_split(demo_root, "real", "val"), "real.test": demo_split(demo_root, "real", "test")})
    run_dir = tmp_path / "run"
    p = cli([*TINY, "arm=A", *data, "data.real_subset=8", "trainer.length=1",
             "trainer.phases=[{name: frozen, length: 0.5, freeze: [backbone.backbone]}, {name: unfrozen, length: null}]",
             f"hydra.run.dir={run_dir}"], tmp_path, det_cache)
    assert p.returncode == 0, p.stderr[-3000:]
    log = (run_dir / "run.log").read_text()
    lines = [ln for ln in log.splitlines() if "[WARNING]" in ln and "degenerate box" in ln]
    assert len(lines) == 1 and "dropped 3 degenerate box(es)" in lines[0] and str(bad) in lines[0]
    assert f"{n} of {n + 3} boxes kept" in lines[0]
    comp = json.loads((run_dir / "composition.json").read_text())
    assert set(comp["samples_per_source"]) == {"real", "synthetic"}


def test_synth_only_arm_from_a_coco_checkpoint(tmp_path, det_cache):
    """arm=synth_only trains and scores on synthetic frames; init= from an 80-class YOLOX file lists the skipped head."""
    coco_pth = tmp_path / "yolox_nano.pth"
    torch.save({"start_epoch": 300, "model": build_yolox(model_spec(NANO), 80, seed=1).state_dict(), "best_ap": np.float64(25.8)},
               coco_pth)
    run_dir = tmp_path / "so"
    p = cli([*TINY, "arm=synth_only", *DEMO_DATA, "trainer.length=1", f"init={coco_pth}",
             "trainer.phases=[{name: frozen, length: 0.5, freeze: [backbone.backbone]}, {name: unfrozen, length: null}]",
             f"hydra.run.dir={run_dir}"], tmp_path, det_cache)
    assert p.returncode == 0, p.stderr[-2000:]
    log = (run_dir / "run.log").read_text()
    assert "source synthetic: 8 training images" in log and "data.synthetic.test: 4 images" in log
    assert "data.real." not in log
    assert _metrics(run_dir)["test/num_images"] == 4
    assert "init: skipped 6 tensor(s) whose shape differs" in log
    assert "head.cls_preds.2.bias: [80] in the checkpoint, [7] in the model" in log


@pytest.mark.slow
def test_ddp_two_gloo_processes_train_both_phases(tmp_path, det_cache):
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.detection.helpers import env

    torchrun = Path(sys.executable).with_name("torchrun")
    run_dir = tmp_path / "ddp"
    p = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "vsynth", *TINY, "arm=base", *DEMO_DATA,
                        "device=cpu", f"hydra.run.dir={run_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO), **env(det_cache)})
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    init = build_yolox(model_spec(NANO), 7, seed=0).state_dict()
    fz = _ckpt(run_dir / "checkpoints" / "frozen_end.pt")["model"]
    assert all(torch.equal(fz[k], init[k]) for k in init if k.startswith(BACKBONE))
    assert {"test/ap", "test/ap50"} <= set(_metrics(run_dir))
