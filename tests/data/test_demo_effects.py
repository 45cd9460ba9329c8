"""Injected known effects of the demo world: off by default (nothing changes), on when set, named when wrong."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vsynth.data.demo import KEYPOINT_NAMES_24, NO_EFFECTS, demo_key, effects_from_config, ensure_demo
from vsynth.data.demo.effects import generated_warp_matrix, shift_keypoints
from vsynth.data.demo.world import render_sample, sample_rng, stylize_sample
from vsynth.errors import ConfigError

COUNTS = {"real": {"train": 4, "test": 2}, "synthetic": {"train": 3}}
WHEELS = {"keypoint_shift": {"keypoints": ["front_left_wheel", "front_right_wheel"], "offset": [0.0, 0.1]}}


def test_defaults_inject_nothing_and_keep_the_cache_key() -> None:
    for section in (None, {}, {"generated_warp": 1.0},
                    {"keypoint_shift": {"keypoints": [], "offset": [0.0, 0.0]}, "generated_warp": 1.0},
                    {"keypoint_shift": {"keypoints": ["front_left_wheel"], "offset": [0.0, 0.0]}}):
        assert effects_from_config(section) == NO_EFFECTS
        assert effects_from_config(section).cache_params() == {}
    # the key of a world without effects is the one it had before effects existed
    assert demo_key("keypoints", 0, COUNTS, (160, 120)) == \
        "db867a6cb3db3797736c5d6247787ac3a6f67f6cb45ed3f05475e1d9e5412f9a"
    assert demo_key("keypoints", 0, COUNTS, (160, 120), effects_from_config({"generated_warp": 1.0})) == \
        demo_key("keypoints", 0, COUNTS, (160, 120))
    shifted = effects_from_config(WHEELS)
    assert demo_key("keypoints", 0, COUNTS, (160, 120), shifted) != demo_key("keypoints", 0, COUNTS, (160, 120))
    warped = effects_from_config({"generated_warp": 5})
    assert demo_key("segmentation", 0, COUNTS, (160, 120), warped) != demo_key("segmentation", 0, COUNTS, (160, 120))


def test_bad_effects_name_their_key() -> None:
    cases = [
        ({"keypoint_shfit": {}}, "data.demo.effects.keypoint_shfit: unknown effect"),
        ({"keypoint_shift": {"keypoints": ["wheel"], "offset": [0, 0.1]}}, "'wheel' is not a synthetic keypoint"),
        ({"keypoint_shift": {"keypoints": [30], "offset": [0, 0.1]}}, "30 is not a synthetic keypoint"),
        ({"keypoint_shift": {"keypoints": [0], "offset": [0.1]}}, "data.demo.effects.keypoint_shift.offset"),
        ({"keypoint_shift": {"keypoints": [0, "front_left_wheel"], "offset": [0, 0.1]}}, "listed twice"),
        ({"keypoint_shift": {"points": [0]}}, "keypoint_shift.points: unknown key"),
        ({"generated_warp": -1}, "data.demo.effects.generated_warp: expected a strength >= 0"),
        ({"generated_warp": "strong"}, "data.demo.effects.generated_warp: expected a number"),
    ]
    for section, message in cases:
        with pytest.raises(ConfigError, match=message):
            effects_from_config(section)


def test_effects_a_world_cannot_carry_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keypoint_shift: the segmentation demo has no keypoint labels"):
        ensure_demo("segmentation", tmp_path, 0, COUNTS, (128, 96), effects=effects_from_config(WHEELS))
    with pytest.raises(ConfigError, match="generated_warp=3: this keypoints demo world has no generated images"):
        ensure_demo("keypoints", tmp_path, 0, COUNTS, (128, 96), effects=effects_from_config({"generated_warp": 3}))
    assert not any(tmp_path.iterdir())


def test_shift_moves_exactly_the_chosen_labelled_points() -> None:
    shift = effects_from_config({"keypoint_shift": {"keypoints": [0, "rear_left_wheel"], "offset": [0.05, -0.1]}})
    kpts = np.array([[50.0, 60.0, 2], [70.0, 60.0, 2], [30.0, 40.0, 1], [0.0, 0.0, 0], [5.0, 5.0, 2]])
    moved = shift_keypoints(kpts, 400.0, shift.keypoint_shift, (100, 80))  # scale sqrt(400) = 20 px
    assert moved[0].tolist() == [51.0, 58.0, 2.0]
    assert moved[2].tolist() == [31.0, 38.0, 1.0]  # hidden but labelled points move too
    assert moved[1].tolist() == kpts[1].tolist() and moved[3].tolist() == [0, 0, 0]
    out = shift_keypoints(np.array([[50.0, 1.0, 2]]), 400.0, shift.keypoint_shift, (100, 80))
    assert out.tolist() == [[0.0, 0.0, 0.0]]  # moved outside the image: unlabelled


def test_shift_of_all_keypoints() -> None:
    every = effects_from_config({"keypoint_shift": {"keypoints": "all", "offset": [0.0, 0.25]}})
    assert every.keypoint_shift.indices == tuple(range(len(KEYPOINT_NAMES_24)))
    assert every.cache_params()["keypoint_shift"]["keypoints"] == KEYPOINT_NAMES_24
    plain = render_sample("keypoints", "synthetic", 0, "train", 0, (160, 120))
    moved = render_sample("keypoints", "synthetic", 0, "train", 0, (160, 120), every)
    for a, b in zip(plain.objects, moved.objects):
        both = (a.keypoints[:, 2] > 0) & (b.keypoints[:, 2] > 0)
        assert both.any() and np.allclose(b.keypoints[both, 1] - a.keypoints[both, 1], 0.25 * math.sqrt(a.area))
    with pytest.raises(ConfigError, match=r"keypoint_shift.keypoints: expected a list .* \(or 'all'\), got 'most'"):
        effects_from_config({"keypoint_shift": {"keypoints": "most", "offset": [0, 0.1]}})


def test_shift_in_rendered_synthetic_samples() -> None:
    shift = effects_from_config(WHEELS)
    size = (160, 120)
    for index in range(6):
        plain = render_sample("keypoints", "synthetic", 0, "train", index, size)
        moved = render_sample("keypoints", "synthetic", 0, "train", index, size, shift)
        assert np.array_equal(plain.image, moved.image)  # labels move, pixels do not
        for a, b in zip(plain.objects, moved.objects):
            expected = shift_keypoints(a.keypoints, a.area, shift.keypoint_shift, size)
            assert np.allclose(b.keypoints, expected)
            others = [i for i in range(len(KEYPOINT_NAMES_24)) if i not in (0, 1)]
            assert np.array_equal(a.keypoints[others], b.keypoints[others])
            for i in (0, 1):
                if a.keypoints[i, 2] > 0 and b.keypoints[i, 2] > 0:
                    assert b.keypoints[i, 1] - a.keypoints[i, 1] == pytest.approx(0.1 * math.sqrt(a.area))
        real = render_sample("keypoints", "real", 0, "train", index, size, shift)  # real labels are untouched
        assert all(np.array_equal(o.keypoints, p.keypoints) for o, p in
                   zip(real.objects, render_sample("keypoints", "real", 0, "train", index, size).objects))


def _iou(a: np.ndarray, b: np.ndarray, classes: range) -> float:
    ious = [np.logical_and(a == c, b == c).sum() / np.logical_or(a == c, b == c).sum()
            for c in classes if np.logical_or(a == c, b == c).any()]
    return float(np.mean(ious))


def test_warp_strength_moves_generated_images_away_from_their_labels() -> None:
    """Generated images reuse the source label: its overlap (mIoU) with the label map warped like the image
    falls as the warp grows; 0 is an exact identity, 1 is the demo's usual warp."""
    size = (320, 240)  # the demo's frame size
    labels = [render_sample("segmentation", "real", 0, "train", index, size).semantic for index in range(8)]
    strengths = [0.0, 1.0, 4.0, 12.0]
    means = []
    for strength in strengths:
        ious = []
        for index, label in enumerate(labels):
            m = generated_warp_matrix(np.random.default_rng(index), size, strength)
            warped = cv2.warpAffine(label, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
            ious.append(_iou(label, warped, range(6)))
        means.append(float(np.mean(ious)))
    assert means[0] == 1.0
    assert means[0] > means[1] > means[2] > means[3]
    assert means[1] > 0.7 and means[3] < 0.35  # measured 0.78 (the usual demo) and 0.27 (label-breaking)

    # the knob reaches the generated images; the default is the unchanged stylization
    source = render_sample("segmentation", "real", 0, "train", 0, size).image
    default = stylize_sample(source, "segmentation", 0, "train", 0, "fog")
    assert np.array_equal(default, stylize_sample(source, "segmentation", 0, "train", 0, "fog", NO_EFFECTS))
    strong = stylize_sample(source, "segmentation", 0, "train", 0, "fog", effects_from_config({"generated_warp": 8}))
    assert np.abs(strong.astype(int) - default.astype(int)).mean() > 5
    # the warp draws do not depend on the strength: strength 1 is the default warp matrix
    assert np.array_equal(generated_warp_matrix(sample_rng(0, "segmentation", "generated", "train", 0), size),
                          generated_warp_matrix(sample_rng(0, "segmentation", "generated", "train", 0), size, 1.0))


def test_world_with_effects_records_them(tmp_path: Path) -> None:
    shift = effects_from_config(WHEELS)
    root = ensure_demo("keypoints", tmp_path, 0, COUNTS, (128, 96), effects=shift)
    plain = ensure_demo("keypoints", tmp_path, 0, COUNTS, (128, 96))
    assert root != plain
    meta = json.loads((root / "meta.json").read_text())
    assert meta["effects"]["injected"] is True
    assert meta["effects"]["keypoint_shift"] == {"keypoints": ["front_left_wheel", "front_right_wheel"],
                                                 "offset": [0.0, 0.1]}
    assert "effects" not in json.loads((plain / "meta.json").read_text())
    a = json.loads((root / "keypoints/synthetic/annotations/train.json").read_text())["annotations"]
    b = json.loads((plain / "keypoints/synthetic/annotations/train.json").read_text())["annotations"]
    moved = [np.subtract(x["keypoints"], y["keypoints"]).reshape(-1, 3) for x, y in zip(a, b)]
    assert any(np.abs(m[:2, 1]).max() > 0 for m in moved) and all(np.abs(m[2:]).max() == 0 for m in moved)


def test_demo_command_injects_effects(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vsynth.data.__main__ import main

    effects = '{"keypoint_shift": {"keypoints": ["front_left_wheel"], "offset": [0, 0.1]}, "generated_warp": 3}'
    assert main(["demo", "--out", str(tmp_path / "w"), "--images", "2", "--tasks", "keypoints", "--size", "128", "96",
                 "--effects", effects]) == 0
    meta = json.loads((tmp_path / "w" / "meta.json").read_text())
    assert meta["effects"]["generated_warp"] == 3.0 and meta["effects"]["keypoint_shift"]["offset"] == [0.0, 0.1]
    capsys.readouterr()
    for bad, message in (('{"warp": 3}', "error: --effects.warp: unknown effect"),
                         ('{"keypoint_shift": {"keypoints": [0], "offset": [0, 1]}}',
                          "error: --effects.keypoint_shift: the segmentation demo has no keypoint labels"),
                         ("{", "error: --effects is not valid JSON")):
        assert main(["demo", "--out", str(tmp_path / "x"), "--images", "2", "--tasks", "segmentation",
                     "--effects", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message)
    assert not (tmp_path / "x").exists()
