"""What a pose data YAML still lacks before vsynth can train on it, named key by key.

`python -m vsynth.data check yolo-pose` and `convert-coco-pose` print these, so a user learns
"kpt_oks_sigmas: missing (training needs one per keypoint)" from the data tools, not from a
training run that stops after loading the model. The rules mirror what the keypoints task
refuses (`tasks/keypoints/data.py`, `tasks/keypoints/flip.py`) and what ultralytics needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vsynth.data.formats.flip import flip_idx_from_names
from vsynth.data.formats.yolo_pose import read_yolo_pose_yaml
from vsynth.errors import DataError


@dataclass(frozen=True)
class Gap:
    """One thing missing: the YAML ``key``, what is wrong, and whether training stops on it."""

    key: str
    problem: str
    required: bool

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


def pose_training_gaps(data_yaml: str | Path) -> list[Gap]:
    """The gaps of a pose data YAML (which must itself parse), required ones first."""
    path = Path(data_yaml)
    spec = read_yolo_pose_yaml(path)
    gaps: list[Gap] = []
    try:
        read_yolo_pose_yaml(path, relative_root="refuse")
    except DataError:
        gaps.append(Gap("path", "missing or relative (training needs the dataset root as an absolute path; "
                                "ultralytics would resolve a relative one against its own datasets_dir)", True))
    for split, why in (("train", "training needs a train split"),
                       ("val", "training validates on it and keeps the best checkpoint by it")):
        if split not in spec.splits:
            gaps.append(Gap(split, f"missing ({why})", True))
    for split, folder in spec.splits.items():
        if not folder.exists():
            gaps.append(Gap(split, f"{folder} does not exist", True))
    if spec.kpt_oks_sigmas is None:
        gaps.append(Gap("kpt_oks_sigmas", "missing (training needs one per keypoint: --sigmas when converting, "
                                          "or data.keypoints.oks_sigmas=[...])", True))
    if spec.flip_idx is None:
        derived = flip_idx_from_names(spec.kpt_names) if spec.kpt_names else None
        hint = f"; the keypoint names give {derived}" if derived else ""
        gaps.append(Gap("flip_idx", "missing (training needs it while task.augment.fliplr > 0, the default: "
                                    f"--flip-idx when converting, or data.keypoints.flip_idx=[...]{hint})", True))
    if "test" not in spec.splits:
        gaps.append(Gap("test", "missing (optional: the final test then scores the val split)", False))
    if spec.kpt_names is None:
        gaps.append(Gap("kpt_names", "missing (optional: lets vsynth check flip_idx against left/right names "
                                     "and name the per-keypoint metrics)", False))
    return sorted(gaps, key=lambda g: not g.required)
