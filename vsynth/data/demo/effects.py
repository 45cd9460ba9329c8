"""Known effects the demo world can inject, so that every analysis can be tested against a known answer.

An analysis that never finds anything and one that cannot find anything look the same. The demo
world can therefore plant effects of a chosen size, and the tests (and the demo presets) check
that the analyses find them, and stay quiet when they are off:

* ``keypoint_shift``: a labelling-convention shift of chosen *synthetic* keypoints (e.g. "wheel"
  labelled at the tyre's contact with the road instead of the wheel centre): each labelled point
  is moved by ``offset`` = (dx, dy) in units of its object's scale sqrt(area) (the synthetic
  annotation's ``area``, its visible pixel count), in image axes (dx right, dy down). A point
  moved outside the image becomes unlabelled (v = 0). Horizontal-flip augmentation mirrors dx,
  so a flip-proof shift uses dy only. ``keypoints: all`` moves every point: a whole-vehicle
  convention shift, the effect the kill switch's OKS-mAP sees (``experiment=kill_switch_planted``;
  a few points moved, or labels shuffled among a vehicle's points, barely move it: ultralytics'
  keypoint loss, 1 - OKS, learns little from targets far from the prediction).
* ``generated_warp``: the strength of the geometric warp of generated images (rotation, scale
  and shift of the style transfer, each multiplied by it). Generated images reuse their source
  labels, so the warp misaligns them: 0 = aligned, 1 = the demo's usual slight misalignment
  (±1°, ±2 %, 2-5 px), larger = label-breaking.

With nothing injected (no shift, warp 1) the world, its cache key and every demo figure are
exactly what they were before effects existed. Worlds with effects record them in ``meta.json``
under ``effects``: these are planted, never findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from vsynth.data.demo.schema import KEYPOINT_NAMES_24
from vsynth.errors import ConfigError

#: ``keypoint_shift.keypoints: all``: every synthetic keypoint (a whole-vehicle convention shift)
ALL = "all"


@dataclass(frozen=True)
class KeypointShift:
    """Move synthetic keypoints ``indices`` (into the 24-point schema) by ``offset`` object scales."""

    indices: tuple[int, ...]
    offset: tuple[float, float]


@dataclass(frozen=True)
class Effects:
    """The injected effects of one demo world; the defaults inject nothing."""

    keypoint_shift: KeypointShift | None = None
    generated_warp: float = 1.0

    def cache_params(self) -> dict[str, Any]:
        """What goes into the world's cache key and meta.json: {} when nothing is injected."""
        out: dict[str, Any] = {}
        if self.keypoint_shift is not None:
            out["keypoint_shift"] = {"keypoints": [KEYPOINT_NAMES_24[i] for i in self.keypoint_shift.indices],
                                     "offset": [float(v) for v in self.keypoint_shift.offset]}
        if self.generated_warp != 1.0:
            out["generated_warp"] = float(self.generated_warp)
        return out


NO_EFFECTS = Effects()


def _mapping(section: Any, key: str, known: tuple[str, ...], what: str) -> Mapping[str, Any] | None:
    """``section`` as a plain mapping with only ``known`` keys (None stays None); ConfigError naming ``key``."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(section):
        section = OmegaConf.to_container(section, resolve=True)
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{key}: expected a mapping of {', '.join(known)}, got {section!r}")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown {what} (known: {', '.join(known)})")
    return section


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return float(value)


def effects_from_config(section: Any, key: str = "data.demo.effects") -> Effects:
    """``data.demo.effects`` (a mapping or None) as :class:`Effects`; bad values name ``key``.subkey."""
    section = _mapping(section, key, ("keypoint_shift", "generated_warp"), "effect")
    if section is None:
        return NO_EFFECTS
    warp = _number(section.get("generated_warp", 1.0), f"{key}.generated_warp")
    if warp < 0:
        raise ConfigError(f"{key}.generated_warp: expected a strength >= 0, got {warp}")
    return Effects(keypoint_shift=_shift(section.get("keypoint_shift"), f"{key}.keypoint_shift"), generated_warp=warp)


def _shift(section: Any, key: str) -> KeypointShift | None:
    section = _mapping(section, key, ("keypoints", "offset"), "key")
    if section is None:
        return None
    points = section.get("keypoints") or []
    if points == ALL:
        points = list(range(len(KEYPOINT_NAMES_24)))
    if not isinstance(points, (list, tuple)):
        raise ConfigError(f"{key}.keypoints: expected a list of keypoint names or indices (or '{ALL}'), got {points!r}")
    indices = []
    for p in points:
        if isinstance(p, str) and p in KEYPOINT_NAMES_24:
            indices.append(KEYPOINT_NAMES_24.index(p))
        elif isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(KEYPOINT_NAMES_24):
            indices.append(p)
        else:
            raise ConfigError(f"{key}.keypoints: {p!r} is not a synthetic keypoint name or index "
                              f"(0..{len(KEYPOINT_NAMES_24) - 1}, e.g. {KEYPOINT_NAMES_24[0]})")
    offset = section.get("offset", [0.0, 0.0])
    if not isinstance(offset, (list, tuple)) or len(offset) != 2:
        raise ConfigError(f"{key}.offset: expected [dx, dy] in units of object scale, got {offset!r}")
    dxdy = (_number(offset[0], f"{key}.offset"), _number(offset[1], f"{key}.offset"))
    if not indices or dxdy == (0.0, 0.0):
        return None  # nothing moves: the same world as without the effect
    if len(set(indices)) != len(indices):
        raise ConfigError(f"{key}.keypoints: a keypoint is listed twice: {points}")
    return KeypointShift(tuple(indices), dxdy)


def shift_keypoints(kpts: np.ndarray, area: float, shift: KeypointShift | None, size: tuple[int, int]) -> np.ndarray:
    """(K, 3) keypoints with the shift applied to the labelled points among ``shift.indices``.

    The move is ``offset * sqrt(area)`` pixels; a point that leaves the ``size`` (width, height)
    image becomes (0, 0, 0), like any point outside the image. K may be 24 or the 14 real points.
    """
    out = np.array(kpts, dtype=np.float64, copy=True)
    if shift is None:
        return out
    scale = math.sqrt(max(float(area), 1.0))
    width, height = size
    for i in shift.indices:
        if i >= out.shape[0] or out[i, 2] <= 0:
            continue
        x, y = out[i, 0] + shift.offset[0] * scale, out[i, 1] + shift.offset[1] * scale
        out[i] = (x, y, out[i, 2]) if (0.0 <= x < width and 0.0 <= y < height) else (0.0, 0.0, 0.0)
    return out


def generated_warp_matrix(rng: np.random.Generator, size: tuple[int, int], strength: float = 1.0) -> np.ndarray:
    """The 2x3 affine warp of one generated image: about ±1° rotation, ±2 % scale, 2-5 px shift per
    axis, each multiplied by ``strength`` (the random draws do not depend on it)."""
    w, h = size
    angle = float(rng.uniform(-1.0, 1.0))
    scale = float(rng.uniform(0.98, 1.02))
    shift = rng.uniform(2.0, 5.0, size=2) * rng.choice([-1.0, 1.0], size=2)
    if strength != 1.0:
        angle, scale, shift = angle * strength, 1.0 + (scale - 1.0) * strength, shift * strength
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += shift
    return m
