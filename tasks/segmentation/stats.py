"""``data_stats.json``: how each training source looks, on a bounded sample of its images.

Answers "is this really generated, and how different is it" in every run folder, the way the
users checked by hand: per source the RGB mean and std (over all sampled pixels, 0..255), the
mean per-image std (contrast; style transfer often washes images out), label class frequencies
(fractions of labelled pixels) and the ignored fraction; for ``generated`` also the mean absolute
difference to each image's source image. ``gap`` compares every source with ``real``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from tasks.segmentation.data import Classes, SegItem, source_summary
from vsynth.errors import DataError


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def sample_indices(n_items: int, per_source: int, seed: int) -> list[int]:
    if per_source is None or per_source >= n_items:
        return list(range(n_items))
    return sorted(np.random.default_rng(seed).choice(n_items, size=int(per_source), replace=False).tolist())


def source_stats(items: Sequence[SegItem], classes: Classes, per_source: int | None, seed: int) -> dict[str, Any]:
    idx = sample_indices(len(items), per_source, seed)
    s = np.zeros(3)
    s2 = np.zeros(3)
    npx = 0
    img_std = []
    counts = np.zeros(256, np.int64)
    diffs = []
    sizes: dict[str, int] = {}
    for i in idx:
        it = items[i]
        img = _read_rgb(it.image).astype(np.float64)
        h, w = img.shape[:2]
        sizes[f"{w}x{h}"] = sizes.get(f"{w}x{h}", 0) + 1
        flat = img.reshape(-1, 3)
        s += flat.sum(0)
        s2 += (flat**2).sum(0)
        npx += flat.shape[0]
        img_std.append(flat.std(0))
        lab = cv2.imread(str(it.label), cv2.IMREAD_UNCHANGED)
        if lab is not None and lab.ndim == 2:
            counts += np.bincount(lab.reshape(-1).astype(np.int64), minlength=256)[:256]
        if it.origin is not None:
            src = _read_rgb(it.origin).astype(np.float64)
            if src.shape != img.shape:
                src = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)
            diffs.append(float(np.abs(img - src).mean()))
    mean = s / max(npx, 1)
    std = np.sqrt(np.maximum(s2 / max(npx, 1) - mean**2, 0.0))
    labelled = counts[: classes.num].sum()
    total = counts.sum()
    out: dict[str, Any] = {
        **source_summary(items),
        "sampled": len(idx),
        "image_sizes": sizes,
        "rgb_mean": [round(float(v), 3) for v in mean],
        "rgb_std": [round(float(v), 3) for v in std],
        "rgb_std_per_image": [round(float(v), 3) for v in (np.mean(img_std, 0) if img_std else np.zeros(3))],
        "label_freq": {name: round(float(counts[c] / labelled), 6) if labelled else 0.0
                       for c, name in enumerate(classes.names)},
        "ignore_fraction": round(float(counts[classes.ignore_index] / total), 6) if total else 0.0,
    }
    if diffs:
        out["vs_source"] = {"mean_abs_diff": round(float(np.mean(diffs)), 3),
                            "mean_abs_diff_fraction": round(float(np.mean(diffs)) / 255.0, 4)}
    return out


def data_stats(train: Mapping[str, Sequence[SegItem]], classes: Classes, per_batch: Mapping[str, int] | None,
               per_source: int | None, seed: int) -> dict[str, Any]:
    sources = {}
    for name, items in train.items():
        st = source_stats(items, classes, per_source, seed) if items else {"images": 0}
        if per_batch is not None:
            st["per_batch"] = int(per_batch.get(name, 0))
        sources[name] = st
    out: dict[str, Any] = {"per_source_sample": per_source, "seed": seed, "classes": classes.names,
                           "ignore_index": classes.ignore_index, "sources": sources}
    if "real" in sources:
        ref = sources["real"]
        gap = {}
        for name, st in sources.items():
            if name == "real" or not st.get("images") or not ref.get("images"):
                continue
            gap[name] = {
                "rgb_mean_diff": [round(a - b, 3) for a, b in zip(st["rgb_mean"], ref["rgb_mean"])],
                "rgb_std_ratio": [round(a / b, 3) if b else None for a, b in zip(st["rgb_std"], ref["rgb_std"])],
                "label_freq_l1": round(sum(abs(st["label_freq"][c] - ref["label_freq"][c]) for c in classes.names), 6),
            }
        out["gap_vs_real"] = gap
    return out


def summary_lines(stats: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, st in stats["sources"].items():
        if not st.get("images"):
            continue
        extra = ""
        if "vs_source" in st:
            extra = f", |generated - source| = {st['vs_source']['mean_abs_diff']:.1f}/255"
        lines.append(f"Data stats '{name}' ({st['sampled']} of {st['images']} images): RGB mean {st['rgb_mean']}, "
                     f"std {st['rgb_std']}, per-image std {st['rgb_std_per_image']}{extra}")
    return lines
