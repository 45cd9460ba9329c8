"""Readers read back exactly what the writers write."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vsynth.data.formats import (
    BoxAnnotation,
    DetectionDataset,
    GeneratedRow,
    ImageRecord,
    KeypointAnnotation,
    KeypointDataset,
    data_yaml_doc,
    read_classes_json,
    read_coco_detection,
    read_coco_keypoints,
    read_manifest,
    read_mask,
    read_seg_folders,
    read_yolo_pose,
    write_classes_json,
    write_coco_detection,
    write_coco_keypoints,
    write_manifest,
    write_mask,
    write_yolo_data_yaml,
    write_yolo_pose_labels,
)


def _images(folder: Path, n: int, size: tuple[int, int] = (64, 48)) -> list[ImageRecord]:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        path = folder / f"im_{i}.jpg"
        cv2.imwrite(str(path), np.full((size[1], size[0], 3), 40 * i, np.uint8))
        records.append(ImageRecord(path=path, width=size[0], height=size[1], id=i + 1, file_name=path.name))
    return records


def _keypoint_dataset(images: list[ImageRecord], k: int = 4) -> KeypointDataset:
    rng = np.random.default_rng(0)
    anns = []
    for im in images:
        kpts = np.zeros((k, 3))
        kpts[:, 0] = rng.uniform(5, 55, k).round(2)
        kpts[:, 1] = rng.uniform(5, 40, k).round(2)
        kpts[:, 2] = [2, 1, 0, 2][:k]
        kpts[kpts[:, 2] == 0, :2] = 0
        anns.append(KeypointAnnotation(im.id, 3, (4.0, 3.0, 50.0, 40.0), kpts, 2000.0, 0, len(anns) + 1))
    return KeypointDataset(
        images, anns, ["vehicle"], [3], ["a_left", "a_right", "mid", "tip"], flip_idx=[1, 0, 2, 3], skeleton=[(0, 1), (1, 2)]
    )


def test_coco_keypoints_roundtrip(tmp_path: Path) -> None:
    ds = _keypoint_dataset(_images(tmp_path / "imgs", 3))
    write_coco_keypoints(ds, tmp_path / "ann" / "kp.json")
    back = read_coco_keypoints(tmp_path / "ann" / "kp.json", tmp_path / "imgs", expected_num_keypoints=4)
    assert back.keypoint_names == ds.keypoint_names and back.flip_idx == ds.flip_idx and back.skeleton == ds.skeleton
    assert back.class_names == ["vehicle"] and back.category_ids == [3]
    assert [im.file_name for im in back.images] == [im.file_name for im in ds.images]
    for a, b in zip(ds.annotations, back.annotations):
        np.testing.assert_allclose(a.keypoints, b.keypoints)
        assert a.bbox_xywh == b.bbox_xywh and a.area == b.area and a.image_id == b.image_id


def test_yolo_pose_roundtrip(tmp_path: Path) -> None:
    root = tmp_path / "yolo"
    images = _images(root / "images" / "train", 3)
    ds = _keypoint_dataset(images)
    rows = write_yolo_pose_labels(ds, root / "labels" / "train")
    assert rows == 3
    doc = data_yaml_doc(root, {"train": "images/train"}, ["vehicle"], (4, 3), [1, 0, 2, 3], ds.keypoint_names, [0.1] * 4)
    write_yolo_data_yaml(root / "data.yaml", doc)
    back = read_yolo_pose(root / "data.yaml", "train")
    assert back.keypoint_names == ds.keypoint_names and back.flip_idx == [1, 0, 2, 3]
    assert len(back.annotations) == 3
    for a, b in zip(ds.annotations, back.annotations):
        np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
        np.testing.assert_allclose(b.bbox_xywh, a.bbox_xywh, atol=1e-3)


def test_coco_detection_roundtrip_with_any_folder_name(tmp_path: Path) -> None:
    images = _images(tmp_path / "CAM_FRONT", 2)
    anns = [BoxAnnotation(1, 5, (1.0, 2.0, 10.5, 20.25), 212.6, 0, 1), BoxAnnotation(2, 7, (3.0, 4.0, 5.0, 6.0), 30.0, 1, 2)]
    ds = DetectionDataset(images, anns, ["truck", "bus"], [5, 7])
    write_coco_detection(ds, tmp_path / "labels.json")
    back = read_coco_detection(tmp_path / "CAM_FRONT", tmp_path / "labels.json")
    assert back.class_names == ["truck", "bus"] and back.category_ids == [5, 7]
    assert [(a.image_id, a.category_id, a.bbox_xywh, a.area, a.iscrowd) for a in back.annotations] == [
        (a.image_id, a.category_id, a.bbox_xywh, a.area, a.iscrowd) for a in anns
    ]


def test_seg_folders_and_classes_roundtrip(tmp_path: Path) -> None:
    _images(tmp_path / "img_dir", 2)
    (tmp_path / "ann_dir").mkdir()
    masks = [np.random.default_rng(i).integers(0, 3, (48, 64)).astype(np.uint8) for i in range(2)]
    masks[0][0, :5] = 255
    for i, mask in enumerate(masks):
        write_mask(tmp_path / "ann_dir" / f"im_{i}.png", mask)
    write_classes_json(tmp_path / "classes.json", ["bg", "road", "sidewalk"], [(0, 0, 0), (1, 2, 3), (4, 5, 6)])
    ds = read_seg_folders(tmp_path / "img_dir", tmp_path / "ann_dir", tmp_path / "classes.json")
    assert ds.class_names == ["bg", "road", "sidewalk"] and ds.palette[1] == (1, 2, 3) and ds.ignore_index == 255
    for sample, mask in zip(ds.samples, masks):
        assert np.array_equal(read_mask(sample.label, 3), mask)
    assert read_classes_json(tmp_path / "classes.json")[0] == ["bg", "road", "sidewalk"]


def test_manifest_roundtrip_keeps_paths_relative(tmp_path: Path) -> None:
    files = [tmp_path / "real" / "a.jpg", tmp_path / "real" / "a.png", tmp_path / "gen" / "images" / "g.jpg"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    row = GeneratedRow(files[2], files[0], files[1], "fog", "stargan_v2")
    write_manifest([row], tmp_path / "gen" / "manifest.csv")
    text = (tmp_path / "gen" / "manifest.csv").read_text()
    assert "../real/a.jpg" in text and str(tmp_path) not in text
    assert read_manifest(tmp_path / "gen" / "manifest.csv") == [row]


def test_demo_world_reads_back_in_every_format(demo_root: Path) -> None:
    det = read_coco_detection(demo_root / "detection/real/frames/val", demo_root / "detection/real/annotations/instances_val.json")
    assert len(det.images) == 2 and det.class_names[0] == "car"
    gen = read_coco_detection(demo_root / "detection/generated/images/train", demo_root / "detection/generated/annotations/instances_train.json")
    assert len(gen.images) == 8 and gen.annotations
    seg = read_seg_folders(demo_root / "segmentation/real/img_dir/train", demo_root / "segmentation/real/ann_dir/train", demo_root / "segmentation/real/classes.json")
    for s in seg.samples:
        read_mask(s.label, len(seg.class_names), seg.ignore_index)
    side = read_seg_folders(
        demo_root / "segmentation/real/img_dir/train",
        demo_root / "segmentation/real/ann_dir_sidewalk/train",
        demo_root / "segmentation/real/classes_sidewalk.json",
    )
    assert side.class_names == ["background", "sidewalk"]
    assert set(np.unique(read_mask(side.samples[0].label, 2))) <= {0, 1, 255}
    rows = read_manifest(demo_root / "keypoints/generated/manifest.csv")
    assert len(rows) == 8 and all(r.label_path.suffix == ".txt" for r in rows)
    assert len({r.condition for r in rows}) == 5  # one pass over 6 sources already uses every condition
