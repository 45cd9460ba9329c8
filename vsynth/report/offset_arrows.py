"""The keypoint audit's picture: mean offset arrows of two prediction sets on a reference skeleton.

A convention shift is a direction as much as a size ("the wheel points moved down"), so the
audit draws it: every keypoint at its position on a reference object (relative to the box centre,
in units of object scale), its skeleton edges, and from each point the mean offset of each
prediction set (left) and their difference (right), each panel magnified by a stated factor so
that offsets of a few percent of the object scale are visible. Flagged keypoints are red. Matplotlib's bundled font only.
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


def _panel(ax, layout: np.ndarray, ok: np.ndarray, names: Sequence[str], arrows: list[tuple[str, np.ndarray, str]],
           flagged: set[str], skeleton: Sequence[tuple[int, int]], extent: float, what: str) -> float:
    """One panel: skeleton, points, names and ``arrows`` (label, (K, 2) offsets, colour); its magnification."""
    mag = magnification(np.stack([off for _, off, _ in arrows]), extent)
    for a, b in skeleton:
        if ok[a] and ok[b]:
            ax.plot(layout[[a, b], 0], layout[[a, b], 1], color="0.8", lw=1.0, zorder=1)
    ax.scatter(layout[ok, 0], layout[ok, 1], s=18, color="0.35", zorder=2)
    tips = [layout]
    for label, off, color in arrows:
        good = ok & np.isfinite(off).all(axis=1)
        ax.quiver(layout[good, 0], layout[good, 1], off[good, 0] * mag, off[good, 1] * mag, angles="xy",
                  scale_units="xy", scale=1, color=color, width=0.005, zorder=3, alpha=0.9, label=label)
        tips.append(layout + off * mag)
    pts = np.concatenate(tips)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if pts.size:
        pad = 0.08 * max(float(np.ptp(pts, axis=0).max()), 1e-6)
        ax.set_xlim(pts[:, 0].min() - pad, pts[:, 0].max() + 3 * pad)
        ax.set_ylim(pts[:, 1].min() - pad, pts[:, 1].max() + pad)
    for j, name in enumerate(names):
        if ok[j]:
            bad = name in flagged
            ax.annotate(name, layout[j], textcoords="offset points", xytext=(4, -9), fontsize=6,
                        color="#b00000" if bad else "0.3", fontweight="bold" if bad else "normal")
    ax.invert_yaxis()  # image axes: y down
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x relative to box centre (object scale)", fontsize=7)
    ax.set_ylabel("y (object scale, down)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(loc="best", fontsize=6, title=f"{what}, arrows x{mag:g}", title_fontsize=6)
    return mag


def draw_offset_arrows(path: str | Path, layout: np.ndarray, names: Sequence[str], offsets: Mapping[str, np.ndarray],
                       flagged: Sequence[str], skeleton: Sequence[tuple[int, int]] = (), title: str = "") -> list[float]:
    """Write the PNG; returns the arrow magnification of each panel.

    ``layout`` (K, 2) reference positions and ``offsets`` {label: (K, 2)} mean offsets, both in
    units of object scale with y down (image axes); NaN entries are skipped. With two prediction
    sets a second panel shows their difference (flagged keypoints red, the others grey), with its
    own magnification: the difference is usually much smaller than what both sets share.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = np.isfinite(layout).all(axis=1)
    extent = float(np.ptp(layout[ok], axis=0).max()) if ok.sum() > 1 else 1.0
    bad = set(flagged)
    items = list(offsets.items())
    panels = [([(label, off, color) for (label, off), color in zip(items, _COLORS)], "mean offset")]
    if len(items) == 2:
        (la, a), (lb, b) = items
        diff = a - b
        is_bad = np.array([n in bad for n in names])
        panels.append(([(f"{la} - {lb}, flagged", np.where(is_bad[:, None], diff, np.nan), "#d62728"),
                        (f"{la} - {lb}", np.where(is_bad[:, None], np.nan, diff), "0.55")], "difference"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.2), dpi=120, squeeze=False)
    mags = [_panel(ax, layout, ok, names, arrows, bad, skeleton, extent, what)
            for ax, (arrows, what) in zip(axes[0], panels)]
    flagged_text = ", ".join(flagged) if flagged else "none"
    fig.suptitle((title + "\n" if title else "") + f"flagged (offset differs): {flagged_text}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return mags
