"""The fast COCO box reader (typed decode + columns) gives exactly what the box-by-box reader gives,
hands anything unusual to it, and a file named by two splits is read once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tasks.detection.data import DetectionData, _read_one_by_one, _read_typed, read_coco_boxes
from vsynth.errors import DataError


def _messy_file(folder: Path, seed: int = 0, n_images: int = 40) -> Path:
    """Degenerate, clipped and outside boxes, missing areas, crowds, empty images, unsorted ids."""
    rng = np.random.default_rng(seed)
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    ids = rng.permutation(np.arange(1000, 1000 + n_images)).tolist()
    images = []
    for image_id in ids:
        name = f"{image_id}.jpg"
        (folder / "imgs" / name).write_bytes(b"")
        images.append({"id": image_id, "file_name": name, "width": int(rng.integers(40, 90)),
                       "height": int(rng.integers(30, 70)), "license": 1})
    anns = []
    for j in range(300):
        image_id = ids[int(rng.integers(0, n_images - 5))]  # the last images have no box
        x, y = rng.uniform(-30, 90, size=2).round(2)
        w, h = rng.choice([0.0, -3.0, 5.5, 20.25, 60.0], size=2)
        ann = {"id": j + 1, "image_id": image_id, "category_id": int(rng.choice([30, 10, 20])),
               "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": int(rng.random() < 0.1),
               "segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]}
        if rng.random() < 0.7:
            ann["area"] = float(rng.uniform(1, 500)) if rng.random() < 0.8 else int(rng.integers(1, 500))
        anns.append(ann)
    cats = [{"id": 30, "name": "truck"}, {"id": 10, "name": "car"}, {"id": 20, "name": "bus"}]
    path = folder / "ann.json"
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": anns, "categories": cats}))
    return path


def _same(a, b) -> None:
    images_a, cats_a, per_a = a
    images_b, cats_b, per_b = b
    assert images_a == images_b and list(images_a) == list(images_b) and cats_a == cats_b
    assert per_a[4:] == per_b[4:]  # total, dropped, clipped
    for arrays_a, arrays_b in zip(per_a[:4], per_b[:4]):
        assert len(arrays_a) == len(arrays_b)
        for x, y in zip(arrays_a, arrays_b):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_reader_equals_the_box_by_box_reader(tmp_path: Path, seed: int) -> None:
    path = _messy_file(tmp_path, seed)
    fast = _read_typed(path, tmp_path / "imgs", True)
    assert fast is not None
    _same(fast, _read_one_by_one(path, tmp_path / "imgs", "k", True))
    assert fast[2][5] > 0 and fast[2][6] > 0  # the file has dropped and clipped boxes


@pytest.mark.parametrize("change", [
    lambda d: d["annotations"][3].update(iscrowd=True),        # a bool where the records want an int
    lambda d: d["annotations"][4].update(bbox=[1, 2, 3]),      # a short box: dropped box by box
    lambda d: d["annotations"][5].pop("bbox"),                 # no box: dropped
    lambda d: d["images"][0].update(width=77.0),               # a float size: int() box by box
    lambda d: d["categories"].append({"id": 40, "name": "van", "extra": [1]}),
])
def test_files_the_typed_records_do_not_fit_read_the_same(tmp_path: Path, change) -> None:
    path = _messy_file(tmp_path)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    s = read_coco_boxes(tmp_path / "imgs", path, "k")
    slow = _read_one_by_one(path, tmp_path / "imgs", "k", True)
    assert s.num_boxes == sum(len(b) for b in slow[2][0]) and s.class_names == [n for _, n in slow[1]]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][7].update(image_id=5), "annotations[7] (id 8) refers to image id 5"),
    (lambda d: d["annotations"][2].update(category_id=99), "annotations[2] (id 3) has category_id 99"),
    (lambda d: d["annotations"][1].update(area=None), "annotations[1] (id 2) has a non-numeric 'area'"),
    (lambda d: d["categories"].append({"id": 10, "name": "car2"}), "categories[3] repeats category id 10"),
    (lambda d: d["images"].append(dict(d["images"][0])), "repeats image id"),
])
def test_bad_entries_are_named_as_before(tmp_path: Path, change, message) -> None:
    path = _messy_file(tmp_path)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as e:
        read_coco_boxes(tmp_path / "imgs", path, "k")
    assert message in str(e.value) and str(path) in str(e.value)


def test_a_missing_image_file_is_named(tmp_path: Path) -> None:
    path = _messy_file(tmp_path)
    next((tmp_path / "imgs").iterdir()).unlink()
    with pytest.raises(DataError, match=r"listed but not found in"):
        read_coco_boxes(tmp_path / "imgs", path, "k")
    assert read_coco_boxes(tmp_path / "imgs", path, "k", check_images=False).num_boxes > 0


def test_a_file_two_splits_share_is_read_once(tmp_path: Path, caplog) -> None:
    path = _messy_file(tmp_path)
    entry = {"coco": str(path), "images": str(tmp_path / "imgs")}
    data = DetectionData({"demo": {"enabled": False}, "real": {"val": entry, "test": dict(entry)}}, tmp_path)
    with caplog.at_level("INFO", logger="vsynth.detection"):
        assert data.get("real", "val") is data.get("real", "test")
    assert "data.real.test: the same file and images as data.real.val" in caplog.text
