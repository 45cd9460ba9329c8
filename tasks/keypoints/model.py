"""The YOLO-pose model: built from an ultralytics model YAML, initialised from a local checkpoint.

Three ways to get weights, all local (nothing is ever downloaded):

* no ``init``: the architecture from ``model.cfg`` (an ultralytics YAML such as
  ``yolo11n-pose.yaml``, shipped inside the ultralytics package, or a path) with fresh weights;
* ``init=PATH`` to an ultralytics checkpoint (``yolo11n-pose.pt`` or a ``best.pt`` from
  ``yolo train``): loaded with ultralytics' own loader (it knows its pickled classes, which
  ``torch.load``'s ``weights_only`` default of torch >= 2.6 refuses) and transferred by name and
  shape, so a 17-point COCO-person checkpoint still gives its backbone and neck to a 14-point
  vehicle model;
* ``init=PATH`` to a vsynth checkpoint (``best.pt`` of an earlier run, e.g. the kill switch's
  base arm): its EMA weights, transferred the same way.

The head's keypoint count always comes from the data (``kpt_shape``), never from the YAML.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from vsynth.errors import CheckpointError, ConfigError
from vsynth.train.transfer import load_matched, match_state

log = logging.getLogger("vsynth.keypoints")

#: at least this fraction of the model's tensors must come from an ``init`` checkpoint
MIN_TRANSFER = 0.5


def resolve_model_yaml(name: str | None) -> str:
    """``model.cfg`` as ultralytics understands it: an existing file, a YAML shipped in
    ``tasks/keypoints/models/``, or the name of one bundled with ultralytics."""
    if not name:
        raise ConfigError("model.cfg: no model YAML given (e.g. yolo11n-pose.yaml)")
    p = Path(str(name)).expanduser()
    if p.is_file():
        return str(p.resolve())
    bundled = Path(__file__).resolve().parent / "models" / str(name)  # vsynth's own (e.g. yolo11p-pose.yaml)
    if len(p.parts) == 1 and bundled.is_file():
        return str(bundled)
    if p.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"model.cfg={name}: expected an ultralytics model YAML (e.g. yolo11n-pose.yaml)")
    if len(p.parts) > 1:
        raise ConfigError(f"model.cfg={name}: file not found")
    return str(name)  # a YAML bundled with ultralytics, by name (resolved offline by ultralytics)


def build_pose_model(model_yaml: str, kpt_shape: Sequence[int], hyp: Any, oks_sigmas: Sequence[float] | None,
                     kpt_names: Sequence[str] | None = None, seed: int = 0) -> nn.Module:
    """A fresh ``PoseModel`` (one class, ``kpt_shape`` from the data) ready for ``model.loss``."""
    from ultralytics.nn.tasks import PoseModel

    torch.manual_seed(seed)  # fresh weights depend on the run seed only
    try:
        model = PoseModel(resolve_model_yaml(model_yaml), nc=1, data_kpt_shape=tuple(int(k) for k in kpt_shape),
                          verbose=False)
    except (FileNotFoundError, KeyError, ValueError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ConfigError(f"model.cfg={model_yaml}: cannot build a pose model from it ({first})") from e
    if not hasattr(model, "kpt_shape") or getattr(model.model[-1], "kpt_shape", None) is None:
        raise ConfigError(f"model.cfg={model_yaml}: not a pose model YAML (no keypoint head)")
    attach_training_attributes(model, hyp, oks_sigmas, kpt_names)
    return model


def attach_training_attributes(model: nn.Module, hyp: Any, oks_sigmas: Sequence[float] | None,
                               kpt_names: Sequence[str] | None) -> None:
    """What ultralytics' PoseTrainer sets on the model before training (``set_model_attributes``)."""
    model.nc = 1
    model.names = {0: "vehicle"}
    model.args = hyp  # v8PoseLoss reads the box/cls/dfl/pose/kobj gains from here
    model.kpt_oks_sigmas = list(oks_sigmas) if oks_sigmas is not None else None  # used by the pose loss
    k = int(model.kpt_shape[0])
    model.kpt_names = {0: list(kpt_names) if kpt_names else [str(i) for i in range(k)]}
    model.criterion = None


def _ultralytics_checkpoint(path: Path) -> dict[str, Any]:
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(str(path))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"init={path}: not a readable checkpoint ({str(e).strip().splitlines()[0][:160]})") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"init={path}: not an ultralytics or vsynth checkpoint")
    src = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(src, nn.Module):
        raise CheckpointError(f"init={path}: holds no ultralytics model (keys: {sorted(ckpt)[:8]})")
    return {"state": src.float().state_dict(), "kind": "ultralytics", "yaml": getattr(src, "yaml", None)}


def read_weights(path: str | Path, key: str = "init", task_name: str = "keypoints") -> dict[str, Any]:
    """The weights in a vsynth or ultralytics checkpoint as ``{"state": state_dict, "kind": ...}``."""
    from vsynth.train.checkpoint import FORMAT

    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (pickled modules: an ultralytics checkpoint)
        obj = None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("task") not in (None, task_name):
            raise CheckpointError(f"{key}={path}: a checkpoint of task '{obj.get('task')}', not {task_name}")
        state = obj["ema"]["module"] if obj.get("ema") else obj["model"]
        return {"state": state, "kind": "vsynth", "meta": obj.get("meta", {})}
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"state": obj, "kind": "state_dict"}
    out = _ultralytics_checkpoint(path)
    if key != "init":
        out["kind"] = "ultralytics"
    return out


def transfer(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, key: str = "init",
             strict: bool = False) -> tuple[int, int]:
    """Copy tensors of matching name and shape into ``model``; refuse an unrelated checkpoint."""
    m = match_state(model, state)
    n, total = m.loaded, m.total
    if strict and n != total:
        raise CheckpointError(f"{key}={path}: does not fit this model ({total - n} of {total} tensors differ, "
                              f"e.g. {m.unfit[:3]}); check model.cfg and the keypoint count")
    if n < MIN_TRANSFER * total:
        raise CheckpointError(f"{key}={path}: only {n} of {total} tensors fit model.cfg; is it a checkpoint of "
                              "another architecture? set model.cfg to the checkpoint's model YAML")
    load_matched(model, m)
    return n, total


def init_from(model: nn.Module, path: str | Path, key: str = "init") -> str:
    """Load ``init=PATH`` into ``model``; returns a line for run.log."""
    w = read_weights(path, key=key)
    n, total = transfer(model, w["state"], path, key=key)
    return f"init: {n}/{total} tensors from {w['kind']} checkpoint {Path(str(path)).expanduser().resolve()}"
