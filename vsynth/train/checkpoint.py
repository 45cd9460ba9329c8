"""Every checkpoint vsynth reads or writes goes through this module, and none can run code.

Users hand checkpoints around a team: vsynth's own (``last.pt``, ``best.pt``, slim ``init`` files),
ultralytics ``.pt`` files (which pickle whole model objects), YOLOX ``.pth`` files and
MMSegmentation/mmengine ``.pth`` files (which pickle a few logging objects next to the weights).
A pickle can call any function while it is read, so every file is read with
``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, plus, for a
backend whose files pickle objects, an allow-list of exactly the classes such files are made of
(the task supplies it: :meth:`vsynth.task.Task.checkpoint_allow_list`). A file referencing anything
else is refused before it is unpickled, with one line naming the key, the file and the class. A full
unpickle happens only with ``trust_checkpoint=true``, and says so in run.log.

vsynth's own files hold only plain data (the composed config is YAML text), are written to a temp
file, flushed to disk and renamed over the old one, so a crash never leaves a half-written
``last.pt``. :func:`read_weights` turns any of the kinds above into one :class:`Weights` (EMA
weights when the file has them), so no task decodes checkpoints itself.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping, Sequence

import numpy as np
import torch

from vsynth.errors import CheckpointError
from vsynth.run.atomic import atomic_write

log = logging.getLogger("vsynth.checkpoint")

FORMAT = "vsynth-checkpoint/1"

#: A backend's allow-list: a context manager factory that, entered around the load of ``path``,
#: allows the globals that backend's checkpoints are made of (``torch.serialization.safe_globals``).
AllowList = Callable[[Path], ContextManager[Any]]


# ---- RNG state (part of last.pt) ------------------------------------------------------------------

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


# ---- writing ----------------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a vsynth checkpoint atomically (temp file, fsync, rename)."""
    payload = {"format": FORMAT, **payload}
    atomic_write(path, lambda tmp: torch.save(payload, tmp), fsync=True)


# ---- reading: the one safe load -----------------------------------------------------------------------

def _numpy_data_globals() -> list[Any]:
    """numpy arrays, dtypes and scalars: data, stored by YOLOX (``best_ap``) and mmengine (log buffers)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    out: list[Any] = [np.ndarray, np.dtype, type(np.dtype(np.float64))]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # files name the numpy that wrote them
        out += [(multiarray.scalar, f"{mod}.scalar"), (multiarray._reconstruct, f"{mod}._reconstruct")]
    out += [type(np.dtype(t)) for t in (np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_)]
    return out


_UNSUPPORTED = re.compile(r"(?:Unsupported global: GLOBAL|Unsupported class|global) ([\w.]+)")


def _pickle_globals(path: Path, max_pickles: int = 8) -> list[str]:
    """The globals a raw (non-zip) pickle file references, in order, read statically with
    :mod:`pickletools` (nothing is executed; every protocol, unlike torch's own scanner)."""
    import pickletools

    found: list[str] = []
    with open(path, "rb") as f:
        for _ in range(max_pickles):  # a legacy torch file is a few pickles in a row
            pushed: list[Any] = []
            memo: dict[Any, Any] = {}
            try:
                for op, arg, _pos in pickletools.genops(f):
                    name = op.name
                    if name == "GLOBAL":
                        found.append(str(arg).replace(" ", "."))
                    elif name == "STACK_GLOBAL" and len(pushed) >= 2:
                        found.append(f"{pushed[-2]}.{pushed[-1]}")
                    elif name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
                                  "BINSTRING", "SHORT_BINSTRING"):
                        pushed.append(arg)
                    elif name in ("BINPUT", "LONG_BINPUT", "PUT") and pushed:
                        memo[arg] = pushed[-1]
                    elif name == "MEMOIZE" and pushed:
                        memo[len(memo)] = pushed[-1]
                    elif name in ("BINGET", "LONG_BINGET", "GET"):
                        pushed.append(memo.get(arg))
                    if name == "STOP":
                        break
            except Exception:  # noqa: BLE001  (the end of the file, or not a pickle at all)
                break
    return found


def _unsafe(names: Sequence[str]) -> list[str]:
    """Those of ``names`` that ``torch.load(weights_only=True)`` does not allow right now."""
    try:
        from torch import _weights_only_unpickler as wou

        allowed = set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
    except (ImportError, AttributeError):  # another torch: name every non-builtin global
        allowed = set()
    return [n for n in names if n not in allowed and not n.startswith(("torch._utils.", "collections.OrderedDict"))]


def _offending_global(e: BaseException, path: Path) -> str | None:
    m = _UNSUPPORTED.search(str(e))
    if m:
        return m.group(1)
    bad = _unsafe(_pickle_globals(path))
    return bad[0] if bad else None


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__


@contextlib.contextmanager
def _allowed(path: Path, allow: Sequence[AllowList]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.serialization.safe_globals(_numpy_data_globals()))
        for a in allow:
            stack.enter_context(a(path))
        yield


def _refuse(key: str, path: Path, name: str) -> CheckpointError:
    return CheckpointError(
        f"{key}={path}: refused: the file references '{name}', which is not a class such checkpoints are made of "
        "(unpickling it could run code); if you trust the file, trust_checkpoint=true loads it in full")


def read_checkpoint(path: str | Path, key: str = "ckpt", *, allow: Sequence[AllowList] = (),
                    trust: bool = False) -> Any:
    """Unpickle ``path`` safely (see the module docstring); ``key`` is the config key named in errors.

    ``trust=True`` (``trust_checkpoint=true``) unpickles the file in full, with a warning in run.log.
    """
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: file not found")
    if trust:
        log.warning("%s=%s: trust_checkpoint=true: unpickling the file in full (it can run code; only for files "
                    "you trust)", key, path)
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{key}={path}: not a readable checkpoint ({_first_line(e)})") from e
    with _allowed(path, allow):
        try:
            offenders = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except (ValueError, RuntimeError, OSError):  # not a torch zip archive: the restricted unpickler names it
            offenders = []
        if offenders:
            raise _refuse(key, path, sorted(offenders)[0])
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            name = _offending_global(e, path)
            if name:
                raise _refuse(key, path, name) from e
            raise CheckpointError(f"{key}={path}: not a readable checkpoint ({_first_line(e)})") from e
        except (RuntimeError, EOFError, ValueError, AttributeError, TypeError, OSError, KeyError) as e:
            raise CheckpointError(f"{key}={path}: not a readable checkpoint ({_first_line(e)})") from e


def load_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """A vsynth checkpoint (``last.pt``, ``best.pt``, a slim ``init``): plain data, format checked."""
    obj = read_checkpoint(path, key)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{key}={Path(str(path)).expanduser()}: not a vsynth checkpoint (no '{FORMAT}' marker)")
    return obj


def run_config(path: str | Path) -> str | None:
    """The composed config (YAML text) stored in a vsynth checkpoint, or None for any other file.

    Memory-maps the file (zip format), so asking costs little even for a large checkpoint; never raises.
    """
    try:
        obj = torch.load(Path(str(path)).expanduser(), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  (another kind of file, unsafe, missing: the real read reports it)
        return None
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("config"), str):
        return obj["config"]
    return None


def is_vsynth_checkpoint(path: str | Path) -> bool:
    try:
        load_checkpoint(path)
        return True
    except CheckpointError:
        return False


# ---- weights of any kind -------------------------------------------------------------------------------

@dataclass
class Weights:
    """The model weights found in a checkpoint file, whatever wrote it."""

    state: dict[str, torch.Tensor]
    kind: str  # vsynth | ultralytics (or another pickled model's package) | mmseg | yolox | state_dict
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)  # vsynth: the task's checkpoint_meta(); pickled models: yaml
    task: str | None = None  # the task of a vsynth checkpoint
    which: str = "model"  # ema | model: which weights of the file these are
    config: str | None = None  # the composed config (YAML text) of the run that wrote a vsynth checkpoint


def _is_state(x: Any) -> bool:
    return isinstance(x, Mapping) and bool(x) and all(isinstance(v, torch.Tensor) for v in x.values())


def _strip_ddp(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def weights_of(obj: Any, path: Path, key: str, task_name: str | None = None, prefer: str = "ema") -> Weights:
    """The weights in an already-read checkpoint object (see :func:`read_weights`)."""
    from torch import nn

    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if task_name is not None and obj.get("task") not in (None, task_name):
            raise CheckpointError(f"{key}={path}: a checkpoint of task '{obj.get('task')}', not {task_name}")
        ema = obj.get("ema")
        which = "ema" if prefer == "ema" and ema else "model"
        state = ema["module"] if which == "ema" else obj["model"]
        return Weights(dict(state), "vsynth", path, dict(obj.get("meta") or {}), obj.get("task"), which,
                       obj.get("config"))
    if isinstance(obj, dict):
        for which in (("ema", "model") if prefer == "ema" else ("model", "ema")):
            m = obj.get(which)
            if isinstance(m, nn.Module):  # a pickled model (ultralytics saves whole models, EMA first)
                meta = {"yaml": getattr(m, "yaml", None)} if getattr(m, "yaml", None) is not None else {}
                return Weights(m.float().state_dict(), type(m).__module__.split(".")[0], path, meta, which=which)
        if isinstance(obj.get("state_dict"), Mapping):  # mmengine / mmseg (and Lightning) checkpoints
            state = {k: v for k, v in obj["state_dict"].items() if isinstance(v, torch.Tensor)}
            if state:
                return Weights(_strip_ddp(state), "mmseg", path, {})
        if _is_state(obj.get("model")):  # YOLOX's trainer: {"model": state_dict, "optimizer": ..., "best_ap": ...}
            return Weights(_strip_ddp(obj["model"]), "yolox", path, {})
    if _is_state(obj):
        return Weights(_strip_ddp(obj), "state_dict", path, {})
    keys = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{key}={path}: holds no model weights (expected a vsynth checkpoint, a pickled model, "
                          f"{{'state_dict': ...}}, {{'model': state_dict}} or a state dict; found {keys})")


def read_weights(path: str | Path, key: str = "init", *, task_name: str | None = None,
                 allow: Sequence[AllowList] = (), trust: bool = False, prefer: str = "ema") -> Weights:
    """The model weights in any checkpoint vsynth accepts, read safely.

    ``prefer="ema"`` takes a file's EMA weights when it has them (what vsynth evaluated and chose
    ``best.pt`` with), ``"model"`` the raw ones. ``task_name`` refuses a vsynth checkpoint of another
    task. ``allow``/``trust``: see :func:`read_checkpoint`.
    """
    path = Path(str(path)).expanduser()
    return weights_of(read_checkpoint(path, key, allow=allow, trust=trust), path, key, task_name, prefer)
