"""A resumed run is the run it claims to be: its config may not drift from the one it started with.

Rerunning a command in a run folder continues that run (``last.pt``). If the composed config differs
from the one the run started with (``.hydra/config.yaml``, kept by :mod:`vsynth.run.placement`) in a
key that changes the result (data, arm, model, task, the trainer's recipe, seed, length...), the
folder would claim one run while holding another, so the resume is refused with every differing key
and its two values. Keys that cannot change the result (:data:`FREE`: threads, workers, progress
bar, logging, paths, device, the speed knobs, launcher) may differ. ``resume=force`` continues
anyway and records the drift in run.log and ``status.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

#: keys (or key prefixes ending in ".") that may differ between a run and its resume
FREE: tuple[str, ...] = (
    "trainer.threads", "trainer.workers", "trainer.progress_bar", "trainer.log_interval", "trainer.tensorboard",
    "trainer.stop_at_step", "eval.batch", "eval.workers", "paths.", "resume", "device", "name", "trust_checkpoint",
    # speed knobs: how the same computation is laid out (like `device`, at most floating-point rounding differs)
    "trainer.pin_memory", "trainer.persistent_workers", "trainer.cudnn_benchmark", "trainer.channels_last",
    "trainer.compile", "trainer.optimizer.fused",
)


def _free(key: str) -> bool:
    return any(key == f or (f.endswith(".") and key.startswith(f)) or key.startswith(f + ".") for f in FREE)


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _flatten(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data, interpolations resolved where they can be (else kept as written)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001  (e.g. an environment variable gone: compare what was written)
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def original_config(run_dir: Path) -> DictConfig | None:
    p = Path(run_dir) / ".hydra" / "config.yaml"
    return OmegaConf.load(p) if p.is_file() else None


def config_drift(original: DictConfig, current: DictConfig) -> list[tuple[str, Any, Any]]:
    """``(key, value the run started with, value now)`` for every result-changing key that differs."""
    a, b = dict(_flatten(_plain(original))), dict(_flatten(_plain(current)))
    out = []
    for key in sorted(set(a) | set(b)):
        if _free(key):
            continue
        va, vb = a.get(key), b.get(key)  # a key one side lacks counts as null (a schema default added later)
        if va != vb:
            out.append((key, va, vb))
    return out


def describe(drift: list[tuple[str, Any, Any]], limit: int = 8) -> str:
    parts = [f"{k}: {a!r} -> {b!r}" for k, a, b in drift[:limit]]
    more = f" (and {len(drift) - limit} more)" if len(drift) > limit else ""
    return "; ".join(parts) + more
