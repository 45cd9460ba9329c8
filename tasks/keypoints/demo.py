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

from vsynth.errors import ConfigError

log = logging.getLogger("vsynth.keypoints")


def _counts(section: Any, key: str) -> dict[str, int]:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(section):
            section = OmegaConf.to_container(section, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(section, Mapping):
        raise ConfigError(f"data.demo.{key} must map splits to image counts, got {section!r}")
    return {str(k): int(v) for k, v in section.items()}


def demo_sources(demo_cfg: Mapping[str, Any], cache: Path) -> dict[str, Any]:
    """Generate (first use) or find the keypoint demo world; paths of its real and synthetic data."""
    from vsynth.data.demo import effects_from_config, ensure_demo

    counts = {"real": _counts(demo_cfg.get("real"), "real"), "synthetic": _counts(demo_cfg.get("synthetic"), "synthetic")}
    size = tuple(int(v) for v in (demo_cfg.get("image_size") or (320, 240)))
    root = ensure_demo("keypoints", Path(cache).expanduser() / "demo", int(demo_cfg.get("seed", 0)), counts, size,
                       log=lambda msg: log.info("demo world: %s", msg),
                       effects=effects_from_config(demo_cfg.get("effects")))
    log.info("demo world: %s", root)
    base = root / "keypoints"
    out: dict[str, Any] = {"root": root, "real_yaml": base / "real" / "data.yaml"}
    try:  # the synthetic COCO carries names and flip_idx; its 24 OKS sigmas are in the world's meta.json
        out["synthetic_sigmas"] = json.loads((root / "meta.json").read_text())["keypoints"]["kpt_oks_sigmas_24"]
    except (OSError, KeyError, ValueError):
        pass
    syn = base / "synthetic"
    if counts["synthetic"].get("train"):
        out["synthetic_coco"] = syn / "annotations" / "train.json"
        out["synthetic_images"] = syn / "images" / "train"
    for split in ("val", "test"):
        if counts["synthetic"].get(split):
            out[f"synthetic_{split}_coco"] = syn / "annotations" / f"{split}.json"
            out[f"synthetic_{split}_images"] = syn / "images" / split
    return out
