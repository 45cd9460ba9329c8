"""COCO keypoints -> YOLO-pose conversion: point maps, box sources, visibility, caching."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vsynth.data.demo import FLIP_IDX_14, KEYPOINT_NAMES_14
from vsynth.data.formats import (
    cached_coco_to_yolo_pose,
    coco_keypoints_to_yolo_pose,
    keypoint_box,
    read_coco_keypoints,
    read_yolo_pose,
    read_yolo_pose_yaml,
    yolo_pose_to_coco_keypoints,
)
from vsynth.errors import ConfigError, DataError


@pytest.fixture()
def synthetic(demo_root: Path) -> tuple[Path, Path]:
    return demo_root / "keypoints/synthetic/annotations/train.json", demo_root / "keypoints/synthetic/images/train"


def test_first_14_of_24_points_with_annotation_boxes(synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    src_json, images = synthetic
    result = coco_keypoints_to_yolo_pose(src_json, images, tmp_path / "out", keypoint_map=range(14))
    spec = read_yolo_pose_yaml(result.data_yaml)
    assert spec.kpt_shape == (14, 3) and spec.flip_idx == FLIP_IDX_14 and spec.kpt_names == KEYPOINT_NAMES_14
    assert result.flip_idx == FLIP_IDX_14 and result.num_images == 6
    src = read_coco_keypoints(src_json, images)
    out = read_yolo_pose(result.data_yaml, "train")
    assert len(out.annotations) == len(src.annotations) == result.num_objects
    assert all((result.images_dir / im.file_name).is_symlink() for im in src.images)
    for a, b in zip(src.annotations, out.annotations):
        kept = a.keypoints[:14]
        inside = (kept[:, 2] > 0) & (kept[:, 0] <= 160) & (kept[:, 1] <= 120)
        np.testing.assert_allclose(b.keypoints[inside], kept[inside], atol=0.01)
        assert (b.keypoints[~inside] == 0).all()  # unlabelled -> 0 0 0
        x, y, w, h = a.bbox_xywh
        np.testing.assert_allclose(b.bbox_xywh, (x, y, min(w, 160 - x), min(h, 120 - y)), atol=0.01)


def test_keypoint_boxes_with_padding_and_binary_visibility(synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    src_json, images = synthetic
    result = coco_keypoints_to_yolo_pose(
        src_json, images, tmp_path / "out", keypoint_map=range(14), box_source="keypoints", box_pad=0.1, visibility="binary", link_images="copy"
    )
    label_rows = [row.split() for f in sorted(result.labels_dir.glob("*.txt")) for row in f.read_text().splitlines()]
    assert {r[7] for r in label_rows} <= {"0", "1"} and any(r[7] == "1" for r in label_rows)
    out = read_yolo_pose(result.data_yaml, "train")
    src = read_coco_keypoints(src_json, images)
    for a, b in zip(src.annotations, out.annotations):
        expected = keypoint_box(a.keypoints[:14], 0.1, 160, 120)
        np.testing.assert_allclose(b.bbox_xywh, expected, atol=0.01)
    assert not any(p.is_symlink() for p in result.images_dir.iterdir())


def test_keypoint_box_padding() -> None:
    kpts = np.array([[10.0, 10.0, 2.0], [30.0, 20.0, 1.0], [99.0, 99.0, 0.0]])
    assert keypoint_box(kpts, 0.0, 100, 100) == (10.0, 10.0, 20.0, 10.0)
    assert keypoint_box(kpts, 0.5, 100, 100) == (0.0, 5.0, 40.0, 20.0)
    assert keypoint_box(np.zeros((3, 3)), 0.1, 100, 100) is None


def test_map_that_drops_a_flip_partner_is_refused(synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    src_json, images = synthetic
    with pytest.raises(ConfigError, match="drops its flip partner 1"):
        coco_keypoints_to_yolo_pose(src_json, images, tmp_path / "out", keypoint_map=[0, 2, 3])
    with pytest.raises(ConfigError, match="flip_idx is the identity map|left/right points must swap"):
        coco_keypoints_to_yolo_pose(src_json, images, tmp_path / "out", keypoint_map=range(14), flip_idx=list(range(14)))
    with pytest.raises(ConfigError, match="box_source must be one of"):
        coco_keypoints_to_yolo_pose(src_json, images, tmp_path / "out", box_source="mask")


def test_cache_converts_once_and_rekeys_on_change(synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    src_json, images = synthetic
    local_json = tmp_path / "src" / "train.json"
    local_json.parent.mkdir()
    local_json.write_text(src_json.read_text())
    cache = tmp_path / "cache"
    first = cached_coco_to_yolo_pose(local_json, images, cache, keypoint_map=range(14), box_source="keypoints", box_pad=0.05)
    stamp = (first.out_dir / "conversion.json").stat().st_mtime_ns
    again = cached_coco_to_yolo_pose(local_json, images, cache, keypoint_map=range(14), box_source="keypoints", box_pad=0.05)
    assert again == first and (first.out_dir / "conversion.json").stat().st_mtime_ns == stamp
    assert str(first.out_dir) in first.data_yaml.read_text()  # YAML points at the final cache folder
    assert read_yolo_pose(first.data_yaml, "train").num_keypoints == 14
    other = cached_coco_to_yolo_pose(local_json, images, cache, keypoint_map=range(14), box_source="annotation")
    assert other.out_dir != first.out_dir
    doc = json.loads(local_json.read_text())
    doc["annotations"] = doc["annotations"][:1]
    local_json.write_text(json.dumps(doc))
    os.utime(local_json, ns=(stamp + 10**9, stamp + 10**9))
    changed = cached_coco_to_yolo_pose(local_json, images, cache, keypoint_map=range(14), box_source="keypoints", box_pad=0.05)
    assert changed.out_dir != first.out_dir and changed.num_objects == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp")]


def test_yolo_pose_to_coco_for_evaluation(demo_root: Path, tmp_path: Path) -> None:
    out = yolo_pose_to_coco_keypoints(demo_root / "keypoints/real/data.yaml", "val", tmp_path / "gt" / "val.json")
    ds = read_coco_keypoints(out, demo_root / "keypoints/real/images/val", expected_num_keypoints=14)
    assert ds.flip_idx == FLIP_IDX_14 and ds.category_ids == [1] and ds.annotations
    for ann in ds.annotations:
        assert ann.area == pytest.approx(ann.bbox_xywh[2] * ann.bbox_xywh[3] * 0.53, rel=1e-3)
    from pycocotools.coco import COCO

    coco = COCO(str(out))
    assert len(coco.getImgIds()) == 2 and coco.loadCats(1)[0]["keypoints"] == KEYPOINT_NAMES_14


def test_yolo_pose_yaml_relative_root_resolves_or_refuses(tmp_path):
    """Files vsynth wrote resolve against their folder; training refuses (ultralytics' datasets_dir differs)."""
    y = tmp_path / "data.yaml"
    y.write_text("train: images/train\nval: images/val\nkpt_shape: [14, 3]\nnames: {0: vehicle}\n")
    assert read_yolo_pose_yaml(y).splits["train"] == tmp_path / "images" / "train"
    with pytest.raises(DataError, match="'train: images/train' is a relative path and 'path:' is missing"):
        read_yolo_pose_yaml(y, relative_root="refuse")
    y.write_text(f"path: {tmp_path}\ntrain: images/train\nkpt_shape: [14, 3]\nnames: {{0: vehicle}}\n")
    assert read_yolo_pose_yaml(y, relative_root="refuse").splits["train"] == tmp_path / "images" / "train"
