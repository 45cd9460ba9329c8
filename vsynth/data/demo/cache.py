"""Generate-once access to the demo world for the tasks (`ensure_demo`).

A world is identified by a hash of everything that determines its content (task, seed, counts,
size, demo version, injected effects if any), so changing any of them gives a new folder and an unchanged request reuses
the old one. Generation goes to a temporary sibling folder that is renamed into place: rename is
atomic, so a folder under its final name is always complete, and two processes racing to create
the same world both end up using one intact copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from vsynth.data.demo.effects import NO_EFFECTS, Effects
from vsynth.data.demo.world import TASKS
from vsynth.data.demo.writer import DEFAULT_IMAGES, DEFAULT_SIZE, DEMO_VERSION, Log, default_counts, normalize_counts, write_demo
from vsynth.errors import ConfigError


def demo_key(task: str, seed: int, counts: dict | None, size: tuple[int, int], effects: Effects = NO_EFFECTS) -> str:
    """Hex digest naming the world for these parameters (stable across runs and machines).

    Injected effects enter the key only when set, so a world without them keeps its old name.
    """
    counts = normalize_counts(counts if counts is not None else default_counts(DEFAULT_IMAGES))
    params = {"version": DEMO_VERSION, "task": task, "seed": int(seed), "counts": counts, "size": [int(v) for v in size]}
    if effects.cache_params():
        params["effects"] = effects.cache_params()
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def check_effects(tasks: list[str] | tuple[str, ...], effects: Effects, counts: dict | None,
                  key: str = "data.demo.effects") -> None:
    """ConfigError for an injected effect a world of ``tasks`` cannot carry (it would be silently ignored)."""
    if effects.keypoint_shift is not None and "keypoints" not in tasks:
        raise ConfigError(f"{key}.keypoint_shift: the {'/'.join(tasks)} demo has no keypoint labels to shift")
    generated = normalize_counts(counts if counts is not None else default_counts(DEFAULT_IMAGES)).get("generated", {})
    if effects.generated_warp != 1.0 and not any(generated.values()):
        raise ConfigError(f"{key}.generated_warp={effects.generated_warp:g}: this {'/'.join(tasks)} demo world has "
                          "no generated images to warp (set data.demo.counts.generated, e.g. {train: 160})")


def ensure_demo(
    task: str,
    cache_dir: str | Path,
    seed: int,
    counts: dict | None,
    size: tuple[int, int] = DEFAULT_SIZE,
    log: Log | None = None,
    effects: Effects = NO_EFFECTS,
) -> Path:
    """Return ``ROOT`` = ``cache_dir/<task>-<key>`` holding ``ROOT/<task>/...`` and ``ROOT/meta.json``,
    generating it on first use.

    ``counts`` is ``{domain: {split: n}}``, e.g. ``{"real": {"train": 200, "val": 50, "test": 100},
    "synthetic": {"train": 200, "val": 50}, "generated": {"train": 200}}``; None means
    ``default_counts(200)``. The cache location is the caller's choice (e.g. ``~/.cache/vsynth/demo``).
    ``effects``: known effects to inject (:mod:`vsynth.data.demo.effects`; default none).
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {list(TASKS)}, got {task!r}")
    check_effects([task], effects, counts)
    cache_dir = Path(cache_dir).expanduser()
    key = demo_key(task, seed, counts, size, effects)[:16]
    root = cache_dir / f"{task}-{key}"
    if (root / "meta.json").is_file():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{task}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_demo(tmp, [task], seed, counts, size, final_root=root.absolute(), log=log, effects=effects)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "meta.json").is_file():  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
