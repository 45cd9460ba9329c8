"""The segmentor: an MMSegmentation ``EncoderDecoder`` built from ``model.mmseg`` (conf/model/*.yaml).

The YAML is mmseg's own model dict (``configs/_base_/models/*_r50-d8.py`` written as YAML). The
task fills in what depends on the run, so a model file fits any dataset and size:

* ``num_classes`` of every head from the data's ``classes.json``;
* ``in_channels`` (and DeepLabV3+'s ``c1_in_channels``) from the backbone's depth and width
  when left null (ResNet-18/34 stages give ``width * 2**i`` channels, deeper ones 4x that);
* ``norm_cfg`` (plain BN; converted to SyncBN under multi-GPU DDP when ``model.norm`` is auto
  or SyncBN), the heads' losses from ``task.loss`` (:mod:`tasks.segmentation.losses`), the
  training pad size from ``task.crop_size`` and ``test_cfg`` from ``task.inference``.

Nothing is downloaded: a ``pretrained`` or ``init_cfg`` naming a URL or an ``open-mmlab://`` /
``torchvision://`` model is refused. Weights come from ``init=PATH``: a vsynth checkpoint (its EMA
weights if stored), an mmseg/mmengine checkpoint (``state_dict``) or a bare state dict; tensors of
matching name and shape are copied, the rest is listed in run.log.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from omegaconf import OmegaConf
from torch import nn

from vsynth.errors import ConfigError
from vsynth.train.transfer import FitRule

log = logging.getLogger("vsynth.segmentation")

REMOTE = ("http://", "https://", "open-mmlab://", "torchvision://", "mmcls://", "pretrain://")
#: at least this fraction of the model's tensors must come from an ``init`` checkpoint
MIN_TRANSFER = 0.2


#: what the backend says on import that is not news to a user of mmcv-lite without OneDL (an optional
#: data loader of onedl-mmsegmentation, printed whatever the log level; deformable attention, which no
#: vsynth model uses): kept out of the console, recorded once at debug level
_IMPORT_NOISE = ("Could not import OneDL",)
_IMPORT_WARNINGS = r"Fail to import ``MultiScaleDeformableAttention``"


class _DropLines(io.TextIOBase):
    """A stdout that passes everything through but the exact lines in ``drop``."""

    def __init__(self, target, drop: tuple[str, ...]) -> None:
        self.target, self.drop, self.dropped, self._eol = target, drop, [], False

    def write(self, text: str) -> int:
        if text.strip() in self.drop:
            self.dropped.append(text.strip())
            self._eol = not text.endswith("\n")  # print() writes the line's end apart
        elif not (self._eol and text == "\n"):
            self.target.write(text)
            self._eol = False
        else:
            self._eol = False
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def _register_all() -> None:
    import sys

    from tasks.segmentation.losses import register

    out = _DropLines(sys.stdout, _IMPORT_NOISE)
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_IMPORT_WARNINGS)
        from mmseg.utils import register_all_modules

        register_all_modules(init_default_scope=True)
    if out.dropped:
        log.debug("mmseg on import: %s", "; ".join(out.dropped))
    register()


def _find_remote(node: Any, key: str) -> str | None:
    if isinstance(node, dict):
        for k, v in node.items():
            hit = _find_remote(v, f"{key}.{k}")
            if hit:
                return hit
    elif isinstance(node, list):
        for i, v in enumerate(node):
            hit = _find_remote(v, f"{key}[{i}]")
            if hit:
                return hit
    elif isinstance(node, str) and node.startswith(REMOTE):
        return f"{key}={node}"
    return None


def stage_channels(depth: int, width: int) -> list[int]:
    expansion = 1 if int(depth) in (18, 34) else 4
    return [int(width) * 2**i * expansion for i in range(4)]


def loss_cfg(task_loss, classes: list[str], mining: str, loss_weight: float) -> dict[str, Any]:
    """The ``loss_decode`` dict of one head from ``task.loss``."""
    cw = task_loss.get("class_weight")
    weights = None
    if cw is not None:
        if OmegaConf.is_dict(cw) or isinstance(cw, Mapping):
            unknown = [k for k in cw if k not in classes]
            if unknown:
                raise ConfigError(f"task.loss.class_weight: unknown class(es) {unknown}; classes are {classes}")
            weights = [float(cw.get(name, 1.0)) for name in classes]
        else:
            weights = [float(v) for v in cw]
            if len(weights) != len(classes):
                raise ConfigError(f"task.loss.class_weight: {len(weights)} weights for {len(classes)} classes {classes}")
        if any(w < 0 for w in weights):
            raise ConfigError(f"task.loss.class_weight: weights must be >= 0, got {weights}")
    ohem = task_loss.get("ohem") or {}
    thresh = ohem.get("thresh")
    min_kept = int(ohem.get("min_kept", 100000))
    if mining == "ohem" and min_kept < 1:
        raise ConfigError(f"task.loss.ohem.min_kept must be >= 1, got {min_kept}")
    top_k = float(task_loss.get("top_k", 1.0))
    if mining == "topk" and not 0.0 < top_k <= 1.0:
        raise ConfigError(f"task.loss.top_k must be in (0, 1], got {top_k}")
    return {"type": "VsynthSegLoss", "class_weight": weights, "mining": mining,
            "ohem_thresh": None if thresh is None else float(thresh), "ohem_min_kept": min_kept,
            "top_k": top_k, "loss_weight": float(loss_weight), "loss_name": "loss_ce"}


def inference_cfg(task_cfg) -> dict[str, Any]:
    mode = str(task_cfg.get("inference", "whole"))
    if mode == "whole":
        return {"mode": "whole"}
    if mode == "slide":
        s = task_cfg.get("slide") or {}
        crop = [int(v) for v in (s.get("crop_size") or task_cfg.crop_size)]
        stride = [int(v) for v in (s.get("stride") or crop)]
        if len(crop) != 2 or len(stride) != 2 or min(crop + stride) < 1:
            raise ConfigError(f"task.slide: crop_size and stride must be [h, w] > 0, got {crop} and {stride}")
        if stride[0] > crop[0] or stride[1] > crop[1]:
            raise ConfigError(f"task.slide.stride={stride} is larger than crop_size={crop}: windows would leave gaps")
        return {"mode": "slide", "crop_size": tuple(crop), "stride": tuple(stride)}
    raise ConfigError(f"task.inference must be whole or slide, got '{mode}'")


def segmentor_config(cfg, classes: list[str]) -> dict[str, Any]:
    """The complete mmseg model dict for this run (what ``MODELS.build`` receives)."""
    m = cfg.model
    if m.get("mmseg") is None:
        raise ConfigError(f"model={m.get('name')}: no 'mmseg' model dict (is this a segmentation model config?)")
    d = copy.deepcopy(OmegaConf.to_container(m.mmseg, resolve=True))
    remote = _find_remote(d, "model.mmseg")
    if remote:
        raise ConfigError(f"{remote}: vsynth never downloads weights; set it to null and give local weights with init=PATH")
    d.setdefault("pretrained", None)
    norm = str(m.get("norm", "auto"))
    if norm not in ("auto", "BN", "SyncBN"):
        raise ConfigError(f"model.norm must be auto, BN or SyncBN, got '{norm}'")
    norm_cfg = {"type": "BN", "requires_grad": True}  # SyncBN by conversion under DDP (see build_model)
    bb = d.get("backbone") or {}
    depth, width = int(bb.get("depth", 50)), int(bb.get("base_channels", 64))
    chans = stage_channels(depth, width)
    bb["norm_cfg"] = dict(norm_cfg)
    bb.setdefault("init_cfg", None)
    dp = d.setdefault("data_preprocessor", {"type": "SegDataPreProcessor"})
    if dp.get("size") is None and dp.get("size_divisor") is None:
        dp["size"] = tuple(int(v) for v in cfg.task.crop_size)
    tl = cfg.task.loss
    mining = str(tl.get("mining", "none"))
    if mining not in ("none", "ohem", "topk"):
        raise ConfigError(f"task.loss.mining must be none, ohem or topk, got '{mining}'")
    aux_mining = mining if tl.get("aux_mining", False) else "none"
    for key, weight, mine in (("decode_head", 1.0, mining), ("auxiliary_head", float(tl.get("aux_weight", 0.4)), aux_mining)):
        head = d.get(key)
        if not head:
            d.pop(key, None)
            continue
        if key == "auxiliary_head" and (weight <= 0 or head.get("channels") in (None, 0)):
            d.pop(key)
            continue
        head["num_classes"] = len(classes)
        head["norm_cfg"] = dict(norm_cfg)
        if head.get("in_channels") is None:
            head["in_channels"] = chans[int(head.get("in_index", 3))]
        if "c1_in_channels" in head and head["c1_in_channels"] is None:
            head["c1_in_channels"] = chans[0]
        if head.get("loss_decode") is None or not tl.get("keep_model_loss", False):
            head["loss_decode"] = loss_cfg(tl, classes, mine, weight)
        head.setdefault("ignore_index", 255)
    d["test_cfg"] = inference_cfg(cfg.task)
    d.setdefault("train_cfg", {})
    return d


def build_segmentor(model_dict: Mapping[str, Any]) -> nn.Module:
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS

    _register_all()
    try:
        with warnings.catch_warnings():  # two classes with softmax on purpose (the users' sidewalk model)
            warnings.filterwarnings("ignore", message="For binary segmentation, we suggest")
            model = MODELS.build(ConfigDict(copy.deepcopy(dict(model_dict))))
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"model.mmseg: mmseg cannot build this model ({first[:240]})") from e
    from mmengine.logging import MMLogger

    mm_logger = MMLogger.get_current_instance()
    level = mm_logger.level
    mm_logger.setLevel(logging.WARNING)  # init_weights logs every tensor at INFO
    try:
        model.init_weights()  # mmseg's default init (Kaiming convs, BN = 1, heads N(0, 0.01)); no download
    finally:
        mm_logger.setLevel(level)
    # mmengine's `non_blocking` preprocessor option: batch copies to the GPU do not wait (the loop pins
    # batches in page-locked memory on CUDA; from ordinary memory the copy is synchronous as before)
    model.data_preprocessor._non_blocking = True
    return model


def set_inference(model: nn.Module, test_cfg: Mapping[str, Any]) -> None:
    from mmengine.config import ConfigDict

    model.test_cfg = ConfigDict(dict(test_cfg))


def maybe_sync_bn(model: nn.Module, norm: str, world_size: int, device: torch.device) -> nn.Module:
    """SyncBN under multi-process DDP on GPUs (``model.norm`` auto or SyncBN); plain BN otherwise."""
    if world_size > 1 and device.type == "cuda" and norm in ("auto", "SyncBN"):
        log.info("BatchNorm -> SyncBatchNorm across %d processes", world_size)
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if norm == "SyncBN" and world_size > 1:
        log.warning("model.norm=SyncBN needs CUDA; keeping per-process BatchNorm on %s", device)
    return model


# ---- checkpoints ------------------------------------------------------------------------------------

def _restricted_getattr(obj: Any, name: str) -> Any:
    """mmengine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, "mean")``:
    only that lookup is allowed."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and not name.startswith("_") and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"getattr({getattr(obj, '__name__', type(obj).__name__)}, {name!r}) is not allowed")


@contextlib.contextmanager
def mmengine_allow_list(path: Path) -> Iterator[None]:
    """The classes an mmengine/mmseg checkpoint pickles next to its weights, allowed for one load.

    mmengine's Runner stores its message hub (``HistoryBuffer`` objects of numpy arrays, whose
    statistics methods are pickled by ``getattr``) beside ``state_dict``; nothing else.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    with torch.serialization.safe_globals([HistoryBuffer, (_restricted_getattr, "builtins.getattr")]):
        yield


def fit_rule() -> FitRule:
    """What an ``init``/``ckpt`` file must fill; the auxiliary head is unused at inference."""
    return FitRule(what="this model", min_fraction=MIN_TRANSFER, optional=("auxiliary_head.",),
                   fix="check model=..., model.depth/width and the classes")

