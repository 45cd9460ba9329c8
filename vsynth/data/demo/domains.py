"""What makes the three demo domains differ: palettes, cameras, image finishing and label quality.

The gap is built in deliberately on both sides of a training pair, because that is what the
framework must measure:

* ``real`` looks photographic (muted colours, exposure and white-balance variety, lens blur,
  vignetting, sensor noise, JPEG) and its labels look like multi-view-triangulated ground truth
  (only the 14 schema points, a few pixels of jitter, gaps, loosely drawn boxes);
* ``synthetic`` looks like a game engine (saturated palette, flat shading, clean edges) and its
  labels are pixel-exact and complete (24 points, boxes from the full projected extent);
* ``generated`` images are image-to-image "style transfers" of real images: brighter, lower
  contrast, washed out, blurred, with a small geometric warp, so the reused source labels are
  slightly misaligned by construction (as with real generators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from vsynth.data.arms import SOURCES
from vsynth.data.demo.effects import generated_warp_matrix

Color = tuple[float, float, float]  # BGR

DOMAINS = SOURCES  # one rendered domain per data source an arm can draw from
GENERATED_CONDITIONS = ("cloudy", "fog", "dawn_dusk", "rainy", "snowy")
GENERATOR_NAME = "demo-style-transfer"


@dataclass(frozen=True)
class DomainStyle:
    """Sampling ranges and palettes of one rendered domain (``generated`` derives from ``real``)."""

    name: str
    camera_height: tuple[float, float]  # metres
    pitch_deg: tuple[float, float]
    hfov_deg: tuple[float, float]
    sky_top: tuple[Color, ...]
    sky_horizon: tuple[Color, ...]
    terrain: tuple[Color, ...]
    road: tuple[Color, ...]
    sidewalk: tuple[Color, ...]
    curb: Color
    marking: tuple[Color, ...]
    building: tuple[Color, ...]
    window: tuple[Color, ...]
    vehicle: tuple[Color, ...]
    glass: tuple[Color, ...]
    headlight: Color
    taillight: Color
    shirt: tuple[Color, ...]
    pants: tuple[Color, ...]
    skin: tuple[Color, ...]
    color_jitter: float  # +- per channel, per object
    ambient: float  # shading: ambient + diffuse * max(0, n . light)
    diffuse: float
    building_prob: float


REAL = DomainStyle(
    name="real",
    camera_height=(1.3, 4.5),
    pitch_deg=(2.0, 20.0),
    hfov_deg=(55.0, 75.0),
    sky_top=((200, 170, 140), (190, 188, 184), (185, 160, 135), (170, 165, 160)),
    sky_horizon=((225, 215, 205), (215, 215, 212), (210, 200, 195)),
    terrain=((70, 100, 90), (80, 105, 110), (60, 90, 80), (95, 115, 120)),
    road=((85, 85, 88), (100, 100, 102), (72, 74, 76), (110, 108, 106)),
    sidewalk=((150, 150, 146), (165, 160, 156), (135, 138, 140)),
    curb=(180.0, 180.0, 178.0),
    marking=((215, 215, 215), (90, 190, 215)),
    building=((150, 170, 190), (60, 80, 150), (120, 120, 122), (140, 150, 160), (110, 130, 150)),
    window=((60, 50, 42), (110, 95, 80), (45, 45, 45)),
    vehicle=((225, 225, 225), (32, 32, 34), (170, 170, 172), (110, 110, 112), (90, 40, 30), (25, 25, 150), (150, 165, 175), (40, 70, 40)),
    glass=((55, 45, 40), (70, 60, 55)),
    headlight=(210.0, 220.0, 225.0),
    taillight=(30.0, 30.0, 170.0),
    shirt=((40, 40, 40), (150, 110, 70), (200, 200, 200), (40, 40, 120), (90, 90, 90)),
    pants=((60, 40, 30), (40, 40, 40), (100, 100, 100)),
    skin=((110, 140, 190), (80, 110, 150), (60, 80, 110)),
    color_jitter=12.0,
    ambient=0.62,
    diffuse=0.45,
    building_prob=0.6,
)

SYNTHETIC = DomainStyle(
    name="synthetic",
    camera_height=(1.5, 7.0),
    pitch_deg=(4.0, 30.0),
    hfov_deg=(50.0, 80.0),
    sky_top=((240, 140, 70), (235, 160, 90)),
    sky_horizon=((250, 215, 175), (245, 230, 200)),
    terrain=((60, 170, 60), (70, 185, 110)),
    road=((125, 118, 112), (110, 105, 100)),
    sidewalk=((140, 190, 220), (170, 200, 230)),
    curb=(235.0, 235.0, 235.0),
    marking=((255, 255, 255), (0, 220, 255)),
    building=((200, 200, 240), (240, 220, 180), (180, 230, 240), (220, 180, 220)),
    window=((230, 200, 120), (200, 170, 90)),
    vehicle=((40, 40, 230), (40, 220, 240), (60, 200, 60), (220, 120, 30), (30, 140, 250), (200, 60, 160), (245, 245, 245)),
    glass=((230, 200, 120), (210, 180, 100)),
    headlight=(200.0, 255.0, 255.0),
    taillight=(0.0, 0.0, 255.0),
    shirt=((0, 0, 220), (220, 60, 0), (0, 200, 0), (0, 200, 240)),
    pants=((120, 40, 20), (30, 30, 30)),
    skin=((150, 180, 230), (110, 150, 200)),
    color_jitter=4.0,
    ambient=0.45,
    diffuse=0.7,
    building_prob=0.5,
)

STYLES: dict[str, DomainStyle] = {"real": REAL, "synthetic": SYNTHETIC}


# --- image finishing ------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _noise_bank(height: int, width: int) -> np.ndarray:
    """A fixed standard-normal noise field larger than the image; windows of it are sensor noise.

    Drawing fresh Gaussian noise per image costs more than rendering it; random windows of one
    fixed field (seeded, so runs stay deterministic) look the same and cost a slice.
    """
    rng = np.random.default_rng(20240607)
    return rng.standard_normal((height + 64, width + 64, 3), dtype=np.float32)


@lru_cache(maxsize=4)
def _vignette(height: int, width: int) -> np.ndarray:
    """Normalised squared radius from the image centre, (H, W, 3) float32, 0 at centre, ~1 at corners."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    return np.repeat((r2 / 2.0)[..., None], 3, axis=2)


def _exposure_lut(gain: float, gamma: float, wb: np.ndarray) -> np.ndarray:
    x = np.arange(256, dtype=np.float32) / 255.0
    channels = [np.clip(255.0 * np.power(np.clip(x * gain * w, 0, 1), gamma), 0, 255) for w in wb]
    return np.stack(channels, axis=1).astype(np.uint8).reshape(1, 256, 3)


def finish_real(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera pipeline: lens blur, exposure/gamma/white balance, vignetting, sensor noise."""
    h, w = img.shape[:2]
    if rng.random() < 0.25:  # motion blur along a random near-horizontal direction
        k = int(rng.integers(3, 6))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        img = cv2.filter2D(img, -1, kernel)
    else:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.45, 1.2)))
    wb = 1.0 + rng.uniform(-0.08, 0.08, size=3)
    img = cv2.LUT(img, _exposure_lut(float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.8, 1.25)), wb))
    bank = _noise_bank(h, w)
    oy, ox = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    sigma = float(rng.uniform(2.0, 7.0))
    strength = float(rng.uniform(0.0, 0.45))
    gain = cv2.addWeighted(_vignette(h, w), -strength, _vignette(h, w), 0.0, 1.0)  # 1 - strength * r2
    out = cv2.multiply(img, gain, dtype=cv2.CV_32F)
    out = cv2.scaleAdd(bank[oy : oy + h, ox : ox + w], sigma, out)
    _, out = cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO)  # negatives -> 0
    return cv2.convertScaleAbs(out)  # saturating cast to uint8


def stylize_generated(img: np.ndarray, rng: np.random.Generator, condition: str, warp: float = 1.0) -> np.ndarray:
    """An image-to-image generator's look: brighter, low contrast, desaturated, soft, warped.

    The warp (a few pixels of shift plus a little scale and rotation, times ``warp``; see
    :func:`vsynth.data.demo.effects.generated_warp_matrix`) is what makes labels reused from the
    source image misaligned, as they are for real generators.
    """
    h, w = img.shape[:2]
    tint = {
        "cloudy": (6.0, 2.0, -4.0),
        "fog": (10.0, 8.0, 6.0),
        "dawn_dusk": (-18.0, 4.0, 24.0),
        "rainy": (14.0, 4.0, -8.0),
        "snowy": (14.0, 12.0, 10.0),
    }[condition]
    out = img.astype(np.float32)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)[..., None]
    sat = float(rng.uniform(0.3, 0.6))
    out = out * (1.0 - sat) + gray * sat
    contrast = float(rng.uniform(0.35, 0.6))
    target = float(rng.uniform(140.0, 175.0)) + (10.0 if condition in ("fog", "snowy") else 0.0)
    out = (out - out.mean()) * contrast + target + np.array(tint, np.float32)
    blotch = rng.uniform(-12.0, 12.0, size=(3, 4, 3)).astype(np.float32)
    out += cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC)
    out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.7, 1.4)))
    m = generated_warp_matrix(rng, (w, h), warp)
    out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255).astype(np.uint8)


# --- label quality --------------------------------------------------------------------------


def real_keypoints(kpts: np.ndarray, box_wh: tuple[float, float], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Triangulated-looking labels: the 14 schema points, jittered, with gaps.

    ``kpts`` is (K, 3) exact (x, y, v) with v 2 visible, 1 occluded, 0 outside the image.
    Occluded points are mostly missing (as when too few views saw them) and visible ones
    sometimes are; jitter grows with object size and doubles for occluded points.
    """
    width, height = size
    out = kpts[:14].copy()
    sigma = float(np.clip(0.012 * math.sqrt(max(box_wh[0] * box_wh[1], 1.0)), 0.8, 3.5))
    for k in range(out.shape[0]):
        v = out[k, 2]
        keep = v > 0 and rng.random() < (0.35 if v == 1 else 0.92)
        if keep:
            out[k, :2] += rng.normal(0.0, sigma * (2.0 if v == 1 else 1.0), size=2)
            x, y = out[k, :2]
            keep = 0.0 <= x < width and 0.0 <= y < height
        if not keep:
            out[k] = 0.0
    return out


def real_box(box: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A loosely drawn box: each side moved by a few percent of the box size, then clipped."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    d = rng.normal(0.0, 0.035, size=4) * np.array([bw, bh, bw, bh]) + np.array([-0.01 * bw, -0.01 * bh, 0.01 * bw, 0.01 * bh])
    out = np.array([x0, y0, x1, y1]) + d
    out[[0, 2]] = np.clip(out[[0, 2]], 0, size[0])
    out[[1, 3]] = np.clip(out[[1, 3]], 0, size[1])
    if out[2] - out[0] < 2 or out[3] - out[1] < 2:
        return np.array(box, dtype=float)
    return out
