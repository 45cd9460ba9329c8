"""Pinhole camera and frame transforms of the demo world.

World frame: X to the right of the camera, Y forward along the ground, Z up; the ground is Z = 0
and the camera sits at (0, 0, height) pitched down. Image coordinates are *continuous* (pixel
``i`` covers ``[i, i + 1)``, its centre is ``i + 0.5``), the convention of COCO and YOLO labels,
and the principal point is exactly the image's horizontal centre. Together these make a
horizontal image flip the same thing as mirroring the world (X -> -X): ``u -> width - u``, which
is what the flip test of the keypoint schema relies on.

Object frame: a forward, b to the object's own left, c up (right-handed), placed on the
ground at (x, y) with heading ``yaw`` (angle of the forward axis from world +X towards +Y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Continuous label coordinates -> the integer-centred coordinates cv2 draws with.
CV2_OFFSET = 0.5
# Fixed-point bits used for sub-pixel cv2 drawing (coordinates are multiplied by 2**SHIFT).
SHIFT = 4
_SCALE = float(1 << SHIFT)


@dataclass(frozen=True)
class Camera:
    """A level-rolled pinhole camera at height ``height_m`` pitched down by ``pitch`` radians."""

    width: int
    height: int
    focal: float  # pixels, square pixels
    height_m: float
    pitch: float
    cy: float  # principal point row (continuous coordinates); cx is always width / 2

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @cached_property
    def position(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.height_m])

    @property
    def horizon_v(self) -> float:
        """Image row of the horizon (the vanishing line of the ground plane)."""
        return self.cy - self.focal * math.tan(self.pitch)

    @cached_property
    def rotation(self) -> np.ndarray:
        """World -> camera rotation (rows: camera right, down, forward in world coordinates)."""
        s, c = math.sin(self.pitch), math.cos(self.pitch)
        return np.array([[1.0, 0.0, 0.0], [0.0, -s, -c], [0.0, c, -s]])

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera coordinates (N, 3): right, down, forward."""
        return (pts - self.position) @ self.rotation.T

    def _perspective(self, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.maximum(cam[:, 2], 1e-6)
        uv = np.empty((len(cam), 2))
        uv[:, 0] = self.focal * cam[:, 0] / z + self.cx
        uv[:, 1] = self.focal * cam[:, 1] / z + self.cy
        return uv, cam[:, 2]

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> (uv (N, 2) continuous pixel coordinates, depth (N,))."""
        return self._perspective(self.to_camera(pts))

    def project_object(self, local: np.ndarray, x: float, y: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """Object-frame points (N, 3) of an object posed at (x, y, yaw) -> (uv, depth), one matmul."""
        rot = self.rotation @ _yaw_matrix(yaw)
        offset = self.rotation @ (np.array([x, y, 0.0]) - self.position)
        return self._perspective(local @ rot.T + offset)

    def ground_y_for_depth(self, depth: float) -> float:
        """World Y of the ground point straight ahead whose camera depth is ``depth``."""
        return (depth - self.height_m * math.sin(self.pitch)) / math.cos(self.pitch)


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Object frame -> world rotation for heading ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def world_to_object(pt: np.ndarray, x: float, y: float, yaw: float) -> np.ndarray:
    """One world point (3,) -> object frame (3,), e.g. the camera seen from a vehicle."""
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = pt[0] - x, pt[1] - y
    return np.array([dx * c + dy * s, -dx * s + dy * c, pt[2]])


def mirror_yaw(yaw: float) -> float:
    """Heading of an object after mirroring the world about X = 0."""
    return math.pi - yaw


def to_cv2_points(uv: np.ndarray) -> np.ndarray:
    """Continuous (N, 2) coordinates -> int32 fixed-point points for cv2 drawing with SHIFT."""
    return np.round((uv - CV2_OFFSET) * _SCALE).astype(np.int32)
