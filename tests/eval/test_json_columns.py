"""Column-wise JSON reading (simdjson) gives what json.load gives, or steps aside (None)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsynth.eval.detection import DetectionEvaluator
from vsynth.eval.json_columns import ABSENT, load_document, record_columns
from vsynth.eval.keypoints import KeypointEvaluator

from .coco_synth import make_coco

RECORDS = [
    {"image_id": 1, "category_id": 2, "score": 0.5, "keypoints": [1, 2.5, 1e-3, 4, 5, 6], "extra": {"a": [1]}},
    {"category_id": 3, "image_id": 12345678901, "score": 1, "keypoints": [0, 0, 0, -1.5, 2e300, 6.25], "area": 3},
]
SCALARS = {"image_id": ..., "category_id": ..., "score": ..., "area": ABSENT}


def _from_file(tmp_path: Path, records: object) -> object:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(records) if not isinstance(records, str) else records)
    return load_document(path)


def test_simdjson_columns_equal_the_python_ones(tmp_path: Path) -> None:
    fast = record_columns(_from_file(tmp_path, RECORDS), SCALARS, {"keypoints": 6})
    slow = record_columns(json.loads(json.dumps(RECORDS)), SCALARS, {"keypoints": 6})
    assert fast is not None and slow is not None
    for key in SCALARS:
        assert fast[key] == slow[key] and [type(v) for v in fast[key]] == [type(v) for v in slow[key]]
    assert fast["area"] == [ABSENT, 3]
    assert fast["keypoints"].dtype == np.float64 and np.array_equal(fast["keypoints"], slow["keypoints"])


@pytest.mark.parametrize("change", [
    lambda r: r[1].pop("score"),                                 # a missing key
    lambda r: r[0].update(keypoints=[[1, 2, 3], [4, 5, 6]]),     # nested (simdjson would flatten it)
    lambda r: r[0].update(keypoints=[1, 2, 3, 4, 5]),            # another length
    lambda r: r.append([1, 2]),                                  # a record that is no object
])
def test_records_that_do_not_fit_step_aside(tmp_path: Path, change) -> None:
    records = json.loads(json.dumps(RECORDS))
    change(records)
    assert record_columns(_from_file(tmp_path, records), SCALARS, {"keypoints": 6}) is None
    assert record_columns(records, SCALARS, {"keypoints": 6}) is None


@pytest.mark.parametrize("value", ["6", True])
def test_what_simdjson_cannot_buffer_is_read_the_python_way(tmp_path: Path, value: object) -> None:
    records = json.loads(json.dumps(RECORDS))
    records[0]["keypoints"][5] = value  # numpy reads numeric text and booleans, as the evaluator always did
    fast = record_columns(_from_file(tmp_path, records), SCALARS, {"keypoints": 6})
    assert fast is not None and fast["keypoints"][0, 5] == float(value)
    assert np.array_equal(fast["keypoints"], record_columns(records, SCALARS, {"keypoints": 6})["keypoints"])


@pytest.mark.parametrize("text", ["[1, NaN]", "[1, 2", "", '{"a": Infinity}'])
def test_files_simdjson_refuses_go_to_the_stdlib(tmp_path: Path, text: str) -> None:
    assert _from_file(tmp_path, text) is None
    assert load_document(tmp_path / "missing.json") is None


def test_evaluators_read_files_exactly_as_loaded_json(tmp_path: Path) -> None:
    for keypoints, cls in ((True, KeypointEvaluator), (False, DetectionEvaluator)):
        gt, results = make_coco(5, n_images=60, keypoints=keypoints)
        if keypoints:
            gt["categories"][0]["kpt_oks_sigmas"] = [0.05, 0.06, 0.07, 0.08, 0.09]
        gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
        gt_path.write_text(json.dumps(gt))
        pred_path.write_text(json.dumps(results))
        from_files = cls.from_coco_files(gt_path, pred_path).compute()
        from_memory = cls.from_coco_files(json.loads(gt_path.read_text()), json.loads(pred_path.read_text())).compute()
        assert json.dumps(from_files) == json.dumps(from_memory)
