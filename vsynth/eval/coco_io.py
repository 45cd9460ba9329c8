"""Load and validate COCO ground-truth and COCO results-format JSON for the evaluators.

Every problem becomes one :class:`~vsynth.errors.DataError` line ``<file>: <entry>: <problem>``
(for example ``preds.json: entry 17 (image_id 4): 'keypoints' has 51 values, expected 3 * 14 = 42``)
instead of an assertion deep inside pycocotools. Results files are parsed with a vectorised
fast path; only when it fails are entries checked one by one to name the first bad one.

Deliberate differences from pycocotools' loaders: an empty results file is valid (every metric
0 where there is ground truth), and results for image or category ids absent from the ground
truth are an error (pycocotools asserts on the former and silently drops the latter).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsynth.eval.json_columns import ABSENT, as_python, is_array, load_document, record_columns
from vsynth.errors import ConfigError, DataError
from vsynth.eval.arrays import check_sigmas

Source = str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass
class CocoGroundTruth:
    """A validated COCO ground-truth file as flat arrays (see :class:`InstanceBlock` ``gt``)."""

    path: str
    image_ids: np.ndarray  # (I,) int64, file order; ``arrays['image']`` indexes into it
    categories: dict[int, str]
    arrays: dict[str, np.ndarray]
    num_keypoints: int = 0
    keypoint_names: list[str] | None = None
    sigmas: np.ndarray | None = None  # from the categories' kpt_oks_sigmas / sigmas, if present
    missing_area: str | None = None  # first annotation without 'area' left unfilled (OKS needs one)
    areas_from_box: int = 0  # annotations without 'area' given box w*h*area_from_box


def read_json(source: Source, what: str, python_keys: Sequence[str] | None = None) -> tuple[Any, str]:
    """(parsed JSON, name for messages); ``source`` may already be parsed (dict / list).

    With ``python_keys`` a file is parsed by simdjson (`vsynth.eval.json_columns.load_document`):
    a top-level object's other keys, and a top-level array, stay simdjson arrays for
    `record_columns`. A file simdjson refuses is read by the stdlib, which names the problem.
    """
    if not isinstance(source, (str, Path)):
        return source, f"<{what} in memory>"
    path = str(source)
    if python_keys is not None:
        doc = load_document(path, python_keys)
        if doc is not None:
            return doc, path
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), path
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_numbers(value: Any, length: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == length
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def _list_field(data: Any, key: str, path: str) -> Any:
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level: expected a COCO ground-truth object, got {type(as_python(data)).__name__}")
    value = data.get(key)
    if not is_array(value):
        raise DataError(f"{path}: '{key}': expected a list, got {type(as_python(value)).__name__}")
    return value


def check_area_from_box(area_from_box: float | None) -> float | None:
    """The ``area_from_box`` factor: None, or a positive finite number (ConfigError otherwise)."""
    if area_from_box is None:
        return None
    if isinstance(area_from_box, bool) or not isinstance(area_from_box, (int, float)) or not 0 < area_from_box < math.inf:
        raise ConfigError(f"area_from_box: expected a positive factor such as 0.53, got {area_from_box!r}")
    return float(area_from_box)


def load_gt(source: Source, task: str, area_from_box: float | None = None) -> CocoGroundTruth:
    """Validate a COCO ground-truth file for ``task`` ('keypoints' or 'detection').

    An annotation without ``area`` gets box w*h*``area_from_box`` when that factor is given
    (CrowdPose, AIC and PoseTrack ground truth has no area; xtcocotools and ultralytics use 0.53);
    otherwise box w*h, and ``missing_area`` names it (the keypoint evaluator then refuses, as OKS
    needs the annotation's area). Annotations that have an ``area`` keep it.
    """
    area_from_box = check_area_from_box(area_from_box)
    data, path = read_json(source, "ground truth", python_keys=("categories",))
    images = _list_field(data, "images", path)
    anns = _list_field(data, "annotations", path)
    cats = _list_field(data, "categories", path)
    cols = record_columns(images, {"id": ...})
    image_ids: list[int] = cols["id"] if cols is not None else []
    if cols is None or not all(_is_int(i) for i in image_ids):
        for i, img in enumerate(as_python(images)):
            if not isinstance(img, dict) or not _is_int(img.get("id")):
                raise DataError(f"{path}: images[{i}]: needs an integer 'id'")
    if len(set(image_ids)) != len(image_ids):
        dup = next(x for x in image_ids if image_ids.count(x) > 1)
        raise DataError(f"{path}: images: image id {dup} appears twice")
    if not cats:
        raise DataError(f"{path}: 'categories': empty, at least one category is needed")
    categories: dict[int, str] = {}
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")):
            raise DataError(f"{path}: categories[{i}]: needs an integer 'id'")
        if cat["id"] in categories:
            raise DataError(f"{path}: categories[{i}]: category id {cat['id']} appears twice")
        categories[cat["id"]] = str(cat.get("name", cat["id"]))
    gt = CocoGroundTruth(path=path, image_ids=np.asarray(image_ids, dtype=np.int64), categories=categories, arrays={})
    if task == "keypoints":
        _keypoint_schema(gt, cats, anns)
    _annotation_arrays(gt, anns, task, area_from_box)
    return gt


def _keypoint_schema(gt: CocoGroundTruth, cats: list[dict], anns: Any) -> None:
    """Number of keypoints, names and sigmas from the categories (one schema for all)."""
    path = gt.path
    names: list[str] | None = None
    sigmas: np.ndarray | None = None
    for i, cat in enumerate(cats):
        if isinstance(cat.get("keypoints"), list):
            these = [str(n) for n in cat["keypoints"]]
            if names is not None and these != names:
                raise DataError(f"{path}: categories[{i}]: 'keypoints' differ from an earlier category's")
            names = these
        for key in ("kpt_oks_sigmas", "sigmas"):
            if key in cat:
                try:
                    these_s = check_sigmas(cat[key], what=f"{path}: categories[{i}]: '{key}'")
                except ConfigError as exc:
                    raise DataError(str(exc)) from None
                if sigmas is not None and (these_s.size != sigmas.size or (these_s != sigmas).any()):
                    raise DataError(f"{path}: categories[{i}]: '{key}' differ from an earlier category's")
                sigmas = these_s
                break
    if names is not None:
        k = len(names)
    elif sigmas is not None:
        k = sigmas.size
    else:
        entries = (as_python(a) for a in anns)  # converted one by one, only up to the first with keypoints
        first = next((a for a in entries if isinstance(a, dict) and isinstance(a.get("keypoints"), list)), None)
        if first is None:
            raise DataError(f"{path}: categories: no 'keypoints' names and no annotation with 'keypoints'")
        k = len(first["keypoints"]) // 3
    if sigmas is not None and sigmas.size != k:
        raise DataError(f"{path}: categories: {sigmas.size} sigmas for {k} keypoints")
    if k < 1:
        raise DataError(f"{path}: categories: keypoint schema with no keypoints")
    gt.num_keypoints, gt.keypoint_names, gt.sigmas = k, names, sigmas


def _check_annotation(gt: CocoGroundTruth, i: int, ann: Any, index: dict, task: str) -> None:
    """Raise the DataError describing what is wrong with one annotation (slow path)."""
    where = f"{gt.path}: annotations[{i}]"
    if not isinstance(ann, dict):
        raise DataError(f"{where}: expected an object, got {type(ann).__name__}")
    if "id" in ann:
        where += f" (id {ann['id']})"
    if not _is_int(ann.get("image_id")) or ann["image_id"] not in index:
        raise DataError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
    if not _is_int(ann.get("category_id")) or ann["category_id"] not in gt.categories:
        raise DataError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
    bbox = ann.get("bbox")
    if not _finite_numbers(bbox, 4) or bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{where}: 'bbox' must be 4 finite numbers [x, y, width >= 0, height >= 0], got {bbox!r}")
    if "area" in ann and not _finite_numbers([ann["area"]], 1):
        raise DataError(f"{where}: 'area' must be a finite number, got {ann['area']!r}")
    if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd", 0), float):
        raise DataError(f"{where}: 'iscrowd' must be 0 or 1, got {ann.get('iscrowd')!r}")
    if task == "keypoints":
        k = gt.num_keypoints
        values = ann.get("keypoints")
        if not _finite_numbers(values, 3 * k):
            if isinstance(values, list) and len(values) == 3 * k:
                j = next(j for j, v in enumerate(values) if not _finite_numbers([v], 1))
                raise DataError(f"{where}: 'keypoints' value {j} is {values[j]!r}, expected a finite number")
            got = f"{len(values)} values" if isinstance(values, list) else repr(values)
            raise DataError(f"{where}: 'keypoints' must be 3 * {k} = {3 * k} numbers, got {got}")
        if "num_keypoints" in ann and not _is_int(ann["num_keypoints"]):
            raise DataError(f"{where}: 'num_keypoints' must be an integer, got {ann['num_keypoints']!r}")


def _annotation_arrays(gt: CocoGroundTruth, anns: Any, task: str, area_from_box: float | None) -> None:
    """Flat GT arrays; a vectorised fast path, and per-entry checks to name the first bad entry."""
    index = {image_id: i for i, image_id in enumerate(gt.image_ids.tolist())}
    cat_sorted = np.array(sorted(gt.categories), dtype=np.int64)
    k = gt.num_keypoints
    n = len(anns)
    keypoints = task == "keypoints"
    nan = float("nan")
    scalars = {"image_id": ..., "category_id": ..., "area": ABSENT, "iscrowd": 0, "num_keypoints": ABSENT}
    cols = record_columns(anns, scalars, {"bbox": 4, "keypoints": 3 * k} if keypoints else {"bbox": 4})
    try:
        if cols is None:
            raise ValueError("records of another shape")
        image_ids = np.array(cols["image_id"], dtype=object)
        cat_ids = np.array(cols["category_id"], dtype=object)
        boxes = cols["bbox"]
        missing_area = np.array([a is ABSENT for a in cols["area"]], dtype=bool)
        areas = np.array([nan if a is ABSENT else a for a in cols["area"]], dtype=np.float64)
        crowd = np.array(cols["iscrowd"], dtype=object)
        if keypoints:
            kpts = cols["keypoints"].reshape(n, k, 3)
            has = np.array([m is not ABSENT for m in cols["num_keypoints"]], dtype=bool)
            num_kp = np.array([-1 if m is ABSENT else m for m in cols["num_keypoints"]], dtype=object)
        image = np.array([index.get(i, -1) if _is_int(i) else -1 for i in image_ids], dtype=np.int64)
        cats_ok = np.array([_is_int(c) for c in cat_ids], dtype=bool)
        cat_int = np.where(cats_ok, cat_ids, -1).astype(np.int64)
        cat = np.minimum(np.searchsorted(cat_sorted, cat_int), cat_sorted.size - 1)
        crowd_ok = np.array([c in (0, 1) and not isinstance(c, float) for c in crowd], dtype=bool)
        bad = (
            (image < 0)
            | ~cats_ok
            | (cat_sorted[cat] != cat_int)
            | ~np.isfinite(boxes).all(axis=1)
            | (boxes[:, 2] < 0)
            | (boxes[:, 3] < 0)
            | ~(np.isfinite(areas) | missing_area)
            | ~crowd_ok
        )
        if keypoints:
            kp_given = np.array([_is_int(m) for m in num_kp], dtype=bool)
            bad |= ~np.isfinite(kpts).all(axis=(1, 2)) | ~kp_given
            bad |= has & ~kp_given
    except (KeyError, TypeError, ValueError, AttributeError):
        bad = None
    if bad is None or bad.any():
        anns = as_python(anns)
        rows = range(n) if bad is None else np.flatnonzero(bad)[:1]
        for i in rows:
            _check_annotation(gt, int(i), anns[i], index, task)
        raise DataError(f"{gt.path}: annotations: malformed entries (mixed value types)")
    if missing_area.any():
        box_areas = boxes[:, 2] * boxes[:, 3]
        if area_from_box is None:
            gt.missing_area = f"annotations[{int(np.flatnonzero(missing_area)[0])}]"
        else:
            box_areas = box_areas * area_from_box
            gt.areas_from_box = int(missing_area.sum())
        areas = np.where(missing_area, box_areas, areas)
    gt.arrays = {"image": image, "cat": cat.astype(np.int64), "boxes": boxes, "areas": areas, "crowd": crowd.astype(bool)}
    if keypoints:
        counted = (kpts[:, :, 2] > 0).sum(axis=1)
        gt.arrays["keypoints"] = kpts
        gt.arrays["num_keypoints"] = np.where(has, np.where(has, num_kp, 0).astype(np.int64), counted)


def load_keypoint_gt(source: Source, area_from_box: float | None = None) -> CocoGroundTruth:
    """A COCO keypoints ground truth (``keypoints``, ``num_keypoints``, ``area`` per annotation)."""
    return load_gt(source, "keypoints", area_from_box)


def load_detection_gt(source: Source) -> CocoGroundTruth:
    """A COCO detection ground truth (``bbox``; ``area`` defaults to the box area)."""
    return load_gt(source, "detection")


def resolve_sigmas(gt: CocoGroundTruth, sigmas: Sequence[float] | None, protocol: str) -> np.ndarray:
    """The sigmas to use: explicit, else the GT file's, else ultralytics' 1/K; never COCO-17 silently."""
    k = gt.num_keypoints
    if sigmas is not None:
        arr = check_sigmas(sigmas)
        if arr.size != k:
            raise ConfigError(f"sigmas: {arr.size} values given, but {gt.path} has {k} keypoints per object")
        return arr
    if gt.sigmas is not None:
        return gt.sigmas
    if protocol == "ultralytics" and k != 17:
        return np.ones(k) / k
    raise ConfigError(
        f"sigmas: {gt.path} has no 'kpt_oks_sigmas' in its categories; pass --sigmas with {k} values "
        "(vsynth never falls back to the COCO-17 person sigmas)"
    )


def _results_list(source: Source) -> tuple[Any, str]:
    data, path = read_json(source, "predictions", python_keys=())
    if not is_array(data):
        raise DataError(
            f"{path}: top level: expected a list of result entries (COCO results format), got {type(data).__name__}"
        )
    return data, path


def _entry(path: str, i: int, res: Any) -> str:
    if isinstance(res, dict) and "image_id" in res:
        return f"{path}: entry {i} (image_id {res['image_id']!r})"
    return f"{path}: entry {i}"


def _check_entry(
    path: str, i: int, res: Any, gt: CocoGroundTruth, known_ids: set[int], field: str, length: int
) -> None:
    """Raise the DataError describing what is wrong with one result entry (slow path)."""
    where = _entry(path, i, res)
    if not isinstance(res, dict):
        raise DataError(f"{where}: expected an object, got {type(res).__name__}")
    image_id = res.get("image_id")
    if not _is_int(image_id) or image_id not in known_ids:
        raise DataError(f"{where}: image_id {image_id!r} is not in the ground truth {gt.path}")
    if not _is_int(res.get("category_id")) or res["category_id"] not in gt.categories:
        raise DataError(
            f"{where}: category_id {res.get('category_id')!r} is not in the ground truth categories "
            f"{sorted(gt.categories)}"
        )
    if not _finite_numbers([res.get("score")], 1):
        raise DataError(f"{where}: 'score' must be a finite number, got {res.get('score')!r}")
    values = res.get(field)
    if not _finite_numbers(values, length):
        expected = f"3 * {length // 3} = {length}" if field == "keypoints" else str(length)
        if not isinstance(values, list):
            raise DataError(f"{where}: '{field}' must be a list of {expected} numbers, got {values!r}")
        if len(values) != length:
            raise DataError(f"{where}: '{field}' has {len(values)} values, expected {expected}")
        j = next(j for j, v in enumerate(values) if not _finite_numbers([v], 1))
        raise DataError(f"{where}: '{field}' value {j} is {values[j]!r}, expected a finite number")


def _load_results(source: Source, gt: CocoGroundTruth, field: str, length: int) -> dict[str, np.ndarray]:
    """Flat arrays ``image`` (index into gt.image_ids), ``cat`` (index), ``score``, ``values`` (N, length)."""
    results, path = _results_list(source)
    n = len(results)
    if n == 0:
        return {
            "image": np.zeros(0, dtype=np.int64),
            "cat": np.zeros(0, dtype=np.int64),
            "score": np.zeros(0),
            "values": np.zeros((0, length)),
        }
    cols = record_columns(results, {"image_id": ..., "category_id": ..., "score": ...}, {field: length})
    try:
        if cols is None:
            raise ValueError("records of another shape")
        image_ids = np.array(cols["image_id"])
        cat_ids = np.array(cols["category_id"])
        scores = np.array(cols["score"], dtype=np.float64)
        values = cols[field]
        ok = image_ids.dtype.kind == "i" and cat_ids.dtype.kind == "i" and scores.ndim == 1
    except (KeyError, TypeError, ValueError):
        ok = False
    known_ids = set(gt.image_ids.tolist())
    if not ok:
        results = as_python(results)
        for i, res in enumerate(results):
            _check_entry(path, i, res, gt, known_ids, field, length)
        raise DataError(f"{path}: malformed results (mixed value types)")
    order = np.argsort(gt.image_ids, kind="stable")
    sorted_ids = gt.image_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, image_ids), sorted_ids.size - 1)
    cat_sorted = np.array(sorted(gt.categories), dtype=np.int64)
    cpos = np.minimum(np.searchsorted(cat_sorted, cat_ids), cat_sorted.size - 1)
    bad = (
        (sorted_ids[pos] != image_ids if sorted_ids.size else np.ones(n, dtype=bool))
        | (cat_sorted[cpos] != cat_ids)
        | ~np.isfinite(scores)
        | ~np.isfinite(values).all(axis=1)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        entry = as_python(results[i])
        _check_entry(path, i, entry, gt, known_ids, field, length)
        raise DataError(f"{_entry(path, i, entry)}: invalid result entry")
    return {"image": order[pos], "cat": cpos.astype(np.int64), "score": scores, "values": values}


def load_keypoint_results(source: Source, gt: CocoGroundTruth) -> dict[str, np.ndarray]:
    """Keypoint results (``keypoints`` x, y, score * K) as the evaluator's det arrays."""
    k = gt.num_keypoints
    res = _load_results(source, gt, "keypoints", 3 * k)
    kpts = res.pop("values").reshape(-1, k, 3)[:, :, :2]  # a view: the evaluator indexes it, never needs a copy
    return {**res, "keypoints": kpts}


def load_detection_results(source: Source, gt: CocoGroundTruth) -> dict[str, np.ndarray]:
    """Box results (``bbox`` x, y, width, height) as the evaluator's det arrays (xywh)."""
    res = _load_results(source, gt, "bbox", 4)
    return {**res, "boxes": res.pop("values")}
