"""Pictures for the run folder: training batches marked by source, and prediction overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

#: border colour (BGR) per source; unknown sources get grey
SOURCE_COLORS = {"real": (60, 180, 60), "generated": (0, 140, 255), "synthetic": (220, 120, 0)}


def color_lut(palette: Sequence[Sequence[int]], ignore_index: int) -> np.ndarray:
    """(256, 3) BGR colours; ignore in white, unknown values in magenta."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = (255, 0, 255)
    for i, rgb in enumerate(palette):
        lut[i] = (rgb[2], rgb[1], rgb[0])
    lut[ignore_index] = (255, 255, 255)
    return lut


def overlay(image_bgr: np.ndarray, label: np.ndarray, lut: np.ndarray, ignore_index: int, alpha: float = 0.5) -> np.ndarray:
    color = lut[label]
    out = image_bgr.astype(np.float32) * (1 - alpha) + color.astype(np.float32) * alpha
    ign = label == ignore_index
    out[ign] = image_bgr[ign]  # unlabelled pixels stay as the image
    return np.clip(out, 0, 255).astype(np.uint8)


def _tag(tile: np.ndarray, text: str, color: tuple[int, int, int]) -> np.ndarray:
    tile = cv2.copyMakeBorder(tile, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=color)
    cv2.rectangle(tile, (0, 0), (min(tile.shape[1], 8 + 7 * len(text)), 16), color, -1)
    cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    if not tiles:
        return np.zeros((16, 16, 3), np.uint8)
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    canvas = np.full((rows * h, cols * w, 3), 32, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * h : r * h + t.shape[0], c * w : c * w + t.shape[1]] = t
    return canvas


def batch_grid(images: list[np.ndarray], labels: list[np.ndarray], sources: Sequence[str], palette, ignore_index: int,
               max_tiles: int = 16) -> np.ndarray:
    """Each training sample twice (image, image + label overlay), framed and tagged by source."""
    lut = color_lut(palette, ignore_index)
    tiles = []
    for img, lab, src in list(zip(images, labels, sources))[:max_tiles]:
        color = SOURCE_COLORS.get(src, (128, 128, 128))
        pair = np.concatenate([img, overlay(img, lab, lut, ignore_index)], axis=1)
        tiles.append(_tag(pair, src, color))
    return grid(tiles, cols=2 if len(tiles) > 1 else 1)


def prediction_grid(images: list[np.ndarray], gts: list[np.ndarray], preds: list[np.ndarray], palette,
                    ignore_index: int) -> np.ndarray:
    """Rows of image | ground truth | prediction."""
    lut = color_lut(palette, ignore_index)
    rows = []
    for img, gt, pred in zip(images, gts, preds):
        rows.append(np.concatenate([img, overlay(img, gt, lut, ignore_index, 0.6), overlay(img, pred, lut, ignore_index, 0.6)], 1))
    return grid(rows, cols=1)


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
