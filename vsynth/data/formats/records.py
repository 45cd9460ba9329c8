"""Small typed in-memory records every reader returns and every writer takes.

They hold exactly what the tasks need (paths, sizes, boxes, keypoints, class and keypoint
names, flip maps) and nothing backend-specific, so a dataset read from COCO can be written as
YOLO-pose (and back) without either side knowing the other's format.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageRecord:
    """One image: absolute ``path``, size in pixels, the id annotations refer to, and the
    ``file_name`` as the annotation file spells it (relative to its images folder)."""

    path: Path
    width: int
    height: int
    id: int
    file_name: str = ""


@dataclass
class KeypointAnnotation:
    """One object with keypoints. ``keypoints`` is (K, 3): x, y in pixels, v in COCO terms
    (0 not labelled, 1 labelled but hidden, 2 visible); ``bbox_xywh`` is in pixels."""

    image_id: int
    category_id: int
    bbox_xywh: tuple[float, float, float, float]
    keypoints: np.ndarray
    area: float
    iscrowd: int = 0
    id: int = 0

    @property
    def num_keypoints(self) -> int:
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))


@dataclass
class BoxAnnotation:
    """One object box, pixels, COCO ``[x, y, w, h]`` convention."""

    image_id: int
    category_id: int
    bbox_xywh: tuple[float, float, float, float]
    area: float
    iscrowd: int = 0
    id: int = 0


def _by_image(annotations: list) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for ann in annotations:
        grouped[ann.image_id].append(ann)
    return grouped


@dataclass
class KeypointDataset:
    """Images and keypoint annotations with the schema needed to train on them.

    ``class_names[i]`` has COCO id ``category_ids[i]`` (YOLO class ``i``); ``skeleton`` edges are
    0-based; ``flip_idx`` and ``oks_sigmas`` (per-keypoint OKS sigmas) are None when the source
    does not declare them.
    """

    images: list[ImageRecord]
    annotations: list[KeypointAnnotation]
    class_names: list[str]
    category_ids: list[int]
    keypoint_names: list[str]
    flip_idx: list[int] | None = None
    skeleton: list[tuple[int, int]] = field(default_factory=list)
    source: Path | None = None
    oks_sigmas: list[float] | None = None

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def annotations_by_image(self) -> dict[int, list[KeypointAnnotation]]:
        return _by_image(self.annotations)


@dataclass
class DetectionDataset:
    """Images and box annotations; ``class_names[i]`` has COCO id ``category_ids[i]``."""

    images: list[ImageRecord]
    annotations: list[BoxAnnotation]
    class_names: list[str]
    category_ids: list[int]
    source: Path | None = None
    dropped: int = 0  # degenerate boxes left out (read with boxes="clean")
    clipped: int = 0  # boxes clipped to their image (read with boxes="clean")

    def annotations_by_image(self) -> dict[int, list[BoxAnnotation]]:
        return _by_image(self.annotations)


@dataclass(frozen=True)
class SegSample:
    """An image and its label mask (PNG of class indices, ``ignore_index`` where unlabelled)."""

    image: Path
    label: Path


@dataclass
class SegDataset:
    samples: list[SegSample]
    class_names: list[str]
    palette: list[tuple[int, int, int]]  # RGB per class
    ignore_index: int = 255
    source: Path | None = None


@dataclass(frozen=True)
class GeneratedRow:
    """One manifest row: a generated image, the real image it was made from, and the label it
    reuses (the source image's label). Paths are absolute once read."""

    generated_path: Path
    source_image: Path
    label_path: Path
    condition: str
    generator: str
