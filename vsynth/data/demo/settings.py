"""``data.demo``: one spelling for every task, and the world it asks for.

Every task's demo data is configured the same way (``conf/data/demo_*.yaml``)::

    demo:
      enabled: true
      seed: 0
      image_size: [320, 240]                 # width, height
      counts: {real: {train: 160, val: 48, test: 96}, synthetic: {...}, generated: {...}}
      effects: {...}                         # injected known effects (vsynth/data/demo/effects.py)

plus task-specific keys (keypoints: ``init``; segmentation: ``manifest``). The world is generated
once into ``${paths.cache}/demo`` (:func:`vsynth.data.demo.ensure_demo`) and then read like user data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from vsynth.errors import ConfigError

log = logging.getLogger("vsynth.demo")


def _plain(x: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


def demo_counts(demo_cfg: Mapping[str, Any], key: str = "data.demo.counts") -> dict[str, dict[str, int]] | None:
    """``data.demo.counts`` as ``{domain: {split: n}}`` (domains set to null left out); None = the default."""
    counts = _plain(demo_cfg.get("counts"))
    if counts is None or counts == {}:
        return None
    if not isinstance(counts, Mapping):
        raise ConfigError(f"{key} must map domains to {{split: images}}, got {counts!r}")
    if all(v is None for v in counts.values()):
        return None
    out: dict[str, dict[str, int]] = {}
    for domain, splits in counts.items():
        if splits is None:
            continue
        if not isinstance(splits, Mapping):
            raise ConfigError(f"{key}.{domain} must map splits to image counts, got {splits!r}")
        try:
            out[str(domain)] = {str(s): int(n) for s, n in splits.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"{key}.{domain}: image counts must be whole numbers, got {splits!r}") from None
    return out


def demo_world(task: str, demo_cfg: Mapping[str, Any] | None, cache: str | Path) -> Path | None:
    """The demo world of ``task`` that ``data.demo`` asks for (generated on first use), or None when disabled."""
    from vsynth.data.demo import DEFAULT_SIZE, effects_from_config, ensure_demo

    demo_cfg = demo_cfg or {}
    if not demo_cfg.get("enabled", False):
        return None
    size = _plain(demo_cfg.get("image_size")) or DEFAULT_SIZE
    try:
        size = (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"data.demo.image_size must be [width, height], got {size!r}") from None
    root = ensure_demo(task, Path(str(cache)).expanduser() / "demo", int(demo_cfg.get("seed", 0)), demo_counts(demo_cfg),
                       size, log=lambda m: log.info("demo world: %s", m),
                       effects=effects_from_config(demo_cfg.get("effects")))
    log.info("demo world (%s): %s", task, root)
    return root
