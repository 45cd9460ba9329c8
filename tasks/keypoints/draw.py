"""Pictures for the run folder: training grids per source and predictions on test images.

Left and right keypoints get different colours (left blue, right orange, on-axis points green),
and each left point is joined to its right partner by a thin line. A flip that forgets to swap
left and right is then visible at a glance: on a mirrored car the blue points sit on the side
where orange ones belong, and the partner lines cross the car the wrong way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vsynth.report.pictures import grid, write_grid, write_png  # noqa: F401  (re-exported for the task)

# BGR
LEFT, RIGHT, CENTER = (255, 140, 0), (0, 120, 255), (60, 200, 60)
GT_COLOUR, BOX_COLOUR = (200, 200, 200), (0, 220, 255)


def sides(names: Sequence[str] | None, flip_idx: Sequence[int] | None, k: int) -> list[str]:
    """'L', 'R' or 'C' per keypoint: from the names, else from the flip map (lower index = 'L')."""
    out = []
    for i in range(k):
        n = (names[i] if names and i < len(names) else "").lower()
        if "left" in n:
            out.append("L")
        elif "right" in n:
            out.append("R")
        elif names and n:
            out.append("C")
        elif flip_idx and i < len(flip_idx) and flip_idx[i] != i:
            out.append("L" if i < flip_idx[i] else "R")
        else:
            out.append("C")
    return out


def draw_keypoints(img: np.ndarray, kpts: np.ndarray, side: Sequence[str], flip_idx: Sequence[int] | None,
                   radius: int = 3, min_vis: float = 0.5, box: np.ndarray | None = None,
                   colour_override: tuple[int, int, int] | None = None) -> None:
    """Draw (K, 2|3) pixel keypoints on ``img`` in place; points with visibility/confidence < min_vis skipped."""
    k = kpts.shape[0]
    vis = kpts[:, 2] if kpts.shape[1] > 2 else np.ones(k)
    ok = vis >= min_vis
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
        cv2.rectangle(img, (x1, y1), (x2, y2), colour_override or BOX_COLOUR, 1, cv2.LINE_AA)
    if flip_idx:
        for i, j in enumerate(flip_idx):
            if i < j < k and ok[i] and ok[j] and side[i] == "L":
                p, q = tuple(int(round(v)) for v in kpts[i, :2]), tuple(int(round(v)) for v in kpts[j, :2])
                cv2.line(img, p, q, colour_override or (180, 180, 180), 1, cv2.LINE_AA)
    for i in range(k):
        if not ok[i]:
            continue
        colour = colour_override or {"L": LEFT, "R": RIGHT}.get(side[i], CENTER)
        c = tuple(int(round(v)) for v in kpts[i, :2])
        cv2.circle(img, c, radius, colour, -1, cv2.LINE_AA)
        cv2.circle(img, c, radius, (0, 0, 0), 1, cv2.LINE_AA)


def caption(img: np.ndarray, text: str) -> None:
    cv2.rectangle(img, (0, 0), (min(img.shape[1], 8 + 7 * len(text)), 16), (0, 0, 0), -1)
    cv2.putText(img, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def legend(width: int, names: Sequence[str] | None, side: Sequence[str], class_name: str = "object") -> np.ndarray:
    """A strip explaining the colours."""
    bar = np.full((18, width, 3), 32, np.uint8)
    x = 4
    for label, colour in (("left", LEFT), ("right", RIGHT), ("centre", CENTER)):
        cv2.circle(bar, (x + 5, 9), 4, colour, -1, cv2.LINE_AA)
        cv2.putText(bar, label, (x + 13, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
        x += 70
    cv2.putText(bar, f"(the {class_name}'s own left/right; lines join left-right partners)", (x, 13), cv2.FONT_HERSHEY_SIMPLEX,
                0.35, (180, 180, 180), 1, cv2.LINE_AA)
    return bar


def training_tile(img_chw: np.ndarray, kpts_norm: np.ndarray, boxes_xywhn: np.ndarray, side: Sequence[str],
                  flip_idx: Sequence[int] | None, label: str) -> np.ndarray:
    """One augmented training image (uint8 CHW, as the loader yields it) with its labels drawn."""
    img = np.ascontiguousarray(img_chw.transpose(1, 2, 0)).copy()  # BGR HWC
    h, w = img.shape[:2]
    for b, kp in zip(boxes_xywhn, kpts_norm):
        cx, cy, bw, bh = b[0] * w, b[1] * h, b[2] * w, b[3] * h
        pts = kp.copy()
        pts[:, 0] *= w
        pts[:, 1] *= h
        draw_keypoints(img, pts, side, flip_idx, box=np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))
    caption(img, label)
    return img
