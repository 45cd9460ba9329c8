"""Sources and splits: conversion, the real subset, each arm's data composition, bad data (in-process)."""

from pathlib import Path

import pytest

from tasks.keypoints.data import KeypointData, read_data_yaml
from vsynth.data.arms import arm_items, build_sampler, build_sources, draw_subset
from vsynth.errors import ConfigError, DataError

from tests.keypoints.conftest import compose


class _Run:
    def __init__(self, d: Path):
        self.dir = d
        self.is_main = True
        self.rank, self.world_size = 0, 1

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    @property
    def samples(self):
        return self.dir / "samples"


def _task(cfg, tmp_path):
    from tasks.keypoints.task import KeypointsTask

    return KeypointsTask(cfg, _Run(tmp_path))


def _composition(cfg, sources):
    return build_sampler(cfg, dict(sources), _Run(Path("."))).describe()


@pytest.mark.parametrize(
    "arm, expected_sources, composition",
    [
        ("A", {"real": 4, "synthetic": 12}, "real 4 x8 = 32 + synthetic 12 x1 = 12; 44 samples"),
        ("B", {"real": 4}, "real 4 x8 = 32; 32 samples"),
        ("base", {"real": 16}, "real 16 x1 = 16; 16 samples"),
        ("synth_only", {"synthetic": 12}, "synthetic 12 x1 = 12; 12 samples"),
    ],
)
def test_arm_data_composition(kp_cache, tmp_path, arm, expected_sources, composition):
    cfg = compose(f"arm={arm}", cache=kp_cache)
    task = _task(cfg, tmp_path)
    sources = build_sources(cfg, task, _Run(tmp_path))
    task.write_source_samples(sources, None)
    assert {k: len(v) for k, v in sources.items()} == expected_sources
    assert composition in _composition(cfg, sources)
    assert (tmp_path / "samples" / f"train_{next(iter(expected_sources))}.png").is_file()
    # validation and test data: real frames, except the in-domain check of synth_only
    val = task._eval_set("val")["path"]
    assert ("converted" in val) == (arm == "synth_only")


def test_real_subset_is_the_same_for_every_arm_and_seed(kp_cache, tmp_path):
    lists = []
    for arm, seed in (("A", 0), ("B", 0), ("B", 3)):
        cfg = compose(f"arm={arm}", f"seed={seed}", cache=kp_cache)
        d = KeypointData(cfg, kp_cache, tmp_path / f"{arm}{seed}")
        run = _Run(tmp_path / f"{arm}{seed}")
        drawn = arm_items(cfg, "real", d.train_items("real"), run)
        assert (run.dir / "data" / "real_train_subset4.txt").read_text().splitlines() == drawn
        lists.append(Path(d.train_path("real", drawn)).read_text())
    assert lists[0] == lists[1] == lists[2] and len(lists[0].splitlines()) == 4
    cfg = compose("arm=B", "data.subset_seed=1", cache=kp_cache)
    d = KeypointData(cfg, kp_cache, tmp_path / "s1")
    other = Path(d.train_path("real", arm_items(cfg, "real", d.train_items("real")))).read_text()
    assert other != lists[0]


def test_seeded_draw_is_order_independent():
    files = [f"/x/{i:03d}.jpg" for i in range(50)]
    assert draw_subset(files, 10, 0) == draw_subset(list(reversed(files)), 10, 0)
    assert len(set(draw_subset(files, 10, 0))) == 10


def test_synthetic_is_converted_once_with_the_keypoint_map(kp_cache, tmp_path, caplog):
    cfg = compose("arm=A", cache=kp_cache)
    first = KeypointData(cfg, kp_cache, tmp_path / "a").synthetic()
    root = Path(first.splits["train"]).parents[1]  # the cached conversion: lists/train.txt (hold-out split)
    label = next(root.joinpath("labels").rglob("*.txt"))
    row = next(ln for ln in label.read_text().splitlines() if ln.strip())
    assert len(row.split()) == 5 + 14 * 3  # 24 synthetic points mapped onto the 14 real ones
    assert first.flip_idx[:4] == [1, 0, 3, 2]  # the synthetic flip map, restricted by the map
    marker = root / "conversion.json"
    mtime = marker.stat().st_mtime_ns
    with caplog.at_level("INFO", logger="vsynth.keypoints"):
        again = KeypointData(cfg, kp_cache, tmp_path / "b").synthetic()
    assert again.splits["train"] == first.splits["train"] and marker.stat().st_mtime_ns == mtime
    assert any("reusing the conversion" in r.message for r in caplog.records)
    # a map that swaps left and right is refused by the points' sides
    cfg2 = compose("arm=A", "data.synthetic.keypoint_map=[1,0,2,3,4,5,6,7,8,9,10,11,12,13]", cache=kp_cache)
    with pytest.raises(DataError, match="real point 0 'front_left_wheel' \\(left\\) receives synthetic point "
                                        "'front_right_wheel' \\(right\\)"):
        KeypointData(cfg2, kp_cache, tmp_path / "c").schema(["real", "synthetic"])


def test_keypoint_count_mismatch_after_the_map(kp_cache, tmp_path):
    cfg = compose("arm=A", "data.synthetic.keypoint_map=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]", cache=kp_cache)
    with pytest.raises(DataError, match=r"different keypoint counts after the map \(real=14, synthetic=16\)"):
        KeypointData(cfg, kp_cache, tmp_path).schema(["real", "synthetic"])


def test_keypoint_map_dropping_a_flip_partner(kp_cache, tmp_path):
    cfg = compose("arm=synth_only", "data.synthetic.keypoint_map=[0,2,4,6,8,9,11,13]", cache=kp_cache)
    with pytest.raises(ConfigError, match="left/right partner"):
        KeypointData(cfg, kp_cache, tmp_path).synthetic()


def test_subset_larger_than_split(kp_cache, tmp_path):
    cfg = compose("arm=B", "data.real_subset=17", cache=kp_cache)
    with pytest.raises(ConfigError, match=r"data.real_subset=17 is larger than the 16 images"):
        arm_items(cfg, "real", KeypointData(cfg, kp_cache, tmp_path).train_items("real"))


def test_data_yaml_with_relative_paths_and_no_absolute_root(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    y = tmp_path / "data.yaml"
    y.write_text("train: images/train\nval: images/val\nkpt_shape: [14, 3]\nnames: {0: vehicle}\n")
    with pytest.raises(DataError, match="relative path and 'path:' is missing"):
        read_data_yaml(y)
    y.write_text("path: some/where\ntrain: images/train\nval: images/val\nkpt_shape: [14, 3]\nnames: {0: vehicle}\n")
    with pytest.raises(DataError, match="relative"):
        read_data_yaml(y)
    y.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nkpt_shape: [14, 3]\nnames: {{0: vehicle}}\n")
    with pytest.raises(DataError, match="does not exist"):  # absolute root, missing val folder
        read_data_yaml(y)


def test_label_caches_stay_out_of_the_data_folders(kp_cache, tmp_path):
    cfg = compose("arm=B", cache=kp_cache)
    task = _task(cfg, tmp_path)
    build_sources(cfg, task, _Run(tmp_path))
    task._eval_set("val")
    real_root = Path(task.data.real().splits["train"]).parents[1]
    assert not list((real_root / "labels").glob("*.cache"))  # ultralytics would write labels/train.cache here
    assert len(list((kp_cache / "labels").glob("*.cache"))) >= 2  # subset list and val split, one file each
