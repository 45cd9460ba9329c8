"""vsynth checkpoints: plain tensors and containers only, written atomically, loaded safely.

Everything stored (weights, EMA, optimizer, scaler, step, phase, sampler position, RNG states, the
composed config as YAML text) is a tensor, number, string, list, tuple or dict, so the file loads
with ``torch.load(weights_only=True)``: a checkpoint from somewhere else cannot execute code.
``last.pt`` is replaced by rename, so a crash mid-write keeps the previous good one.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsynth.errors import CheckpointError
from vsynth.run.atomic import atomic_write

FORMAT = "vsynth-checkpoint/1"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    payload = {"format": FORMAT, **payload}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """Load a vsynth checkpoint safely; ``key`` is the config key named in errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{key}={path}: not a readable vsynth checkpoint ({first[:160]})") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{key}={path}: not a vsynth checkpoint (no '{FORMAT}' marker)")
    return obj


def is_vsynth_checkpoint(path: str | Path) -> bool:
    try:
        load_checkpoint(path)
        return True
    except CheckpointError:
        return False
