"""The YOLOX model: built at any of YOLOX's sizes, initialised from a local checkpoint.

Sizes follow YOLOX's own exps (``model.depth`` / ``model.width`` / ``model.depthwise`` in
``conf/model/yolox_*.yaml``): nano 0.33/0.25 depthwise, tiny 0.33/0.375, s 0.33/0.50,
m 0.67/0.75, l 1.0/1.0, x 1.33/1.25. The model is YOLOX's ``YoloxModule`` built exactly as
``YoloxConfig.get_model`` builds it (BatchNorm eps 1e-3 / momentum 0.03, prior-probability biases),
with the number of classes from the data. Its module names are YOLOX's, so ``backbone.backbone``
is the CSPDarknet (frozen in the ``frozen`` phase), ``backbone`` the PAFPN neck around it and
``head`` the detection head.

Weights, all local (nothing is ever downloaded), read by ``vsynth.train.checkpoint`` (safely:
tensors, containers and the numpy scalars older YOLOX trainers stored, nothing that runs code):

* ``init=PATH`` to YOLOX's own ``.pth`` (a dict with a ``"model"`` state dict, e.g. a COCO
  ``yolox_l.pth`` or a ``best_ckpt.pth`` from YOLOX's trainer), a plain state dict, or a vsynth
  checkpoint (its EMA weights): tensors are transferred by name and shape; those whose shape
  differs (the class head of an 80-class COCO checkpoint) are skipped and listed in run.log.
* ``mode=eval ckpt=PATH``: the same files, but every tensor must fit (strict).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch
from torch import nn

from vsynth.errors import ConfigError
from vsynth.train.transfer import FitRule

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


def fit_rule(model_name: str, num_classes: int) -> FitRule:
    """What an ``init``/``ckpt`` file must fill of a YOLOX model, and the knobs to check when it does not."""
    return FitRule(what=f"{model_name} with {num_classes} classes", min_fraction=MIN_TRANSFER,
                   fix="check model=yolox_* (the size the checkpoint was trained at) and the data's classes")


def frozen_names(model: nn.Module, prefixes: list[str]) -> list[str]:
    """Parameter names under ``prefixes`` (the modules a phase freezes)."""
    return [n for n, _ in model.named_parameters() if any(n == p or n.startswith(p + ".") for p in prefixes)]
