"""Picture helpers shared by the tasks' sample grids (``samples/*.png`` in a run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np


def grid(tiles: list[np.ndarray], cols: int, tile: int) -> np.ndarray:
    """Tiles resized to ``tile`` px squares (letterboxed), at most ``cols`` per row."""
    if not tiles:
        return np.zeros((tile, tile, 3), np.uint8)
    cols = min(cols, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * tile, cols * tile, 3), 24, np.uint8)
    for n, t in enumerate(tiles):
        h, w = t.shape[:2]
        s = tile / max(h, w)
        r = cv2.resize(t, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        y, x = (n // cols) * tile, (n % cols) * tile
        out[y : y + r.shape[0], x : x + r.shape[1]] = r
    return out


def write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def write_grid(path: Path, tiles: list[np.ndarray], tile: int, header: Callable[[int], np.ndarray] | None = None,
               cols: int = 4) -> None:
    """``tiles`` as a :func:`grid` under ``header(width)`` (a legend drawn to the grid's width)."""
    img = grid(tiles, cols=cols, tile=tile)
    if header is not None:
        img = np.concatenate([header(img.shape[1]), img])
    write_png(path, img)
