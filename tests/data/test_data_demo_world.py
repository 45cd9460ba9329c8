"""The demo world: determinism, flip consistency of the keypoint schema, domain gap, caching."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from vsynth.data.demo import FLIP_IDX_24, KEYPOINT_NAMES_24, demo_key, ensure_demo
from vsynth.data.demo.domains import STYLES, real_keypoints
from vsynth.data.demo.render import render_scene
from vsynth.data.demo.scene import KEYPOINT_KINDS, mirror_scene, sample_scene
from vsynth.data.demo.world import render_sample
from vsynth.data.demo.writer import normalize_counts
from vsynth.data.formats import flip_keypoints, read_coco_keypoints, read_manifest, read_yolo_pose
from vsynth.errors import ConfigError


def test_samples_are_deterministic_per_seed_and_address() -> None:
    a = render_sample("keypoints", "real", 3, "train", 5, (160, 120))
    b = render_sample("keypoints", "real", 3, "train", 5, (160, 120))
    c = render_sample("keypoints", "real", 4, "train", 5, (160, 120))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    assert np.array_equal(a.objects[0].keypoints, b.objects[0].keypoints)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_mirrored_scene_renders_flipped_image_with_flip_idx_labels(seed: int) -> None:
    """Mirroring the world must equal flipping the image and applying FLIP_IDX_24 to the labels."""
    width, height = 320, 240
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, STYLES["synthetic"], (width, height), KEYPOINT_KINDS, (1, 3))
    plain, mirrored = render_scene(scene), render_scene(mirror_scene(scene))

    diff = np.abs(mirrored.image.astype(int) - plain.image[:, ::-1].astype(int))
    assert diff.mean() < 2.0
    assert (mirrored.semantic == plain.semantic[:, ::-1]).mean() > 0.99

    compared = agree = 0
    for obj, mobj in zip(plain.objects, mirrored.objects):
        expected = flip_keypoints(obj.keypoints, width, FLIP_IDX_24)
        both = (expected[:, 2] > 0) & (mobj.keypoints[:, 2] > 0)
        np.testing.assert_allclose(mobj.keypoints[both, :2], expected[both, :2], atol=1e-6)
        compared += len(expected)
        agree += int((expected[:, 2] == mobj.keypoints[:, 2]).sum())
        np.testing.assert_allclose(mobj.bbox, [width - obj.bbox[2], obj.bbox[1], width - obj.bbox[0], obj.bbox[3]], atol=1e-6)
    assert agree / compared > 0.95  # visibility may differ only by pixel rounding at occluders


def test_left_keypoints_are_on_the_vehicles_own_left() -> None:
    """A car heading away from the camera (yaw 90 deg) shows its left side on the image left."""
    from dataclasses import replace

    from vsynth.data.demo.scene import ObjectSpec, sample_object_params
    from vsynth.data.demo.models import build_model

    rng = np.random.default_rng(0)
    scene = sample_scene(rng, STYLES["synthetic"], (320, 240), {"car": 1.0}, (1, 1))
    params = sample_object_params("car", rng, STYLES["synthetic"])
    car = ObjectSpec("car", 0.0, scene.camera.ground_y_for_depth(12.0), np.pi / 2, params, build_model("car", params))
    kpts = render_scene(replace(scene, objects=(car,))).objects[0].keypoints
    name = {n: i for i, n in enumerate(KEYPOINT_NAMES_24)}
    assert kpts[name["rear_left_light"], 0] < kpts[name["rear_right_light"], 0]
    assert kpts[name["rear_left_light"], 2] == 2 and kpts[name["front_left_light"], 2] == 1


def test_synthetic_labels_are_complete_and_inside_their_boxes(demo_root: Path) -> None:
    ds = read_coco_keypoints(demo_root / "keypoints/synthetic/annotations/train.json", demo_root / "keypoints/synthetic/images/train", 24)
    assert ds.annotations and ds.flip_idx == FLIP_IDX_24
    labelled = np.concatenate([a.keypoints[:, 2] > 0 for a in ds.annotations])
    assert labelled.mean() > 0.8  # every point inside the image is labelled (occluded ones with v=1)
    for ann in ds.annotations:
        x, y, w, h = ann.bbox_xywh
        pts = ann.keypoints[ann.keypoints[:, 2] > 0]
        assert (pts[:, 0] >= x - 1).all() and (pts[:, 0] <= x + w + 1).all()
        assert (pts[:, 1] >= y - 1).all() and (pts[:, 1] <= y + h + 1).all()


def test_real_labels_have_14_points_with_gaps(demo_root: Path) -> None:
    ds = read_yolo_pose(demo_root / "keypoints/real/data.yaml", "train")
    kpts = np.concatenate([a.keypoints for a in ds.annotations])
    assert ds.num_keypoints == 14 and ds.annotations
    assert 0.02 < (kpts[:, 2] == 0).mean() < 0.9  # some points missing, most present


def test_real_keypoint_degradation_jitters_and_drops() -> None:
    rng = np.random.default_rng(0)
    exact = np.zeros((24, 3))
    exact[:, 0], exact[:, 1], exact[:, 2] = np.linspace(40, 120, 24), 60.0, 2.0
    noisy = np.stack([real_keypoints(exact, (100.0, 60.0), (160, 120), rng) for _ in range(200)])
    assert noisy.shape == (200, 14, 3)
    kept = noisy[..., 2] > 0
    shift = np.linalg.norm(noisy[..., :2] - exact[None, :14, :2], axis=-1)[kept]
    assert 0.04 < 1 - kept.mean() < 0.15
    assert 0.5 < shift.mean() < 4.0


def test_domains_differ_like_their_real_counterparts(demo_root: Path) -> None:
    def stats(folder: Path) -> tuple[float, float, float]:
        images = [cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))]
        sat = np.mean([cv2.cvtColor(im, cv2.COLOR_BGR2HSV)[..., 1].mean() for im in images])
        return float(np.mean([im.mean() for im in images])), float(np.mean([im.std() for im in images])), float(sat)

    real = stats(demo_root / "segmentation/real/img_dir/train")
    generated = stats(demo_root / "segmentation/generated/images/train")
    synthetic = stats(demo_root / "segmentation/synthetic/img_dir/train")
    assert generated[0] > real[0] + 20  # brighter
    assert generated[1] < 0.75 * real[1]  # washed out: lower contrast
    assert synthetic[2] > 1.5 * real[2]  # saturated game palette


def test_generated_images_are_shifted_against_their_reused_labels(demo_root: Path) -> None:
    shifts = []
    for row in read_manifest(demo_root / "segmentation/generated/manifest.csv"):
        gen = cv2.imread(str(row.generated_path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        src = cv2.imread(str(row.source_image), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(src, gen)
        shifts.append(np.hypot(dx, dy))
        assert row.label_path.name == row.source_image.with_suffix(".png").name
    assert np.median(shifts) > 1.5


def test_layout_and_meta(demo_root: Path) -> None:
    meta = json.loads((demo_root / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["size"] == [160, 120] and meta["keypoints"]["flip_idx_14"] == FLIP_IDX_24[:14]
    for rel in [
        "keypoints/real/images/test", "keypoints/real/labels/val", "keypoints/synthetic/annotations/val.json",
        "keypoints/generated/manifest.csv", "keypoints/generated/labels/train",
        "detection/real/frames/train", "detection/real/annotations/instances_test.json",
        "detection/synthetic/renders/val", "detection/generated/annotations/instances_train.json",
        "segmentation/real/ann_dir_sidewalk/train", "segmentation/synthetic/classes_sidewalk.json",
        "segmentation/generated/manifest_sidewalk.csv",
    ]:
        assert (demo_root / rel).exists(), rel
    assert len(list((demo_root / "keypoints/real/images/train").glob("*.jpg"))) == 6
    assert len(list((demo_root / "detection/generated/images/train").glob("*.jpg"))) == 8


def test_counts_are_validated() -> None:
    with pytest.raises(ConfigError, match="counts.generated.train = 5 needs real train images"):
        normalize_counts({"generated": {"train": 5}})
    with pytest.raises(ConfigError, match="unknown domain 'fake'"):
        normalize_counts({"fake": {"train": 1}})
    with pytest.raises(ConfigError, match="non-negative integer"):
        normalize_counts({"real": {"train": -1}})


def test_ensure_demo_generates_once_and_survives_a_race(tmp_path: Path) -> None:
    counts = {"real": {"train": 2, "val": 1}, "synthetic": {"train": 2}, "generated": {"train": 2}}
    roots: list[Path] = []
    threads = [threading.Thread(target=lambda: roots.append(ensure_demo("keypoints", tmp_path, 1, counts, (128, 96)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(roots) == 2 and roots[0] == roots[1]
    root = roots[0]
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert ensure_demo("keypoints", tmp_path, 1, counts, (128, 96)) == root
    assert (root / "meta.json").stat().st_mtime_ns == stamp  # reused, not regenerated
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no temp folders left behind
    assert str(root) in (root / "keypoints/real/data.yaml").read_text()  # absolute path of the final folder
    assert demo_key("keypoints", 2, counts, (128, 96)) != demo_key("keypoints", 1, counts, (128, 96))
