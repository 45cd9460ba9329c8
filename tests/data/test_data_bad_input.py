"""Bad input fails with one DataError line that names the file and the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vsynth.data.formats import (
    check_same_classes,
    coco_keypoints_to_yolo_pose,
    read_coco_detection,
    read_coco_keypoints,
    read_manifest,
    read_mask,
    read_seg_folders,
    read_yolo_pose,
)
from vsynth.errors import DataError


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_malformed_json_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [}')
    with pytest.raises(DataError) as exc:
        read_coco_detection(tmp_path, bad)
    assert _one_line(exc).startswith(f"{bad}: malformed JSON at line 1 column")


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.json: file not found"):
        read_coco_keypoints(tmp_path / "nope.json", tmp_path)


def test_missing_images_are_named(demo_root: Path, tmp_path: Path) -> None:
    src = demo_root / "keypoints/synthetic"
    root = _copy_tree(src, tmp_path / "syn")
    victim = sorted((root / "images/train").glob("*.jpg"))[2]
    victim.unlink()
    with pytest.raises(DataError) as exc:
        read_coco_keypoints(root / "annotations/train.json", root / "images/train")
    assert f"image '{victim.name}' listed but not found in {root / 'images/train'}" in _one_line(exc)


def test_yolo_label_row_with_wrong_value_count(demo_root: Path, tmp_path: Path) -> None:
    root = _copy_tree(demo_root / "keypoints/real", tmp_path / "real")
    yaml_text = (root / "data.yaml").read_text().replace(str(demo_root / "keypoints/real"), str(root))
    (root / "data.yaml").write_text(yaml_text)
    label = sorted((root / "labels/train").glob("*.txt"))[0]
    rows = label.read_text().splitlines()
    rows.append(" ".join(rows[0].split()[:-3]))  # drop one keypoint: 44 values
    label.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as exc:
        read_yolo_pose(root / "data.yaml", "train")
    assert _one_line(exc) == f"{label}: line {len(rows)} has 44 values, expected 5 + 14*3 = 47 for kpt_shape [14, 3]"


def test_keypoint_count_not_matching_the_schema(demo_root: Path, tmp_path: Path) -> None:
    src = demo_root / "keypoints/synthetic/annotations/train.json"
    doc = json.loads(src.read_text())
    doc["annotations"][1]["keypoints"] = doc["annotations"][1]["keypoints"][: 14 * 3]
    bad = tmp_path / "train.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataError) as exc:
        read_coco_keypoints(bad, demo_root / "keypoints/synthetic/images/train")
    assert "annotations[1]" in _one_line(exc) and "has 42 keypoint values, expected 3*24 = 72 for category 'vehicle'" in str(exc.value)
    with pytest.raises(DataError, match="declares 24 keypoints, expected 14"):
        read_coco_keypoints(src, demo_root / "keypoints/synthetic/images/train", expected_num_keypoints=14)


def test_unknown_image_and_category_references(demo_root: Path, tmp_path: Path) -> None:
    src = demo_root / "detection/real/annotations/instances_train.json"
    doc = json.loads(src.read_text())
    doc["annotations"][0]["category_id"] = 99
    bad = tmp_path / "instances.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"annotations\[0\] \(id 1\) has category_id 99, not in 'categories'"):
        read_coco_detection(demo_root / "detection/real/frames/train", bad)


def test_mixing_sources_with_different_classes() -> None:
    assert check_same_classes({"real": ["car", "bus"], "synthetic": ["car", "bus"]}) == ["car", "bus"]
    with pytest.raises(DataError) as exc:
        check_same_classes({"real": ["car", "bus"], "synthetic": ["car", "truck"]})
    assert _one_line(exc) == "class names differ between sources 'real' and 'synthetic' ('real' only: ['bus'], 'synthetic' only: ['truck'])"
    with pytest.raises(DataError, match="same names in another order"):
        check_same_classes({"real": ["car", "bus"], "generated": ["bus", "car"]})


def test_manifest_row_with_missing_file(demo_root: Path, tmp_path: Path) -> None:
    gen = _copy_tree(demo_root / "segmentation", tmp_path / "seg")
    victim = sorted((gen / "real/ann_dir/train").glob("*.png"))[0]
    victim.unlink()
    with pytest.raises(DataError) as exc:
        read_manifest(gen / "generated/manifest.csv")
    assert _one_line(exc) == f"{gen / 'generated/manifest.csv'}: line 2 label_path '../real/ann_dir/train/{victim.name}' does not exist"


def test_manifest_without_required_columns(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.csv"
    bad.write_text("image,label\na.jpg,a.png\n")
    with pytest.raises(DataError, match="missing column"):
        read_manifest(bad)


def test_segmentation_mask_missing_or_with_bad_values(demo_root: Path, tmp_path: Path) -> None:
    root = _copy_tree(demo_root / "segmentation/real", tmp_path / "real")
    mask = sorted((root / "ann_dir/train").glob("*.png"))[0]
    with pytest.raises(DataError, match="neither classes 0..0 nor ignore 255"):
        read_mask(mask, num_classes=1)
    mask.unlink()
    with pytest.raises(DataError) as exc:
        read_seg_folders(root / "img_dir/train", root / "ann_dir/train", root / "classes.json")
    assert _one_line(exc).startswith(f"{mask}: mask missing for image")


def test_converter_never_writes_into_the_source(demo_root: Path) -> None:
    images = demo_root / "keypoints/synthetic/images/train"
    before = sorted(p.name for p in images.iterdir())
    for out in (images, images / "out", demo_root / "keypoints/synthetic/annotations", demo_root / "keypoints"):
        with pytest.raises(DataError, match="output folder overlaps the source"):
            coco_keypoints_to_yolo_pose(demo_root / "keypoints/synthetic/annotations/train.json", images, out)
    assert sorted(p.name for p in images.iterdir()) == before
