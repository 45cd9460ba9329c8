"""Turn user inputs (numpy arrays, torch tensors, lists) into checked float64/int64 numpy arrays.

Evaluators accept whatever a training loop has at hand; every array is converted once here, with
an error that names where the bad value came from (``source``: a file and entry, or ``update()``
and an image id) instead of a numpy traceback deep inside the matching code.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from vsynth.errors import ConfigError, DataError

BOX_FORMATS = ("xyxy", "xywh")


def to_numpy(value: Any) -> np.ndarray:
    """numpy view of a numpy array, torch tensor (any device) or nested list, without copying numpy."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def float_array(value: Any, source: str, what: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """float64 array of the given shape (None = any size), finite, or a DataError naming ``source``."""
    try:
        arr = to_numpy(value).astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: {what} is not numeric ({exc})") from None
    if arr.size == 0 and len(shape) > 1 and arr.ndim == 1:
        arr = arr.reshape((0,) + tuple(s if s is not None else 0 for s in shape[1:]))
    _check_shape(arr, source, what, shape)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"{source}: {what} has a non-finite value at index {tuple(int(i) for i in bad)}")
    return arr


def int_array(value: Any, source: str, what: str, length: int) -> np.ndarray:
    """int64 vector of the given length whose values are integral, or a DataError naming ``source``."""
    arr = float_array(value, source, what, (length,))
    ints = arr.astype(np.int64)
    if (ints != arr).any():
        raise DataError(f"{source}: {what} must hold integers, got {arr[ints != arr][0]!r}")
    return ints


def _check_shape(arr: np.ndarray, source: str, what: str, shape: tuple[int | None, ...]) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataError(f"{source}: {what} has shape {tuple(arr.shape)}, expected {want}")


def boxes_to_xywh(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """COCO's (x, y, width, height) from either format; xyxy converts as width = x2 - x1."""
    if box_format == "xywh":
        return boxes
    out = boxes.copy()
    out[:, 2] = boxes[:, 2] - boxes[:, 0]
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    return out


def check_box_format(box_format: str) -> str:
    """Validate a ``box_format`` argument; there is no default guessing of box layouts."""
    if box_format not in BOX_FORMATS:
        raise ConfigError(f"box_format: expected one of {BOX_FORMATS}, got {box_format!r}")
    return box_format


def check_sigmas(sigmas: Sequence[float] | np.ndarray, what: str = "sigmas") -> np.ndarray:
    """Per-keypoint OKS sigmas as a positive finite float64 vector (ConfigError otherwise)."""
    try:
        arr = np.asarray(to_numpy(sigmas), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected a list of positive numbers, got {sigmas!r}") from None
    if arr.size == 0 or not np.isfinite(arr).all() or (arr <= 0).any():
        raise ConfigError(f"{what}: expected one positive number per keypoint, got {arr.tolist()}")
    return arr


def image_id_kind(image_id: Hashable, source: str) -> str:
    """'int' or 'str': image ids are sorted like COCO sorts them, so one kind per evaluator."""
    if isinstance(image_id, (bool, np.bool_)):
        raise DataError(f"{source}: image id {image_id!r} must be an int or a str")
    if isinstance(image_id, (int, np.integer)):
        return "int"
    if isinstance(image_id, str):
        return "str"
    raise DataError(f"{source}: image id {image_id!r} must be an int or a str")


def image_id_array(ids: list, kind: str) -> np.ndarray:
    """Array of image ids that sorts like COCO's ``sorted(imgIds)``."""
    if kind == "int":
        return np.asarray(ids, dtype=np.int64)
    return np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype=str)


def require(mapping: Any, key: str, source: str, side: str) -> Any:
    """``mapping[key]``, or a DataError saying which input lacks it."""
    try:
        return mapping[key]
    except (KeyError, TypeError, IndexError):
        raise DataError(f"{source}: {side} has no '{key}'") from None
