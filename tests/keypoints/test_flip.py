"""The flip-map guard: unit checks of check_flip and the same mistakes given through config."""

from types import SimpleNamespace

import pytest

from tasks.keypoints.data import Schema
from tasks.keypoints.flip import check_flip
from vsynth.data.demo.schema import FLIP_IDX_14, KEYPOINT_NAMES_14, KPT_OKS_SIGMAS_14
from vsynth.errors import ConfigError

from tests.keypoints.conftest import status

IDENTITY = list(range(14))
FLIPS_ON = SimpleNamespace(fliplr=0.5, flipud=0.0)
FLIPS_OFF = SimpleNamespace(fliplr=0.0, flipud=0.0)


def schema(flip, names=KEYPOINT_NAMES_14):
    return Schema(k=14, names=list(names) if names else None, flip_idx=flip, sigmas=KPT_OKS_SIGMAS_14, origin="test")


def test_correct_14_point_map_passes_and_lists_pairs_by_name():
    lines = check_flip(schema(FLIP_IDX_14), FLIPS_ON)
    text = "\n".join(lines)
    assert "6 left/right pairs" in text
    assert "flip pair 0 <-> 1: front_left_wheel <-> front_right_wheel" in text
    assert "flip pair 11 <-> 12: rear_left_roof <-> rear_right_roof" in text
    assert "8 rear_center" in text and "13 front_center" in text


def test_identity_map_with_flips_on_is_refused():
    with pytest.raises(ConfigError, match="identity") as e:
        check_flip(schema(IDENTITY, names=None), FLIPS_ON)
    assert "data.keypoints.flip_idx" in str(e.value) and "allow_symmetric_flip" in str(e.value)


def test_identity_map_with_named_sides_is_refused_even_with_opt_out():
    # names say left/right: an identity map is wrong whatever the opt-out says
    with pytest.raises(ConfigError, match="left/right points must swap"):
        check_flip(schema(IDENTITY), FLIPS_ON, allow_symmetric=True)


def test_identity_map_accepted_for_a_symmetric_schema_with_opt_out():
    names = [f"p{i}" for i in range(14)]
    lines = check_flip(schema(IDENTITY, names=names), FLIPS_ON, allow_symmetric=True)
    assert any("allow_symmetric_flip=true" in ln for ln in lines)


def test_non_involution_is_refused():
    bad = [1, 2, 0, 3, 5, 4, 7, 6, 8, 10, 9, 12, 11, 13]  # 0->1->2->0: a permutation, not its own inverse
    with pytest.raises(ConfigError, match="own inverse"):
        check_flip(schema(bad, names=None), FLIPS_ON)


def test_wrong_length_is_refused():
    with pytest.raises(ConfigError, match="13 entries, expected 14"):
        check_flip(schema(FLIP_IDX_14[:13]), FLIPS_ON)


def test_swapping_the_wrong_partners_is_refused_by_name():
    bad = [2, 3, 0, 1, 5, 4, 7, 6, 8, 10, 9, 12, 11, 13]  # front wheels swapped with rear wheels
    with pytest.raises(ConfigError, match="front_left_wheel"):
        check_flip(schema(bad), FLIPS_ON)


def test_missing_map_with_flips_on_is_refused_and_flips_off_is_fine():
    with pytest.raises(ConfigError, match="fliplr"):
        check_flip(schema(None), FLIPS_ON)
    assert "off" in check_flip(schema(None), FLIPS_OFF)[0]


# ---- the same mistakes through config: one line, exit 2, run folder failed ----------------------

@pytest.mark.parametrize(
    "flip, message",
    [
        ("[0,1,2,3,4,5,6,7,8,9,10,11,12,13]", "left/right points must swap"),
        ("[1,0,3,2,5,4,7,6,8,10,9,12,11]", "13 entries, expected 14"),
        ("[1,2,0,3,5,4,7,6,8,10,9,12,11,13]", "own inverse"),
    ],
)
def test_bad_flip_idx_through_config_fails_the_run(kp_cli, flip, message):
    p, rd = kp_cli("arm=B", f"data.keypoints.flip_idx={flip}")
    assert p.returncode == 2, p.stderr[-2000:]
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error:")]
    assert len(err) == 1 and "data.keypoints.flip_idx" in err[0] and message in err[0], p.stderr
    st = status(rd)
    assert st["state"] == "failed" and message in st["error"]
    assert not (rd / "checkpoints" / "last.pt").exists()  # refused before training


def test_identity_flip_without_names_through_config_names_the_opt_out(kp_cli):
    p, rd = kp_cli("arm=B", "data.keypoints.flip_idx=[0,1,2,3,4,5,6,7,8,9,10,11,12,13]",
                   "data.keypoints.names=[p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,p10,p11,p12,p13]")
    assert p.returncode == 2
    assert "identity" in p.stderr and "allow_symmetric_flip" in p.stderr


def test_flips_off_never_stops_the_run_but_reports_a_bad_map():
    assert "2 left/right" not in "\n".join(check_flip(schema(IDENTITY, names=None), FLIPS_OFF))
    lines = check_flip(schema([1, 2, 0] + list(range(3, 14)), names=None), FLIPS_OFF)
    assert lines[0].startswith("WARNING") and "unused" in lines[0]
