"""One demo sample per (task, domain, split, index): rendered, finished and labelled in the quality
of its domain. Every sample has its own random stream derived from the seed and its address, so
any image can be regenerated alone and generation order does not matter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vsynth.data.demo.domains import GENERATED_CONDITIONS, STYLES, finish_real, real_box, real_keypoints, stylize_generated
from vsynth.data.demo.effects import NO_EFFECTS, Effects, shift_keypoints
from vsynth.data.demo.render import RenderedObject, render_scene
from vsynth.data.demo.scene import DETECTION_KINDS, KEYPOINT_KINDS, sample_scene
from vsynth.data.demo.schema import IGNORE_INDEX

TASKS = ("keypoints", "detection", "segmentation")
SPLITS = ("train", "val", "test")
_TASK_IDS = {t: i for i, t in enumerate(TASKS)}
_DOMAIN_IDS = {"real": 0, "synthetic": 1, "generated": 2}
_SPLIT_IDS = {s: i for i, s in enumerate(SPLITS)}


@dataclass
class Sample:
    """A finished image with labels in its domain's quality.

    ``objects`` boxes/keypoints are exact for ``synthetic`` and degraded for ``real``
    (keypoints then hold the 14 schema points only); ``semantic`` has an ignore band along
    class boundaries in about half the real images (as annotators leave them).
    """

    image: np.ndarray
    semantic: np.ndarray
    objects: list[RenderedObject]
    jpeg_quality: int


def sample_rng(seed: int, task: str, domain: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _TASK_IDS[task], _DOMAIN_IDS[domain], _SPLIT_IDS[split], int(index)])


def render_sample(task: str, domain: str, seed: int, split: str, index: int, size: tuple[int, int],
                  effects: Effects = NO_EFFECTS) -> Sample:
    """Render sample ``index`` of ``task``/``domain``/``split`` (domain 'real' or 'synthetic').

    ``effects.keypoint_shift`` moves the chosen synthetic keypoints (an injected convention shift).
    """
    rng = sample_rng(seed, task, domain, split, index)
    style = STYLES[domain]
    kinds, count = (KEYPOINT_KINDS, (1, 3)) if task == "keypoints" else (DETECTION_KINDS, (1, 4))
    rendered = render_scene(sample_scene(rng, style, size, kinds, count))
    if domain != "real":
        objects = rendered.objects
        if effects.keypoint_shift is not None:
            objects = [RenderedObject(o.kind, o.bbox, shift_keypoints(o.keypoints, o.area, effects.keypoint_shift, size),
                                      o.area, o.instance_id) if o.keypoints is not None else o for o in objects]
        return Sample(rendered.image, rendered.semantic, objects, jpeg_quality=95)
    image = finish_real(rendered.image, rng)
    objects = []
    for obj in rendered.objects:
        w, h = obj.bbox[2] - obj.bbox[0], obj.bbox[3] - obj.bbox[1]
        kpts = real_keypoints(obj.keypoints, (w, h), size, rng) if obj.keypoints is not None else None
        objects.append(RenderedObject(obj.kind, real_box(obj.bbox, size, rng), kpts, obj.area, obj.instance_id))
    semantic = rendered.semantic
    if rng.random() < 0.5:
        edges = cv2.morphologyEx(semantic, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        semantic = semantic.copy()
        semantic[edges] = IGNORE_INDEX
    return Sample(image, semantic, objects, jpeg_quality=int(rng.integers(50, 86)))


def generated_condition(index: int, n_sources: int) -> str:
    """Condition of generated image ``index`` (made from source ``index mod n_sources``).

    Source index plus pass number: one pass over the sources already uses every condition,
    and each further pass gives every source a new one (up to one per condition).
    """
    n = max(n_sources, 1)
    return GENERATED_CONDITIONS[(index % n + index // n) % len(GENERATED_CONDITIONS)]


def stylize_sample(source_bgr: np.ndarray, task: str, seed: int, split: str, index: int, condition: str,
                   effects: Effects = NO_EFFECTS) -> np.ndarray:
    """The generated-domain copy ``index`` of a real image (already read back from its JPEG);
    ``effects.generated_warp`` sets the strength of its warp."""
    return stylize_generated(source_bgr, sample_rng(seed, task, "generated", split, index), condition,
                             warp=effects.generated_warp)
