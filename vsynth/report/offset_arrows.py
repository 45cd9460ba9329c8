"""The keypoint audit's picture: mean offset arrows of two prediction sets on a reference skeleton.

A convention shift is a direction as much as a size ("the wheel points moved down"), so the
audit draws it: every keypoint at its position on a reference object (relative to the box centre,
in units of object scale), its skeleton edges, and from each point the mean offset of each
prediction set, magnified by a stated factor so that offsets of a few percent of the object
scale are visible. Flagged keypoints are named in red. Matplotlib's bundled font only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

_COLORS = ("#d62728", "#1f77b4")  # first prediction set red, second blue


def magnification(offsets: np.ndarray, extent: float) -> float:
    """A round factor (1, 2, 5 x 10^n) that draws the largest offset at about 15 % of ``extent``."""
    biggest = float(np.nanmax(np.hypot(offsets[..., 0], offsets[..., 1]))) if np.isfinite(offsets).any() else 0.0
    if biggest <= 0 or extent <= 0:
        return 1.0
    raw = 0.15 * extent / biggest
    if raw <= 1:
        return 1.0
    base = 10 ** math.floor(math.log10(raw))
    return float(max(f * base for f in (1, 2, 5) if f * base <= raw))


def draw_offset_arrows(path: str | Path, layout: np.ndarray, names: Sequence[str], offsets: Mapping[str, np.ndarray],
                       flagged: Sequence[str], skeleton: Sequence[tuple[int, int]] = (), title: str = "") -> float:
    """Write the PNG; returns the arrow magnification used.

    ``layout`` (K, 2) reference positions and ``offsets`` {label: (K, 2)} mean offsets, both in
    units of object scale with y down (image axes); NaN entries are skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = np.isfinite(layout).all(axis=1)
    extent = float(np.ptp(layout[ok], axis=0).max()) if ok.sum() > 1 else 1.0
    stacked = np.stack(list(offsets.values())) if offsets else np.zeros((0, len(names), 2))
    mag = magnification(stacked, extent)
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=120)
    for a, b in skeleton:
        if ok[a] and ok[b]:
            ax.plot(layout[[a, b], 0], layout[[a, b], 1], color="0.75", lw=1.2, zorder=1)
    ax.scatter(layout[ok, 0], layout[ok, 1], s=22, color="0.3", zorder=2)
    for (label, off), color in zip(offsets.items(), _COLORS):
        good = ok & np.isfinite(off).all(axis=1)
        ax.quiver(layout[good, 0], layout[good, 1], off[good, 0] * mag, off[good, 1] * mag, angles="xy",
                  scale_units="xy", scale=1, color=color, width=0.004, zorder=3, label=f"{label} (x{mag:g})")
    tips = [layout + off * mag for off in offsets.values()]
    pts = np.concatenate([layout] + tips)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if pts.size:
        pad = 0.08 * max(float(np.ptp(pts, axis=0).max()), 1e-6)
        ax.set_xlim(pts[:, 0].min() - pad, pts[:, 0].max() + 3 * pad)
        ax.set_ylim(pts[:, 1].min() - pad, pts[:, 1].max() + pad)
    bad = set(flagged)
    for j, name in enumerate(names):
        if ok[j]:
            ax.annotate(name, layout[j], textcoords="offset points", xytext=(4, -9), fontsize=6.5,
                        color="#b00000" if name in bad else "0.25", fontweight="bold" if name in bad else "normal")
    ax.invert_yaxis()  # image axes: y down
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x relative to box centre (object scale)")
    ax.set_ylabel("y (object scale, down)")
    flagged_text = ", ".join(flagged) if flagged else "none"
    ax.set_title((title + "\n" if title else "") + f"flagged (offset differs): {flagged_text}", fontsize=8)
    ax.legend(loc="best", fontsize=7, title=f"mean offset, arrows x{mag:g}", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return mag
