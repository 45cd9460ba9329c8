"""Bad segmentation data ends with one line naming the file, exit code 2 and a run folder marked failed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2

from tests.segmentation.conftest import read_json, seg_args


def _run(seg_cli, data: Path, *extra: str):
    run = seg_cli.cwd / "run"
    p = seg_cli(*seg_args("data=seg_folders", f"data.real.root={data / 'real'}",
                          f"data.generated.manifest={data / 'generated' / 'manifest.csv'}", "data.ratio=0.5",
                          f"hydra.run.dir={run}", *extra))
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error:")]
    assert len(errors) == 1, p.stderr
    status = read_json(run / "status.json")
    assert status["state"] == "failed" and status["error"] in errors[0]
    return errors[0]


def _manifest_rows(data: Path) -> list[dict]:
    return list(csv.DictReader(open(data / "generated" / "manifest.csv")))


def test_generated_image_and_label_sizes_differ(seg_cli, data_copy):
    row = _manifest_rows(data_copy)[3]
    gen = data_copy / "generated" / row["generated_path"]
    cv2.imwrite(str(gen), cv2.resize(cv2.imread(str(gen)), (80, 64)))
    err = _run(seg_cli, data_copy)
    assert str(gen) in err and "manifest.csv line 5" in err and "80x64" in err and "96x64" in err


def test_manifest_points_to_a_missing_file(seg_cli, data_copy):
    row = _manifest_rows(data_copy)[2]
    (data_copy / "generated" / row["generated_path"]).unlink()
    err = _run(seg_cli, data_copy)
    assert "manifest.csv" in err and row["generated_path"] in err and "does not exist" in err


def test_label_value_outside_the_class_list(seg_cli, data_copy):
    label = sorted((data_copy / "real" / "ann_dir" / "train").glob("*.png"))[5]
    mask = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    mask[10:12, 10:12] = 9
    cv2.imwrite(str(label), mask)
    err = _run(seg_cli, data_copy)
    assert str(label) in err and "[9]" in err and "ignore 255" in err


def test_real_and_generated_class_lists_differ(seg_cli, data_copy):
    doc = json.loads((data_copy / "real" / "classes.json").read_text())
    doc["classes"][4] = "car"
    other = data_copy / "generated" / "classes.json"
    other.write_text(json.dumps(doc))
    err = _run(seg_cli, data_copy, f"data.generated.classes={other}")
    assert "class names differ" in err and "'car'" in err and "'vehicle'" in err


def test_generated_image_made_from_a_test_image(seg_cli, data_copy):
    manifest = data_copy / "generated" / "manifest.csv"
    text = manifest.read_text().splitlines()
    test_img = sorted((data_copy / "real" / "img_dir" / "test").glob("*.jpg"))[0]
    parts = text[1].split(",")
    parts[1] = str(test_img)
    text[1] = ",".join(parts)
    manifest.write_text("\n".join(text) + "\n")
    err = _run(seg_cli, data_copy)
    assert str(test_img) in err and "'test' split" in err


def test_class_weight_naming_an_unknown_class(seg_cli, data_copy):
    err = _run(seg_cli, data_copy, "task.loss.class_weight={sidewalk: 10.0, lane: 2.0}")
    assert "task.loss.class_weight" in err and "lane" in err
