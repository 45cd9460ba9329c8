"""Per-image evaluator states of finished run folders: what the report statistics resample.

A run that writes ``gt_<split>.json`` (COCO ground truth) and ``predictions_<split>.json`` (COCO
results) next to its ``metrics.json`` can be re-scored image by image after the fact; these
states are what :func:`vsynth.report.uncertainty.compare_arms` resamples, so an experiment of
several runs (the kill switch, a sweep) compares arms in one call: :func:`compare_runs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from vsynth.errors import DataError


def run_files(run_dir: str | Path, split: str = "test") -> tuple[Path, Path]:
    """(ground truth, predictions) of a run folder; DataError naming the folder when absent."""
    run = Path(run_dir)
    gt, pred = run / f"gt_{split}.json", run / f"predictions_{split}.json"
    if not gt.is_file() or not pred.is_file():
        raise DataError(f"{run}: no {gt.name} + {pred.name} (the run did not save per-image {split} results)")
    return gt, pred


def run_state(run_dir: str | Path, split: str = "test", sigmas: Sequence[float] | None = None) -> Any:
    """The evaluator state of one run's ``split`` predictions (keypoints or detection, from the GT)."""
    gt_path, pred_path = run_files(run_dir, split)
    try:
        gt = json.loads(gt_path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{gt_path}: not readable JSON ({e})") from None
    cats = gt.get("categories") if isinstance(gt, dict) else None
    if isinstance(cats, list) and any(isinstance(c, dict) and c.get("keypoints") for c in cats):
        from vsynth.eval.keypoints import KeypointEvaluator

        evaluator: Any = KeypointEvaluator.from_coco_files(gt, str(pred_path), sigmas=sigmas)
    else:
        from vsynth.eval.detection import DetectionEvaluator

        evaluator = DetectionEvaluator.from_coco_files(gt, str(pred_path))
    return evaluator.bootstrap_state()


def compare_runs(treatment: Sequence[str | Path], control: Sequence[str | Path], *, metric: str, split: str = "test",
                 sigmas: Sequence[float] | None = None, names: tuple[str, str] = ("A", "B"),
                 **options: Any) -> dict[str, Any]:
    """:func:`vsynth.report.uncertainty.compare_arms` of two lists of run folders (one per seed).

    ``options``: ``samples``, ``seed``, ``level``, ``alpha``, ``power``, ``gate``. The result
    also lists the ``runs`` of each arm.
    """
    from vsynth.report.uncertainty import compare_arms

    states = {name: [run_state(r, split, sigmas) for r in runs] for name, runs in zip(names, (treatment, control))}
    out = compare_arms(states[names[0]], states[names[1]], metric=metric, names=names, **options)
    out["runs"] = {name: [str(r) for r in runs] for name, runs in zip(names, (treatment, control))}
    return out
