"""The demo world as keypoint sources: generated once by ``vsynth.data.demo.ensure_demo``.

Returns the same kinds of inputs a user gives (a YOLO-pose data YAML for ``real``, COCO keypoints
JSONs with their image folders for ``synthetic``), so the demo runs through the real code paths:
the 24-point synthetic COCO is converted with ``data.synthetic.keypoint_map`` like user data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger("vsynth.keypoints")


def demo_sources(demo_cfg: Mapping[str, Any], cache: Path) -> dict[str, Any]:
    """Generate (first use) or find the keypoint demo world; paths of its real and synthetic data."""
    from vsynth.data.demo.settings import demo_counts, demo_world

    root = demo_world("keypoints", demo_cfg, cache)
    counts = demo_counts(demo_cfg) or {}
    base = root / "keypoints"
    out: dict[str, Any] = {"root": root, "real_yaml": base / "real" / "data.yaml"}
    try:  # the synthetic COCO carries names and flip_idx; its 24 OKS sigmas are in the world's meta.json
        out["synthetic_sigmas"] = json.loads((root / "meta.json").read_text())["keypoints"]["kpt_oks_sigmas_24"]
    except (OSError, KeyError, ValueError):
        pass
    syn = base / "synthetic"
    if (counts.get("synthetic") or {}).get("train"):
        out["synthetic_coco"] = syn / "annotations" / "train.json"
        out["synthetic_images"] = syn / "images" / "train"
    for split in ("val", "test"):
        if (counts.get("synthetic") or {}).get(split):
            out[f"synthetic_{split}_coco"] = syn / "annotations" / f"{split}.json"
            out[f"synthetic_{split}_images"] = syn / "images" / split
    return out
