"""The YOLO-pose model: built from an ultralytics model YAML, initialised from a local checkpoint.

Three ways to get weights, all local (nothing is ever downloaded):

* no ``init``: the architecture from ``model.cfg`` (an ultralytics YAML such as
  ``yolo11n-pose.yaml``, shipped inside the ultralytics package, or a path) with fresh weights;
* ``init=PATH`` to an ultralytics checkpoint (``yolo11n-pose.pt`` or a ``best.pt`` from
  ``yolo train``): read by vsynth's safe reader with ultralytics' own allow-list of the classes
  such files pickle (:func:`ultralytics_allow_list`) and transferred by name and shape, so a
  17-point COCO-person checkpoint still gives its backbone and neck to a 14-point vehicle model;
* ``init=PATH`` to a vsynth checkpoint (``best.pt`` of an earlier run, e.g. the kill switch's
  base arm): its EMA weights, transferred the same way.

The head's keypoint count always comes from the data (``kpt_shape``), never from the YAML.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from vsynth.errors import ConfigError
from vsynth.train.transfer import FitRule

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
                     kpt_names: Sequence[str] | None = None, seed: int = 0, class_name: str = "object") -> nn.Module:
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
    attach_training_attributes(model, hyp, oks_sigmas, kpt_names, class_name)
    return model


def attach_training_attributes(model: nn.Module, hyp: Any, oks_sigmas: Sequence[float] | None,
                               kpt_names: Sequence[str] | None, class_name: str = "object") -> None:
    """What ultralytics' PoseTrainer sets on the model before training (``set_model_attributes``); the
    class name comes from the data."""
    model.nc = 1
    model.names = {0: class_name}
    model.args = hyp  # v8PoseLoss reads the box/cls/dfl/pose/kobj gains from here
    model.kpt_oks_sigmas = list(oks_sigmas) if oks_sigmas is not None else None  # used by the pose loss
    k = int(model.kpt_shape[0])
    model.kpt_names = {0: list(kpt_names) if kpt_names else [str(i) for i in range(k)]}
    model.criterion = None


@contextlib.contextmanager
def ultralytics_allow_list(path: Path) -> Iterator[None]:
    """The classes ultralytics checkpoints are made of, allowed for one ``weights_only`` load.

    ultralytics pickles whole models (``PoseModel`` and its layers, an ``IterableSimpleNamespace`` of
    training args, pathlib paths); its own restricted loader (``_SafeLoad``) knows exactly which
    classes those are and registers only the ones the file references. Anything else in the file
    stays unallowed, and vsynth's reader refuses it by name.
    """
    from ultralytics.nn.tasks import _SafeLoad

    with _SafeLoad.loading(path):
        yield


def ultralytics_fit_rule() -> FitRule:
    return FitRule(what="model.cfg", min_fraction=MIN_TRANSFER,
                   fix="check model.cfg (the checkpoint's model YAML) and the keypoint count")
