"""Pictures for the run folder: training batches by source and predictions over ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vsynth.report.pictures import grid, write_grid, write_png  # noqa: F401  (re-exported for the task)

GT_COLOUR = (200, 200, 200)  # BGR


def class_colour(k: int) -> tuple[int, int, int]:
    """A distinct BGR colour per class index."""
    hue = int((k * 47) % 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_box(img: np.ndarray, box: Sequence[float], colour: tuple[int, int, int], text: str | None = None,
             thickness: int = 1) -> None:
    h, w = img.shape[:2]
    lim = lambda v, n: int(round(min(max(float(v), -1.0), float(n))))  # noqa: E731  (an untrained head's boxes can be huge)
    x1, y1, x2, y2 = lim(box[0], w), lim(box[1], h), lim(box[2], w), lim(box[3], h)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
    if text:
        cv2.putText(img, text, (x1 + 1, max(9, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.32, colour, 1, cv2.LINE_AA)


def caption(img: np.ndarray, text: str) -> None:
    cv2.rectangle(img, (0, 0), (min(img.shape[1], 8 + 6 * len(text)), 14), (0, 0, 0), -1)
    cv2.putText(img, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)


def legend(width: int, names: Sequence[str]) -> np.ndarray:
    bar = np.full((18, width, 3), 32, np.uint8)
    x = 4
    for k, name in enumerate(names):
        cv2.rectangle(bar, (x, 5), (x + 9, 13), class_colour(k), -1)
        cv2.putText(bar, name, (x + 12, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (230, 230, 230), 1, cv2.LINE_AA)
        x += 16 + 7 * len(name)
        if x > width - 40:
            break
    return bar


def training_tile(img_chw: np.ndarray, targets: np.ndarray, names: Sequence[str], label: str) -> np.ndarray:
    """One augmented training image (float BGR CHW 0-255) with its [cls, cx, cy, w, h] targets."""
    img = np.ascontiguousarray(np.clip(img_chw, 0, 255).astype(np.uint8).transpose(1, 2, 0)).copy()
    for t in targets:
        if t[3] <= 0 or t[4] <= 0:
            continue
        k = int(t[0])
        cx, cy, w, h = (float(v) for v in t[1:5])
        draw_box(img, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), class_colour(k),
                 names[k] if 0 <= k < len(names) else str(k))
    caption(img, label)
    return img
