"""`python -m vsynth task=segmentation mode=consistency ckpt=...`: the command, its records, its errors, and the
known answer with a trained real-only model on the demo world's warp."""

from __future__ import annotations

import csv

import pytest
import yaml

from tests.conftest import run_cli
from tests.segmentation.conftest import CLASSES, read_json, seg_args

CONDITIONS = ["cloudy", "dawn_dusk", "fog", "rainy", "snowy"]


@pytest.fixture(scope="module")
def real_model(tmp_path_factory, seg_cache):
    """A real-only toy model (2 iterations: what it scores does not matter here, only that it is real-only)."""
    cwd = tmp_path_factory.mktemp("seg-consistency")
    run = cwd / "real-only"
    p = run_cli(seg_args("data.ratio=1.0", "trainer.length=2", "trainer.threads=1", f"hydra.run.dir={run}"), cwd,
                env={"VSYNTH_CACHE": str(seg_cache), "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    return run / "checkpoints" / "best.pt"


def test_consistency_run_writes_its_records(seg_cli, real_model):
    run = seg_cli.cwd / "consistency"
    p = seg_cli("task=segmentation", "mode=consistency", f"ckpt={real_model}", "trainer.threads=1",
                "task.consistency.bootstrap.samples=50", f"hydra.run.dir={run}")
    assert p.returncode == 0, p.stderr[-2000:]
    doc = read_json(run / "consistency.json")
    assert doc["ckpt"] == str(real_model.resolve()) and doc["classes"] == CLASSES and doc["ignore_index"] == 255
    assert doc["model"]["real_only"] is True and doc["model"]["arm"] == "ratio1.0"
    assert doc["images"] == 12 and doc["source_images"] == 12 and doc["manifest"].endswith("manifest.csv")
    assert sorted(doc["by_condition"]) == CONDITIONS and list(doc["by_generator"]) == ["demo-style-transfer"]
    assert sorted(doc["groups"]) == [f"{c}/demo-style-transfer" for c in CONDITIONS]
    for entry in [doc["all"], *doc["by_condition"].values(), *doc["groups"].values()]:
        for key in ("images", "source_images", "miou_generated", "miou_source", "drop", "drop_low", "drop_high",
                    "aacc_generated", "aacc_source", "resized", "aspect_changed", "rgb"):
            assert key in entry, key
        assert set(entry["iou_generated"]) == set(entry["iou_source"]) == set(entry["iou_drop"]) == set(CLASSES)
        assert entry["drop"] == pytest.approx(entry["miou_source"] - entry["miou_generated"], abs=2e-6)
        assert entry["drop_low"] <= entry["drop"] + 1e-6 and entry["drop"] <= entry["drop_high"] + 1e-6
    assert sum(e["images"] for e in doc["by_condition"].values()) == 12
    # the demo's generated images are brighter and washed out, and the RGB statistics show it
    rgb = doc["all"]["rgb"]
    assert rgb["generated"]["mean"][0] > rgb["source"]["mean"][0] and rgb["std_ratio"][0] < 1.0
    metrics = read_json(run / "metrics.json")
    assert metrics["consistency/miou_generated"] == doc["all"]["miou_generated"]
    assert metrics["consistency/drop"] == doc["all"]["drop"]
    report = (run / "report.md").read_text()
    assert "## Semantic consistency of the generated images" in report and "| condition fog |" in report
    assert "trained on real data only" in report
    assert (run / "samples" / "consistency.png").is_file()
    assert read_json(run / "status.json")["state"] == "done"


def test_a_generator_that_changes_nothing_drops_nothing(seg_cli, real_model, data_copy):
    """Null data: 'generated' images that are their sources themselves drop exactly 0. In the same manifest,
    half-size copies take the resize path end to end (predicted at their size, scored at the label's)."""
    import cv2

    rows = list(csv.DictReader(open(data_copy / "generated" / "manifest.csv")))
    folder = data_copy / "generated"
    halves = []
    for i, r in enumerate(rows):
        img = cv2.imread(str(folder / r["source_image"]))
        cv2.imwrite(str(folder / f"half_{i}.png"), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
        halves.append({**r, "generated_path": f"half_{i}.png", "generator": "half-size"})
    null = folder / "manifest_null.csv"
    with open(null, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "generated_path": r["source_image"], "generator": "identity"} for r in rows)
        w.writerows(halves)
    run = seg_cli.cwd / "null"
    p = seg_cli("task=segmentation", "mode=consistency", f"ckpt={real_model}", f"data.generated.manifest={null}",
                "task.consistency.bootstrap.samples=50", "trainer.threads=1", f"hydra.run.dir={run}")
    assert p.returncode == 0, p.stderr[-2000:]
    doc = read_json(run / "consistency.json")
    assert sorted(doc["by_generator"]) == ["half-size", "identity"] and doc["source_images"] == len(rows)
    same = [doc["by_generator"]["identity"], *(e for k, e in doc["groups"].items() if k.endswith("/identity"))]
    for entry in same:
        assert entry["miou_generated"] == entry["miou_source"]
        assert entry["drop"] == entry["drop_low"] == entry["drop_high"] == 0.0
        assert entry["rgb"]["mean_abs_diff"] == 0.0 and entry["resized"] == 0
    half = doc["by_generator"]["half-size"]
    assert half["resized"] == len(rows) and half["aspect_changed"] == 0 and half["images"] == len(rows)
    assert doc["all"]["resized"] == len(rows)
    assert f"{len(rows)} generated image(s) differ in size from their label" in (run / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (("task=segmentation", "mode=consistency"), "mode=consistency needs ckpt=PATH"),
    (("task=keypoints", "mode=consistency", "ckpt=CKPT"), "mode=consistency: the keypoints task has no semantic consistency"),
    (("task=segmentation", "mode=consistency", "ckpt=CKPT", "data.generated.manifest=/no/such/manifest.csv"),
     "/no/such/manifest.csv: manifest not found"),
])
def test_bad_input_is_one_line_naming_it(seg_cli, real_model, args, message):
    run = seg_cli.cwd / "bad"
    p = seg_cli(*[a.replace("CKPT", str(real_model)) for a in args], f"hydra.run.dir={run}")
    assert p.returncode == 2, p.stderr[-2000:]
    assert f"vsynth: error: {message}" in p.stderr
    assert read_json(run / "status.json")["state"] == "failed"
    assert not (run / "consistency.json").exists()


@pytest.mark.slow
def test_consistency_falls_as_the_demo_warp_grows(seg_cli):
    """Known answer with a trained model: a real-only model made robust to the demo's style (strong photometric
    augmentation) scores the generated images of worlds that differ only in the warp strength. The source images
    and labels are the same in every world, so their score is identical; the generated images lose consistency
    as the warp grows, and at warp 0 the drop is the style change alone (it stays > 0)."""
    base = seg_cli.cwd / "robust"
    p = seg_cli(*seg_args("trainer.threads=1", f"hydra.run.dir={base}", experiment="seg_consistency"), timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    ckpt = base / "checkpoints" / "best.pt"
    p = seg_cli("-m", "task=segmentation", "mode=consistency", f"ckpt={ckpt}", "trainer.threads=1",
                "task.consistency.bootstrap.samples=200", "data.demo.effects.generated_warp=0,1,4", timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    root = next((seg_cli.cwd / "outputs" / "sweeps").iterdir())
    docs = {_warp(job): read_json(job / "consistency.json")["all"] for job in root.iterdir()
            if (job / "consistency.json").is_file()}
    assert sorted(docs) == [0.0, 1.0, 4.0]
    assert len({d["miou_source"] for d in docs.values()}) == 1  # same model, same sources: the same score
    gen = [docs[w]["miou_generated"] for w in (0.0, 1.0, 4.0)]
    # measured 0.259 / 0.256 / 0.231; warp 1 (2-5 px) is close to warp 0 on a model this small
    assert gen[0] - gen[2] > 0.01 and gen[1] - gen[2] > 0.005 and gen[0] >= gen[1] - 0.005, gen
    assert docs[0.0]["drop"] > 0  # the style change alone costs something
    report = (root / "report.md").read_text()
    assert "## Semantic consistency of the generated images" in report
    for w in ("0", "1", "4"):
        assert f"data.demo.effects.generated_warp={w}" in report


def _warp(job) -> float:
    """The warp strength a sweep job ran with (from its overrides)."""
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    return float(next(o.split("=", 1)[1] for o in overrides if o.startswith("data.demo.effects.generated_warp=")))
