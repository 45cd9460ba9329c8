"""``python -m vsynth.data``: demo world, conversion and checks from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vsynth.data.__main__ import main
from vsynth.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def test_demo_command_writes_requested_tasks_and_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "world"
    assert main(["demo", "--out", str(out), "--images", "4", "--seed", "2", "--size", "128", "96", "--tasks", "detection"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tasks"] == ["detection"] and meta["size"] == [128, 96] and meta["counts"]["real"] == {"train": 4, "val": 1, "test": 2}
    assert not (out / "keypoints").exists()
    assert "wrote" in capsys.readouterr().out
    # a non-empty folder is refused without --overwrite, replaced with it
    assert main(["demo", "--out", str(out), "--images", "2", "--tasks", "detection"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--images", "2", "--tasks", "detection", "--overwrite"]) == 0
    assert json.loads((out / "meta.json").read_text())["counts"]["real"]["train"] == 2


def test_counts_json_and_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    counts = '{"real": {"train": 2}, "generated": {"train": 3}}'
    assert main(["demo", "--out", str(tmp_path / "w"), "--counts", counts, "--tasks", "segmentation"]) == 0
    assert len(list((tmp_path / "w/segmentation/generated/images/train").glob("*.jpg"))) == 3
    assert main(["demo", "--out", str(tmp_path / "w2"), "--counts", '{"generated": {"train": 3}}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: counts.generated.train = 3 needs real train images")


def test_convert_and_check_commands(demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    syn = demo_root / "keypoints/synthetic"
    args = ["convert-coco-pose", "--json", str(syn / "annotations/train.json"), "--images", str(syn / "images/train"),
            "--out", str(tmp_path / "conv"), "--keypoint-map", "0-13", "--box-source", "keypoints", "--box-pad", "0.1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["check", "yolo-pose", str(tmp_path / "conv/data.yaml")]) == 2  # train only, no sigmas
    out, err = capsys.readouterr()
    assert "val: missing (training validates on it" in out and "kpt_oks_sigmas: missing (training needs one per keypoint" in out
    assert err.strip() == f"error: {tmp_path / 'conv/data.yaml'}: not ready for training: val, kpt_oks_sigmas (see above)"
    sigmas = ",".join(["0.05"] * 14)
    assert main([*args[:2], str(syn / "annotations/val.json"), "--images", str(syn / "images/val"), *args[5:],
                 "--split", "val", "--sigmas", sigmas]) == 0
    assert main(["check", "yolo-pose", str(tmp_path / "conv/data.yaml")]) == 0
    assert main(["check", "coco-keypoints", str(syn / "annotations/train.json"), str(syn / "images/train")]) == 0
    seg = demo_root / "segmentation/real"
    assert main(["check", "seg", str(seg / "img_dir/train"), str(seg / "ann_dir/train"), str(seg / "classes.json")]) == 0
    assert main(["check", "manifest", str(demo_root / "segmentation/generated/manifest.csv")]) == 0
    assert capsys.readouterr().out.splitlines().count("ok") == 4
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["check", "coco-detection", str(bad), str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: malformed JSON")


def test_module_entry_point_runs_as_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vsynth.data", "demo", "--out", str(tmp_path / "w"), "--images", "1", "--tasks", "keypoints"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w/keypoints/real/data.yaml").is_file()


def test_check_coco_detection_names_classes_in_the_training_order(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The file lists sign (id 7) before cone (id 3); training orders classes by id, and so does the check."""
    from tests.detection.your_data import CLASSES, make_coco_detection

    root = make_coco_detection(tmp_path / "det", splits={"train": 2})
    assert main(["check", "coco-detection", str(root / "annotations/instances_train.json"), str(root / "images/train")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert CLASSES == ["cone", "sign"]
    assert out == ["2 images, 4 boxes, classes ['cone', 'sign'] (by category id, the training order)", "ok"]


def test_check_coco_detection_treats_bad_boxes_as_training_does(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Training drops degenerate boxes with one warning and refuses a file with none left; the check agrees."""
    import json

    from tasks.detection.data import read_coco_boxes
    from tests.detection.your_data import make_coco_detection

    root = make_coco_detection(tmp_path / "det", splits={"train": 2})
    ann, images = root / "annotations/instances_train.json", root / "images/train"
    doc = json.loads(ann.read_text())
    doc["annotations"][0]["bbox"][2] = -5.0  # a negative width: dropped
    doc["annotations"][1]["bbox"][0] = -3.0  # sticks out on the left: clipped
    ann.write_text(json.dumps(doc))
    assert main(["check", "coco-detection", str(ann), str(images)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"warning: {ann}: dropped 1 degenerate box(es) (zero/negative size or outside the image), "
                      "clipped 1 box(es) to the image; 3 of 4 boxes kept (check)")
    assert out[1].startswith("2 images, 3 boxes,") and out[-1] == "ok"
    assert sum(len(x) for x in read_coco_boxes(images, ann, "data.real.train").labels) == 3  # training keeps the same

    for a in doc["annotations"]:
        a["bbox"][2] = 0.0  # every box of zero size: nothing left
    ann.write_text(json.dumps(doc))
    assert main(["check", "coco-detection", str(ann), str(images)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {ann}: all 4 boxes are degenerate (check); nothing to train or evaluate on"
    with pytest.raises(DataError, match="all 4 boxes are degenerate"):
        read_coco_boxes(images, ann, "data.real.train")
