"""The YOLOX model: built at any of YOLOX's sizes, initialised from a local checkpoint.

Sizes follow YOLOX's own exps (``model.depth`` / ``model.width`` / ``model.depthwise`` in
``conf/model/yolox_*.yaml``): nano 0.33/0.25 depthwise, tiny 0.33/0.375, s 0.33/0.50,
m 0.67/0.75, l 1.0/1.0, x 1.33/1.25. The model is YOLOX's ``YoloxModule`` built exactly as
``YoloxConfig.get_model`` builds it (BatchNorm eps 1e-3 / momentum 0.03, prior-probability biases),
with the number of classes from the data. Its module names are YOLOX's, so ``backbone.backbone``
is the CSPDarknet (frozen in the ``frozen`` phase), ``backbone`` the PAFPN neck around it and
``head`` the detection head.

Weights, all local (nothing is ever downloaded):

* ``init=PATH`` to YOLOX's own ``.pth`` (a dict with a ``"model"`` state dict, e.g. a COCO
  ``yolox_l.pth`` or a ``best_ckpt.pth`` from YOLOX's trainer), a plain state dict, or a vsynth
  checkpoint (its EMA weights): tensors are transferred by name and shape; those whose shape
  differs (the class head of an 80-class COCO checkpoint) are skipped and listed in run.log.
* ``mode=eval ckpt=PATH``: the same files, but every tensor must fit (strict).

YOLOX checkpoints are read with ``torch.load(weights_only=True)`` (through YOLOX's own loader,
which also admits the numpy scalars older YOLOX trainers stored). Only if that refuses the file
and ``task.init_unsafe_fallback`` is true is the user-given file unpickled in full, with a warning.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from vsynth.errors import CheckpointError, ConfigError
from vsynth.train.transfer import load_matched, match_state

log = logging.getLogger("vsynth.detection")

#: at least this fraction of the model's tensors must come from an ``init`` checkpoint
MIN_TRANSFER = 0.5

#: YOLOX's exps: (depth, width, depthwise) per size, used to check ``conf/model/yolox_*.yaml``
YOLOX_SIZES: dict[str, tuple[float, float, bool]] = {
    "yolox_nano": (0.33, 0.25, True),
    "yolox_tiny": (0.33, 0.375, False),
    "yolox_s": (0.33, 0.50, False),
    "yolox_m": (0.67, 0.75, False),
    "yolox_l": (1.0, 1.0, False),
    "yolox_x": (1.33, 1.25, False),
}


def model_spec(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``model.*`` as YOLOX arguments, checked (one ConfigError line naming the key)."""
    name = str(model_cfg.get("name"))
    try:
        depth, width = float(model_cfg["depth"]), float(model_cfg["width"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"model={name}: needs numeric model.depth and model.width (see conf/model/yolox_*.yaml)") from None
    if depth <= 0 or width <= 0:
        raise ConfigError(f"model.depth and model.width must be > 0, got {depth} and {width}")
    act = str(model_cfg.get("act", "silu"))
    if act not in ("silu", "relu", "lrelu"):
        raise ConfigError(f"model.act must be silu, relu or lrelu, got '{act}'")
    return {"name": name, "depth": depth, "width": width, "depthwise": bool(model_cfg.get("depthwise", False)), "act": act}


def build_yolox(spec: Mapping[str, Any], num_classes: int, seed: int = 0) -> nn.Module:
    """A fresh ``YoloxModule`` for ``num_classes`` classes, as ``YoloxConfig.get_model`` builds it."""
    from yolox.models import YoloPafpn, YoloxHead, YoloxModule

    if num_classes < 1:
        raise ConfigError(f"the data has {num_classes} classes; a detector needs at least one")
    torch.manual_seed(seed)  # fresh weights depend on the run seed only
    in_channels = [256, 512, 1024]
    backbone = YoloPafpn(spec["depth"], spec["width"], in_channels=in_channels, depthwise=spec["depthwise"], act=spec["act"])
    head = YoloxHead(num_classes, spec["width"], in_channels=in_channels, depthwise=spec["depthwise"], act=spec["act"])
    model = YoloxModule(backbone, head)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
            m.momentum = 0.03
    model.head.initialize_biases(1e-2)
    model.train()
    return model


# ---- reading checkpoints -----------------------------------------------------------------------
def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__


def _torch_load_safe(path: Path) -> Any:
    from yolox.utils import load_checkpoint

    return load_checkpoint(str(path), map_location="cpu")


def read_weights(path: str | Path, key: str = "init", task_name: str = "detection",
                 unsafe_fallback: bool = False) -> dict[str, Any]:
    """The weights in a vsynth, YOLOX or plain state-dict checkpoint.

    Returns ``{"state": state_dict, "kind": "vsynth" | "yolox" | "state_dict", "meta": {...}}``.
    ``key`` is the config key named in errors (``init`` or ``ckpt``).
    """
    from vsynth.train.checkpoint import FORMAT

    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: file not found")
    try:
        obj = _torch_load_safe(path)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, OSError) as e:
        if not unsafe_fallback or "Refusing to load" not in str(e):
            raise CheckpointError(f"{key}={path}: not a readable checkpoint ({_first_line(e)})") from e
        log.warning("%s=%s: torch.load(weights_only=True) refused the file; unpickling it in full because "
                    "task.init_unsafe_fallback=true (only do this for files you trust)", key, path)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # noqa: BLE001
            raise CheckpointError(f"{key}={path}: not a readable checkpoint ({_first_line(e2)})") from e2
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("task") not in (None, task_name):
            raise CheckpointError(f"{key}={path}: a checkpoint of task '{obj.get('task')}', not {task_name}")
        state = obj["ema"]["module"] if obj.get("ema") else obj["model"]
        return {"state": state, "kind": "vsynth", "meta": dict(obj.get("meta") or {})}
    if isinstance(obj, dict) and isinstance(obj.get("model"), Mapping):
        state = obj["model"]
        kind = "yolox"
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), Mapping):
        state, kind = obj["state_dict"], "state_dict"
    else:
        state, kind = obj, "state_dict"
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{key}={path}: holds no model weights (expected YOLOX's {{'model': state_dict}}, "
                              f"a state dict or a vsynth checkpoint; found {keys})")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}  # DDP-saved files
    return {"state": state, "kind": kind, "meta": {}}


def transfer(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, key: str = "init",
             strict: bool = False, model_name: str = "model") -> dict[str, Any]:
    """Copy tensors of matching name and shape into ``model``.

    Returns ``{"loaded": n, "total": N, "skipped": [(name, ckpt shape, model shape)], "missing": [...]}``.
    ``strict``: every model tensor must be in ``state`` with its shape. Otherwise at least
    :data:`MIN_TRANSFER` of the model's tensors must fit (an unrelated checkpoint is refused).
    """
    m = match_state(model, state)
    skipped, missing = m.skipped, m.missing
    n, total = m.loaded, m.total
    if strict and n != total:
        example = (f"{skipped[0][0]}: {list(skipped[0][1])} in the file vs {list(skipped[0][2])} in the model"
                   if skipped else f"{missing[0]} missing")
        raise CheckpointError(f"{key}={path}: does not fit {model_name} with {_num_classes(model)} classes "
                              f"({total - n} of {total} tensors differ, e.g. {example}); check model= and the data's classes")
    if n < MIN_TRANSFER * total:
        raise CheckpointError(f"{key}={path}: only {n} of {total} tensors fit {model_name}; is it a checkpoint of "
                              "another model size? choose the matching model=yolox_*")
    load_matched(model, m)
    return {"loaded": n, "total": total, "skipped": skipped, "missing": missing}


def _num_classes(model: nn.Module) -> int:
    head = getattr(model, "head", None)
    return int(getattr(head, "num_classes", -1))


def init_from(model: nn.Module, path: str | Path, model_name: str, unsafe_fallback: bool = False) -> list[str]:
    """Load ``init=PATH`` into ``model``; returns the lines for run.log (what was skipped and why)."""
    w = read_weights(path, key="init", unsafe_fallback=unsafe_fallback)
    r = transfer(model, w["state"], path, key="init", model_name=model_name)
    resolved = Path(str(path)).expanduser().resolve()
    lines = [f"init: {r['loaded']}/{r['total']} tensors from {w['kind']} checkpoint {resolved}"]
    if r["skipped"]:
        lines.append(f"init: skipped {len(r['skipped'])} tensor(s) whose shape differs (expected for the class head "
                     "when the number of classes changes):")
        lines += [f"init:   {k}: {list(a)} in the checkpoint, {list(b)} in the model" for k, a, b in r["skipped"]]
    if r["missing"]:
        lines.append(f"init: {len(r['missing'])} model tensor(s) not in the checkpoint (kept fresh): "
                     + ", ".join(r["missing"][:10]) + (" ..." if len(r["missing"]) > 10 else ""))
    return lines


def frozen_names(model: nn.Module, prefixes: list[str]) -> list[str]:
    """Parameter names under ``prefixes`` (the modules a phase freezes)."""
    return [n for n, _ in model.named_parameters() if any(n == p or n.startswith(p + ".") for p in prefixes)]
