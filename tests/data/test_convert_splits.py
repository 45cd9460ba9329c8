"""``convert-coco-pose`` per split into one folder: one data YAML with every split and everything
training reads; a second run with another schema, or a split converted twice, is refused
without touching what is there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.keypoints.your_data import FLIP_IDX, KEYPOINT_NAMES, SIGMAS, make_coco_pose
from vsynth.data.__main__ import main
from vsynth.data.formats import read_yolo_pose, read_yolo_pose_yaml

SIGMA_ARG = ",".join(str(s) for s in SIGMAS)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_pose(tmp_path_factory.mktemp("src") / "people")


def _convert(source: Path, out: Path, split: str, *extra: str) -> int:
    return main(["convert-coco-pose", "--json", str(source / f"annotations/{split}.json"),
                 "--images", str(source / "images" / split), "--out", str(out), "--split", split, *extra])


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_three_splits_make_one_yaml_that_is_ready(source: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "yolo"
    assert _convert(source, out, "train", "--sigmas", SIGMA_ARG) == 0
    text = capsys.readouterr().out
    assert f"flip_idx {FLIP_IDX} from the keypoint names: left_eye <-> right_eye, left_ear <-> right_ear," in text
    assert "still missing: val: missing" in text  # train alone does not train
    assert _convert(source, out, "val") == 0  # the YAML already holds the sigmas: not needed again
    assert _convert(source, out, "test") == 0
    assert "ready for training" in capsys.readouterr().out.splitlines()[-1]
    spec = read_yolo_pose_yaml(out / "data.yaml", relative_root="refuse")
    assert sorted(spec.splits) == ["test", "train", "val"]
    assert spec.names == ["person"] and spec.kpt_names == KEYPOINT_NAMES and spec.kpt_shape == (17, 3)
    assert spec.kpt_oks_sigmas == SIGMAS and spec.flip_idx == FLIP_IDX
    assert [len(read_yolo_pose(out / "data.yaml", s).images) for s in ("train", "val", "test")] == [8, 4, 4]
    assert main(["check", "yolo-pose", str(out / "data.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ok"


def test_schema_from_the_category_and_from_options(tmp_path: Path) -> None:
    with_sigmas = make_coco_pose(tmp_path / "src", sigmas=SIGMAS)
    out = tmp_path / "a"
    assert _convert(with_sigmas, out, "train", "--keypoint-map", "2,1,0") == 0  # sigmas follow the map
    spec = read_yolo_pose_yaml(out / "data.yaml")
    assert spec.kpt_oks_sigmas == [SIGMAS[2], SIGMAS[1], SIGMAS[0]] and spec.flip_idx == [1, 0, 2]
    assert spec.kpt_names == ["right_eye", "left_eye", "nose"]
    out = tmp_path / "b"
    names = "snout,eye_l,eye_r,paw_l,paw_r"
    assert _convert(with_sigmas, out, "train", "--keypoint-map", "0,1,2,9,10", "--names", "dog", "--kpt-names", names,
                    "--sigmas", "1,2,3,4,5", "--flip-idx", "0,2,1,4,3") == 0
    spec = read_yolo_pose_yaml(out / "data.yaml")
    assert spec.names == ["dog"] and spec.kpt_names == names.split(",") and spec.kpt_oks_sigmas == [1, 2, 3, 4, 5]
    assert spec.flip_idx == [0, 2, 1, 4, 3]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--sigmas", "0.1,0.1"], "kpt_oks_sigmas: kpt_oks_sigmas must be 17 positive numbers"),
        (["--keypoint-map", "0-2", "--sigmas", "0.1,0.1,-1"], "kpt_oks_sigmas must be 3 positive numbers"),
        (["--kpt-names", "a,b"], "kpt_names: 2 names given for 17 keypoints"),
        (["--names", "a,b"], "class_names: 2 names given for 1 categories"),
        (["--keypoint-map", "0-2", "--flip-idx", "0,1,2"], "flip_idx[1] = 1 maps 'left_eye' onto 'left_eye'"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(source: Path, tmp_path: Path, capsys, options, message) -> None:
    assert _convert(source, tmp_path / "out", "train", *options) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_other_schema_or_a_split_twice_is_refused_and_nothing_changes(source: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "yolo"
    assert _convert(source, out, "train", "--sigmas", SIGMA_ARG) == 0
    before = (out / "data.yaml").read_bytes()
    labels = sorted((out / "labels/train").iterdir())
    assert _convert(source, out, "val", "--sigmas", ",".join(["0.05"] * 17)) == 2
    line = _one_error_line(capsys)
    assert f"{out / 'data.yaml'}: 'kpt_oks_sigmas' is {SIGMAS} there but [0.05, 0.05," in line
    assert _convert(source, out, "val", "--names", "human") == 2
    assert "'names' is ['person'] there but ['human']" in _one_error_line(capsys)
    assert _convert(source, out, "val", "--keypoint-map", "0,2,1") == 2
    assert "'kpt_shape' is [17, 3] there but [3, 3]" in _one_error_line(capsys)
    assert not (out / "images/val").exists() and (out / "data.yaml").read_bytes() == before
    assert _convert(source, out, "train") == 2
    assert "already lists the 'train' split (images/train); pass --overwrite" in _one_error_line(capsys)
    assert (out / "data.yaml").read_bytes() == before and sorted((out / "labels/train").iterdir()) == labels
    (out / "labels/train/stale.txt").write_text("")
    assert _convert(source, out, "train", "--overwrite") == 0  # replaced: the stale label is gone
    assert sorted((out / "labels/train").iterdir()) == labels
    assert yaml.safe_load((out / "data.yaml").read_text())["kpt_oks_sigmas"] == SIGMAS


def test_check_names_each_missing_key(source: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "yolo"
    assert _convert(source, out, "train", "--kpt-names", ",".join(f"p{i}" for i in range(17))) == 0
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert "flip_idx" not in doc  # p0..p16 have no sides to pair
    del doc["path"], doc["kpt_names"]
    (out / "data.yaml").write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["check", "yolo-pose", str(out / "data.yaml")]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "train: 8 images, 8 objects, kpt_shape [17, 3]"
    assert [ln.split(":")[0] for ln in lines[1:]] == ["path", "val", "kpt_oks_sigmas", "flip_idx", "note", "note"]
    assert "kpt_oks_sigmas: missing (training needs one per keypoint" in lines[3]
    assert lines[-1].startswith("note: kpt_names: missing (optional")
    assert captured.err == (
        f"error: {out / 'data.yaml'}: not ready for training: path, val, kpt_oks_sigmas, flip_idx (see above)\n")
