"""The demo world's YOLO-pose data loads in ultralytics' own YOLODataset (no network, no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vsynth.data.demo import FLIP_IDX_14


@pytest.fixture(scope="module")
def yolo_dataset_cls(tmp_path_factory: pytest.TempPathFactory):
    os.environ["YOLO_OFFLINE"] = "true"
    os.environ["YOLO_CONFIG_DIR"] = str(tmp_path_factory.mktemp("yolo_cfg"))
    from ultralytics.data.dataset import YOLODataset

    return YOLODataset


def _load(cls, images: Path, data_yaml: Path):
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(data_yaml))
    assert data["kpt_shape"] == [14, 3] and data["flip_idx"] == FLIP_IDX_14
    dataset = cls(img_path=str(images), imgsz=160, augment=False, data=data, task="pose", batch_size=2)
    return dataset, data


def test_real_yolo_pose_loads_with_kpt_shape_14x3(demo_root: Path, tmp_path: Path, yolo_dataset_cls) -> None:
    import shutil

    root = tmp_path / "real"  # a copy: ultralytics writes a labels .cache next to the labels
    shutil.copytree(demo_root / "keypoints/real", root)
    (root / "data.yaml").write_text((root / "data.yaml").read_text().replace(str(demo_root / "keypoints/real"), str(root)))
    dataset, data = _load(yolo_dataset_cls, root / "images/train", root / "data.yaml")
    assert len(dataset) == 6
    n_objects = sum(len(lb["cls"]) for lb in dataset.labels)
    assert n_objects > 0
    assert all(lb["keypoints"].shape[1:] == (14, 3) for lb in dataset.labels if len(lb["cls"]))
    item = dataset[0]
    assert item["keypoints"].shape[1:] == (14, 3)


def test_converted_synthetic_loads_too(demo_root: Path, tmp_path: Path, yolo_dataset_cls) -> None:
    from vsynth.data.formats import cached_coco_to_yolo_pose

    result = cached_coco_to_yolo_pose(
        demo_root / "keypoints/synthetic/annotations/train.json",
        demo_root / "keypoints/synthetic/images/train",
        tmp_path / "cache",
        keypoint_map=range(14),
        box_source="keypoints",
        box_pad=0.1,
    )
    # ultralytics wants a val split; point it at the same converted folder for loading only
    text = result.data_yaml.read_text() + "val: images/train\n"
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(text)
    dataset, _ = _load(yolo_dataset_cls, result.images_dir, data_yaml)
    assert len(dataset) == 6 and sum(len(lb["cls"]) for lb in dataset.labels) == result.num_objects
