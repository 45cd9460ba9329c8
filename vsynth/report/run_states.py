"""Per-image evaluator states of finished run folders: what the report statistics resample.

Every task's run folder keeps its test predictions and ground truth in standard formats:
``gt_<split>.json`` (COCO ground truth) and ``predictions_<split>.json`` (COCO results) for
keypoints and boxes; for masks, ``predictions_<split>/`` (label maps) and ``gt_<split>.json`` (each
prediction's ground-truth label file, the classes, the ignore index). So a run can be re-scored image
by image after the fact; these states are what :func:`vsynth.report.uncertainty.compare_arms`
resamples, and an experiment of several runs (the kill switch, a sweep) compares arms in one call:
:func:`compare_runs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from vsynth.errors import DataError


def run_files(run_dir: str | Path, split: str = "test") -> tuple[Path, Path]:
    """(ground truth, predictions file or mask folder) of a run folder; DataError naming the folder when absent."""
    run = Path(run_dir)
    gt = run / f"gt_{split}.json"
    for pred in (run / f"predictions_{split}.json", run / f"predictions_{split}"):
        if gt.is_file() and pred.exists():
            return gt, pred
    raise DataError(f"{run}: no {gt.name} + predictions_{split}.json (or predictions_{split}/ masks): the run did not "
                    f"save per-image {split} results")


def _mask_state(manifest: dict[str, Any], pred_dir: Path, gt_path: Path) -> Any:
    """Per-image confusion counts of a segmentation run's predicted masks against their label files."""
    from vsynth.eval.segmentation import SegmentationEvaluator, read_label_map

    try:
        ev = SegmentationEvaluator(int(manifest["num_classes"]), ignore_index=int(manifest.get("ignore_index", 255)),
                                   class_names=manifest.get("classes"), keep_per_image=True)
        for entry in manifest["images"]:
            pred = read_label_map(pred_dir / entry["prediction"])
            gt = read_label_map(Path(entry["label"]))
            ev.add_map(pred, gt, source=str(pred_dir / entry["prediction"]), image_id=str(entry["image"]))
    except (KeyError, TypeError) as e:
        raise DataError(f"{gt_path}: not a vsynth segmentation manifest ({e})") from None
    return ev.bootstrap_state()


def run_state(run_dir: str | Path, split: str = "test", sigmas: Sequence[float] | None = None) -> Any:
    """The evaluator state of one run's ``split`` predictions (keypoints, boxes or masks, from the files)."""
    gt_path, pred_path = run_files(run_dir, split)
    try:
        gt = json.loads(gt_path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{gt_path}: not readable JSON ({e})") from None
    if isinstance(gt, dict) and "num_classes" in gt and pred_path.is_dir():  # segmentation: masks
        return _mask_state(gt, pred_path, gt_path)
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
