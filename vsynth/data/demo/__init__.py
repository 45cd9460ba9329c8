"""The procedural demo world: simple vehicles on roads in three domains, written in vsynth's formats.

`real` looks photographic with triangulation-like labels, `synthetic` looks like a game engine
with exact labels, `generated` are style-transferred real images reusing their source labels.
Everything is pure numpy + OpenCV and deterministic from a seed, so every task and experiment
runs end to end on a CPU laptop without downloading anything.

Entry points: `ensure_demo` (generate once into a cache, used by the tasks), `write_demo`
(used by ``python -m vsynth.data demo``), the schema constants below, and `Effects` (known
effects the world can inject for testing the analyses: ``data.demo.effects``).
"""

from vsynth.data.demo.cache import demo_key, ensure_demo
from vsynth.data.demo.domains import DOMAINS, GENERATED_CONDITIONS, GENERATOR_NAME
from vsynth.data.demo.effects import NO_EFFECTS, Effects, KeypointShift, effects_from_config
from vsynth.data.demo.schema import (
    DETECTION_CLASSES,
    FLIP_IDX_14,
    FLIP_IDX_24,
    IGNORE_INDEX,
    KEYPOINT_CATEGORY,
    KEYPOINT_NAMES_14,
    KEYPOINT_NAMES_24,
    KPT_OKS_SIGMAS_14,
    KPT_OKS_SIGMAS_24,
    SEG_CLASSES,
    SEG_PALETTE,
    SIDEWALK_CLASSES,
    SIDEWALK_PALETTE,
    SKELETON_14,
    SKELETON_24,
)
from vsynth.data.demo.world import SPLITS, TASKS
from vsynth.data.demo.writer import DEFAULT_SIZE, DEMO_VERSION, default_counts, normalize_counts, write_demo

__all__ = [
    "DEFAULT_SIZE",
    "DEMO_VERSION",
    "DETECTION_CLASSES",
    "DOMAINS",
    "Effects",
    "FLIP_IDX_14",
    "FLIP_IDX_24",
    "GENERATED_CONDITIONS",
    "GENERATOR_NAME",
    "IGNORE_INDEX",
    "KEYPOINT_CATEGORY",
    "KEYPOINT_NAMES_14",
    "KEYPOINT_NAMES_24",
    "KPT_OKS_SIGMAS_14",
    "KPT_OKS_SIGMAS_24",
    "KeypointShift",
    "NO_EFFECTS",
    "SEG_CLASSES",
    "SEG_PALETTE",
    "SIDEWALK_CLASSES",
    "SIDEWALK_PALETTE",
    "SKELETON_14",
    "SKELETON_24",
    "SPLITS",
    "TASKS",
    "default_counts",
    "demo_key",
    "effects_from_config",
    "ensure_demo",
    "normalize_counts",
    "write_demo",
]
