"""Label schemas of the demo world: keypoint names and flip maps, detection and segmentation classes.

These constants are the contract between the demo world and the tasks. The first 14 keypoints
follow the CarFusion-style order the real keypoint model uses (so a 24-point synthetic source can
be mapped onto it by taking ``[0..13]``); points 14..23 exist only in the synthetic domain.
"Left" and "right" are always the vehicle's own left/right (as seen by its driver), never the
image's, which is why a horizontal image flip must swap them with the flip map below.
"""

from __future__ import annotations

KEYPOINT_NAMES_24: list[str] = [
    "front_left_wheel",  # 0
    "front_right_wheel",  # 1
    "rear_left_wheel",  # 2
    "rear_right_wheel",  # 3
    "front_left_light",  # 4
    "front_right_light",  # 5
    "rear_left_light",  # 6
    "rear_right_light",  # 7
    "rear_center",  # 8  licence plate / exhaust, on the symmetry plane
    "front_left_roof",  # 9
    "front_right_roof",  # 10
    "rear_left_roof",  # 11
    "rear_right_roof",  # 12
    "front_center",  # 13 grille, on the symmetry plane
    # synthetic-only points
    "left_mirror",  # 14
    "right_mirror",  # 15
    "front_left_door_handle",  # 16
    "front_right_door_handle",  # 17
    "front_left_bumper",  # 18
    "front_right_bumper",  # 19
    "rear_left_bumper",  # 20
    "rear_right_bumper",  # 21
    "roof_center",  # 22
    "hood_center",  # 23
]
KEYPOINT_NAMES_14: list[str] = KEYPOINT_NAMES_24[:14]

FLIP_IDX_14: list[int] = [1, 0, 3, 2, 5, 4, 7, 6, 8, 10, 9, 12, 11, 13]
FLIP_IDX_24: list[int] = FLIP_IDX_14 + [15, 14, 17, 16, 19, 18, 21, 20, 22, 23]

# Per-point OKS sigmas (COCO convention: the keypoint's localisation tolerance as a fraction of
# object scale). Wheel centres and roof corners are broad, ambiguous targets on a vehicle, so
# they get the loosest values; lights, mirrors and handles are small, crisp parts.
KPT_OKS_SIGMAS_24: list[float] = [
    0.09, 0.09, 0.09, 0.09,  # wheels
    0.07, 0.07, 0.07, 0.07,  # lights
    0.08,  # rear_center
    0.10, 0.10, 0.10, 0.10,  # roof corners
    0.08,  # front_center
    0.06, 0.06,  # mirrors
    0.07, 0.07,  # door handles
    0.08, 0.08, 0.08, 0.08,  # bumper corners
    0.10,  # roof_center
    0.09,  # hood_center
]
KPT_OKS_SIGMAS_14: list[float] = KPT_OKS_SIGMAS_24[:14]

# 0-based edges between keypoints, for drawing and for the COCO ``skeleton`` (which is 1-based).
SKELETON_24: list[tuple[int, int]] = [
    (0, 2), (1, 3), (0, 1), (2, 3),  # wheel rectangle
    (4, 5), (6, 7), (4, 6), (5, 7),  # light rectangle
    (9, 10), (11, 12), (9, 11), (10, 12),  # roof rectangle
    (4, 9), (5, 10), (6, 11), (7, 12),  # pillars
    (13, 4), (13, 5), (8, 6), (8, 7),  # centres
    (14, 9), (15, 10), (16, 0), (17, 1),
    (18, 4), (19, 5), (20, 6), (21, 7), (22, 9), (23, 13),
]
SKELETON_14: list[tuple[int, int]] = [(a, b) for a, b in SKELETON_24 if a < 14 and b < 14]

KEYPOINT_CATEGORY = "vehicle"

DETECTION_CLASSES: list[str] = ["car", "truck", "bus", "trailer", "pedestrian", "motorcycle", "bicycle"]

SEG_CLASSES: list[str] = ["background", "road", "sidewalk", "building", "vehicle", "person"]
SEG_PALETTE: list[tuple[int, int, int]] = [  # RGB, Cityscapes-like
    (0, 0, 0),
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (0, 0, 142),
    (220, 20, 60),
]
SIDEWALK_CLASSES: list[str] = ["background", "sidewalk"]
SIDEWALK_PALETTE: list[tuple[int, int, int]] = [(0, 0, 0), (244, 35, 232)]
IGNORE_INDEX = 255

# Semantic class of each detection class (pedestrian -> person, every vehicle -> vehicle).
SEG_CLASS_OF_DETECTION: dict[str, str] = {
    name: ("person" if name == "pedestrian" else "vehicle") for name in DETECTION_CLASSES
}


def sidewalk_lut() -> list[int]:
    """Index map from ``SEG_CLASSES`` to ``SIDEWALK_CLASSES`` (ignore stays ignore)."""
    return [SIDEWALK_CLASSES.index("sidewalk") if name == "sidewalk" else 0 for name in SEG_CLASSES]
