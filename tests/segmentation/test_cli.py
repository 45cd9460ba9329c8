"""End to end on the demo world at toy size: the ratio sweep, composition, metrics, run folder, resume."""

from __future__ import annotations

import csv

import pytest
import torch

from tests.conftest import run_cli
from tests.segmentation.conftest import CLASSES, read_json, seg_args

RATIOS = {"0.0": {"real": 0, "generated": 4}, "0.5": {"real": 2, "generated": 2}, "1.0": {"real": 4, "generated": 0}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, seg_cache):
    """`python -m vsynth -m task=segmentation data.ratio=0.0,0.5,1.0` (toy sizes), run once for the module."""
    cwd = tmp_path_factory.mktemp("seg-sweep")
    p = run_cli(["-m", "task=segmentation", "arm=ratio", "data.ratio=0.0,0.5,1.0", *seg_args()], cwd,
                env={"VSYNTH_CACHE": str(seg_cache), "OMP_NUM_THREADS": "1"}, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    roots = list((cwd / "outputs" / "sweeps").iterdir())
    assert len(roots) == 1, roots
    root = roots[0]
    jobs = {}
    for d in root.iterdir():
        if (d / "composition.json").is_file():
            jobs[str(read_json(d / "composition.json")["ratio"])] = d
    return root, jobs


def test_sweep_gives_one_run_folder_per_ratio(sweep):
    root, jobs = sweep
    assert sorted(jobs) == ["0.0", "0.5", "1.0"]
    for r, d in jobs.items():
        assert f"data.ratio={r}" in d.name
        assert read_json(d / "status.json")["state"] == "done"
    rows = list(csv.DictReader(open(root / "summary.csv")))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    assert (root / "report.md").is_file()


@pytest.mark.parametrize("ratio", sorted(RATIOS))
def test_every_batch_has_the_ratio_composition(sweep, ratio):
    _, jobs = sweep
    d = jobs[ratio]
    comp = read_json(d / "composition.json")
    want = RATIOS[ratio]
    assert comp["mode"] == "ratio" and comp["expected_per_batch"] == want
    steps = comp["steps"]
    assert steps == 4
    label = " + ".join(f"{n} {s}" for s, n in sorted(want.items()) if n) + " = 4 total"
    assert comp["batches_by_composition"] == {label: steps}  # every realised batch, counted from loaded samples
    assert {k: v for k, v in comp["samples_per_source"].items() if v} == {s: n * steps for s, n in want.items() if n}
    log = (d / "run.log").read_text()
    assert f"Batch composition: {label}" in log


@pytest.mark.parametrize("ratio", ["0.0", "1.0"])
def test_metrics_stats_and_samples(sweep, ratio):
    _, jobs = sweep
    d = jobs[ratio]
    m = read_json(d / "metrics.json")
    for key in ("test/miou", "test/macc", "test/aacc", "best/val/miou", "best/step"):
        assert key in m, sorted(m)
    for c in CLASSES:
        assert f"test/iou/{c}" in m and f"test/acc/{c}" in m
    assert 0.0 <= m["test/aacc"] <= 1.0 and m["test/num_images"] == 4
    lines = (d / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all("val/miou" in ln for ln in lines)  # eval every 2 of 4 steps
    stats = read_json(d / "data_stats.json")
    assert set(stats["sources"]) == {"real", "generated"}
    gen = stats["sources"]["generated"]
    assert gen["per_batch"] == RATIOS[ratio]["generated"] and gen["sampled"] == 4
    assert len(gen["rgb_mean"]) == 3 and len(gen["rgb_std"]) == 3 and "mean_abs_diff" in gen["vs_source"]
    assert set(gen["label_freq"]) == set(CLASSES) and abs(sum(gen["label_freq"].values()) - 1) < 1e-3
    # the demo's generated images are brighter and washed out: the stats must show it
    real = stats["sources"]["real"]
    assert gen["rgb_mean"][0] > real["rgb_mean"][0] and gen["rgb_std"][0] < real["rgb_std"][0]
    assert (d / "samples" / "train_batch_0.png").stat().st_size > 1000
    assert (d / "samples" / "pred_test.png").is_file()
    assert (d / "checkpoints" / "best.pt").is_file()


def test_resume_continues_to_the_same_weights(seg_cli):
    full = seg_cli(*seg_args("data.ratio=0.5", f"hydra.run.dir={seg_cli.cwd / 'full'}"))
    assert full.returncode == 0, full.stderr[-2000:]
    run = seg_cli.cwd / "resumed"
    first = seg_cli(*seg_args("data.ratio=0.5", "trainer.stop_at_step=2", f"hydra.run.dir={run}"))
    assert first.returncode == 3, first.stderr[-2000:]
    assert read_json(run / "status.json")["state"] == "interrupted"
    second = seg_cli(*seg_args("data.ratio=0.5", f"hydra.run.dir={run}"))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resumed from" in (run / "run.log").read_text()
    assert read_json(run / "composition.json")["batches_by_composition"] == {"2 generated + 2 real = 4 total": 4}
    a = torch.load(seg_cli.cwd / "full" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # per-sample seeding makes mmcv's random transforms resumable


def test_eval_mode_whole_and_slide(seg_cli):
    train = seg_cli(*seg_args("data.ratio=1.0", "trainer.length=2", f"hydra.run.dir={seg_cli.cwd / 'train'}"))
    assert train.returncode == 0, train.stderr[-2000:]
    best = seg_cli.cwd / "train" / "checkpoints" / "best.pt"
    out = {}
    for mode in ("whole", "slide"):
        p = seg_cli(*seg_args("mode=eval", f"ckpt={best}", f"task.inference={mode}", "eval.split=val",
                              f"hydra.run.dir={seg_cli.cwd / mode}"))
        assert p.returncode == 0, p.stderr[-2000:]
        out[mode] = read_json(seg_cli.cwd / mode / "metrics.json")
        assert {"val/miou", "val/aacc", "val/iou/road"} <= set(out[mode])
    trained = read_json(seg_cli.cwd / "train" / "metrics.json")
    assert out["whole"]["val/miou"] == pytest.approx(trained["best/val/miou"], abs=1e-9)  # same weights, same numbers
    # the same weights as an mmseg-style checkpoint without the auxiliary head (unused at inference)
    state = torch.load(best, weights_only=True)["model"]
    mm = seg_cli.cwd / "mmseg.pth"
    torch.save({"meta": {"iter": 2}, "state_dict": {k: v for k, v in state.items() if not k.startswith("auxiliary_head.")}}, mm)
    p = seg_cli(*seg_args("mode=eval", f"ckpt={mm}", "eval.split=val", f"hydra.run.dir={seg_cli.cwd / 'mm'}"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert read_json(seg_cli.cwd / "mm" / "metrics.json")["val/miou"] == pytest.approx(out["whole"]["val/miou"], abs=1e-12)


def test_sidewalk_preset_with_class_weights_and_mining(seg_cli):
    """deeplab_sidewalk at toy size: 2 classes, weights 1/10 on labels with 255 bands, OHEM."""
    p = seg_cli(*seg_args("model=deeplabv3plus_r50_demo", "task.loss.mining=ohem", "trainer.length=2",
                          f"hydra.run.dir={seg_cli.cwd / 'sw'}", experiment="[deeplab_sidewalk,seg_tiny]"))
    assert p.returncode == 0, p.stderr[-2000:]
    d = seg_cli.cwd / "sw"
    log = (d / "run.log").read_text()
    assert "DepthwiseSeparableASPPHead" in log and "'class_weight': [1.0, 10.0]" in log and "'mining': 'ohem'" in log
    m = read_json(d / "metrics.json")
    assert {"test/iou/background", "test/iou/sidewalk", "test/miou"} <= set(m)
    stats = read_json(d / "data_stats.json")
    assert stats["classes"] == ["background", "sidewalk"] and stats["sources"]["real"]["ignore_fraction"] > 0


def test_real_only_run_needs_no_manifest(seg_cli, data_copy):
    """data=seg_folders at data.ratio=1.0 without a generated manifest: the real-only control."""
    run = seg_cli.cwd / "real-only"
    p = seg_cli(*seg_args("data=seg_folders", f"data.real.root={data_copy / 'real'}", "data.ratio=1.0",
                          "trainer.length=2", f"hydra.run.dir={run}"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert read_json(run / "composition.json")["batches_by_composition"] == {"4 real = 4 total": 2}
    assert read_json(run / "data_stats.json")["sources"]["generated"] == {"images": 0, "per_batch": 0}


@pytest.mark.slow
def test_ratio_ablation_preset_sweeps_its_six_ratios(seg_cli):
    """`-m experiment=pspnet_ratio_ablation` expands its own hydra.sweeper.params (toy model, 1 step per job)."""
    p = seg_cli("-m", *seg_args("model=pspnet_r50_demo", "trainer.length=1", "trainer.val.interval=1", "trainer.batch_size=8",
                                experiment="[pspnet_ratio_ablation,seg_tiny]"), timeout=1200)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    roots = list((seg_cli.cwd / "outputs" / "sweeps").iterdir())
    assert len(roots) == 1
    per_batch = {}
    for d in roots[0].iterdir():
        if (d / "composition.json").is_file():
            comp = read_json(d / "composition.json")
            per_batch[comp["ratio"]] = comp["expected_per_batch"]["real"]
    assert per_batch == {1.0: 8, 0.75: 6, 0.5: 4, 0.25: 2, 0.12: 1, 0.0: 0}  # the users' batches of 8
    assert len(list((roots[0]).glob("*/metrics.json"))) == 6 and (roots[0] / "summary.csv").is_file()


def test_eval_from_the_checkpoint_alone(seg_cli):
    """No experiment, task or data on the command line: the checkpoint carries them."""
    run = seg_cli.cwd / "train"
    p = seg_cli(*seg_args("data.ratio=1.0", "trainer.length=2", f"hydra.run.dir={run}"))
    assert p.returncode == 0, p.stderr[-2000:]
    p = seg_cli("mode=eval", f"ckpt={run / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={seg_cli.cwd / 'alone'}")
    assert p.returncode == 0, p.stderr[-2000:]
    ours, theirs = read_json(seg_cli.cwd / "alone" / "metrics.json"), read_json(run / "metrics.json")
    assert ours["test/miou"] == pytest.approx(theirs["test/miou"], abs=1e-12)
    manifest = read_json(seg_cli.cwd / "alone" / "gt_test.json")  # the masks can be re-scored elsewhere
    assert len(manifest["images"]) == ours["test/num_images"]
    assert (seg_cli.cwd / "alone" / "predictions_test" / manifest["images"][0]["prediction"]).is_file()
