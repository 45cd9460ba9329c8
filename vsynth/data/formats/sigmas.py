"""OKS sigmas as a dataset declares them (COCO category ``kpt_oks_sigmas``, data YAML, option).

Training and OKS evaluation need one positive sigma per keypoint; a dataset file that declares a
wrong number, or non-positive values, is refused when it is read, naming the file, rather than
when the evaluator first divides by them. The number check itself is the evaluator's
(`vsynth.eval.arrays.check_sigmas`), so both sides accept exactly the same sigmas.
"""

from __future__ import annotations

from typing import Any

from vsynth.errors import ConfigError, DataError


def read_oks_sigmas(value: Any, num_keypoints: int, where: str, error: type[Exception] = DataError) -> list[float]:
    """``value`` as ``num_keypoints`` positive finite floats, or ``error`` naming ``where``."""
    from vsynth.eval.arrays import check_sigmas

    try:
        sigmas = check_sigmas(value, what=where).tolist()
    except ConfigError:
        sigmas = None
    if sigmas is None or not isinstance(value, (list, tuple)) or len(sigmas) != num_keypoints:
        raise error(f"{where}: kpt_oks_sigmas must be {num_keypoints} positive numbers (one per keypoint), got {value!r}")
    return sigmas
