"""Flip-map validation: the guard against the identity-flip_idx bug that cost users 28 pp."""

from __future__ import annotations

import numpy as np
import pytest

from vsynth.data.demo import FLIP_IDX_14, FLIP_IDX_24, KEYPOINT_NAMES_14, KEYPOINT_NAMES_24
from vsynth.data.formats import flip_keypoints, keypoint_side, validate_flip_idx
from vsynth.errors import ConfigError


def test_correct_14_point_map_returns_its_pairs() -> None:
    pairs = validate_flip_idx(FLIP_IDX_14, 14, KEYPOINT_NAMES_14)
    assert pairs == [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12)]


def test_correct_24_point_map_passes_with_names() -> None:
    pairs = validate_flip_idx(FLIP_IDX_24, 24, KEYPOINT_NAMES_24)
    assert (14, 15) in pairs and (20, 21) in pairs and len(pairs) == 10


def test_identity_map_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="flip_idx is the identity map"):
        validate_flip_idx(list(range(14)), 14)
    assert validate_flip_idx(list(range(5)), 5, ["a", "b", "c", "d", "e"], allow_identity=True) == []


def test_identity_map_with_left_right_names_names_the_point() -> None:
    with pytest.raises(ConfigError, match=r"flip_idx\[0\] = 0 maps 'front_left_wheel'.*expected 1 \('front_right_wheel'\)"):
        validate_flip_idx(list(range(14)), 14, KEYPOINT_NAMES_14)


def test_non_involution_is_refused() -> None:
    with pytest.raises(ConfigError, match="not its own inverse"):
        validate_flip_idx([1, 2, 0], 3)


def test_wrong_length_is_refused() -> None:
    with pytest.raises(ConfigError, match="flip_idx has 13 entries, expected 14"):
        validate_flip_idx(FLIP_IDX_14[:13], 14)


def test_not_a_permutation_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a permutation"):
        validate_flip_idx([1, 1, 2], 3)
    with pytest.raises(ConfigError, match="out of range"):
        validate_flip_idx([1, 0, 7], 3)


def test_swap_of_unrelated_pairs_is_refused_by_names() -> None:
    bad = list(FLIP_IDX_14)
    bad[0], bad[1], bad[2], bad[3] = 3, 2, 1, 0  # front-left wheel <-> rear-right wheel
    with pytest.raises(ConfigError, match="left/right points must swap"):
        validate_flip_idx(bad, 14, KEYPOINT_NAMES_14)


def test_side_parsing_variants() -> None:
    assert keypoint_side("front_left_wheel") == ("left", "front_*_wheel")
    assert keypoint_side("wheel_R")[0] == "right"
    assert keypoint_side("leftEye") == ("left", "*_eye")
    assert keypoint_side("l_ear")[0] == "left"
    assert keypoint_side("roof_center") == (None, "roof_center")
    assert keypoint_side("headlight")[0] is None  # no whole-word side token


def test_flip_keypoints_mirrors_and_reorders() -> None:
    kpts = np.array([[10.0, 5.0, 2.0], [30.0, 6.0, 1.0], [0.0, 0.0, 0.0]])
    out = flip_keypoints(kpts, 100, [1, 0, 2])
    np.testing.assert_allclose(out, [[70.0, 6.0, 1.0], [90.0, 5.0, 2.0], [0.0, 0.0, 0.0]])


def test_flip_map_from_names() -> None:
    from vsynth.data.formats import flip_idx_from_names

    coco17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle"]
    assert flip_idx_from_names(coco17) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert flip_idx_from_names(KEYPOINT_NAMES_14) == FLIP_IDX_14
    assert flip_idx_from_names(KEYPOINT_NAMES_24) == FLIP_IDX_24
    assert flip_idx_from_names(["L_eye", "R_eye", "chin"]) == [1, 0, 2]
    # names that do not determine a map: no pairs, a point without its partner, a side given twice
    assert flip_idx_from_names(["kp0", "kp1"]) is None
    assert flip_idx_from_names(["left_eye", "nose"]) is None
    assert flip_idx_from_names(["L_eye", "R_eye", "leftEye"]) is None
