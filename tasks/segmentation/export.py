"""The segmentor out as an MMSegmentation config file and checkpoint (``init_model(config, checkpoint)``),
and as ONNX.

``mmseg_config.py`` is an mmengine config (Python text, as mmseg's own ``configs/``): the run's full
model dict (backbone, heads, ``data_preprocessor``, ``test_cfg``) and its ``test_pipeline``, with
``default_scope='mmseg'``. The heads' loss is written as mmseg's ``CrossEntropyLoss``: vsynth trained
with its own ``VsynthSegLoss`` (class weights, hard pixel mining), which exists only inside vsynth and
plays no part in inference. ``mmseg.pth`` is what mmengine's runner writes: ``{"meta": {"dataset_meta":
{"classes", "palette"}, ...}, "state_dict": ...}`` (float32 tensors and plain data only), so
``init_model`` names the classes and ``inference_model`` / ``show_result_pyplot`` work as with any mmseg
model.

ONNX: the whole-image forward of the network with the data preprocessor folded in (BGR to RGB, mean
and std), input ``image`` = a BGR 0..255 image of a fixed size, output ``logits`` = class scores at that
size (``argmax`` over classes is the label map). Sliding-window inference (``task.inference=slide``) is
not in the graph: run the graph on each window yourself, or export at the size you run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from vsynth.export.bundle import Options, Written, float_state, write_onnx
from vsynth.export.source import RunModel

CONFIG = "mmseg_config.py"
PTH = "mmseg.pth"
ONNX = "mmseg.onnx"


def mmseg_config(model_dict: dict[str, Any], test_pipeline: list, ckpt: str) -> tuple[dict[str, Any], str]:
    """(the config dict, a header for the file): the heads' loss as mmseg's own cross entropy."""
    d = copy.deepcopy(model_dict)
    losses = []
    for key in ("decode_head", "auxiliary_head"):
        head = d.get(key)
        if head:
            ours = head.get("loss_decode") or {}
            losses.append(f"{key}: {ours.get('type')} mining={ours.get('mining')} class_weight={ours.get('class_weight')}")
            head["loss_decode"] = {"type": "CrossEntropyLoss", "use_sigmoid": False, "avg_non_ignore": True,
                                   "loss_weight": float(ours.get("loss_weight", 1.0))}
    d["train_cfg"] = {}
    header = (f"# MMSegmentation config of a model exported by vsynth from {ckpt}.\n"
              "#   from mmseg.apis import init_model, inference_model\n"
              f"#   model = init_model('{CONFIG}', '{PTH}', device='cpu')\n"
              "#   result = inference_model(model, 'image.jpg')   # result.pred_sem_seg.data[0]: the label map\n"
              "# The heads' loss_decode is mmseg's CrossEntropyLoss (used only for training); vsynth trained with\n"
              f"# {'; '.join(losses) or 'its own loss'}.\n")
    return {"default_scope": "mmseg", "model": d, "test_pipeline": test_pipeline}, header


def export(run: RunModel, out: Path, options: Options) -> Written:
    from mmengine.config import Config
    import mmseg

    task = run.task
    c = task.classes
    cfg, header = mmseg_config(task.model_dict(), OmegaConf.to_container(task.task_cfg.test_pipeline, resolve=True),
                               str(run.weights.path))
    text = Config(cfg).pretty_text
    (out / CONFIG).write_text(header + "\n" + text)
    meta = {"dataset_meta": {"classes": tuple(c.names), "palette": [list(map(int, p)) for p in c.palette]},
            "mmseg_version": mmseg.__version__, "exported_by": "vsynth", "ignore_index": int(c.ignore_index)}
    torch.save({"meta": meta, "state_dict": float_state(run.model)}, out / PTH)
    facts = {"class_names": list(c.names), "palette": meta["dataset_meta"]["palette"],
             "ignore_index": int(c.ignore_index), "test_cfg": dict(task.test_cfg), "crop_size": list(task.task_cfg.crop_size)}
    files = {CONFIG: f"mmseg config: the model ({task.cfg.model.get('name')}) and the test pipeline",
             PTH: f"mmseg checkpoint: state_dict, and the {c.num} classes and palette in meta.dataset_meta"}
    load = (f"from mmseg.apis import init_model, inference_model\n"
            f'model = init_model("{CONFIG}", "{PTH}", device="cpu")\n'
            'result = inference_model(model, "image.jpg")  # result.pred_sem_seg.data[0]: the label map')
    onnx = None
    if options.onnx:
        hw = options.imgsz or tuple(int(v) for v in task.task_cfg.crop_size)
        onnx = _onnx(run.model, out / ONNX, hw, c.num, str(task.test_cfg.get("mode")))
        files[ONNX] = f"ONNX graph: BGR image {hw[0]}x{hw[1]} in, per-class logits out"
    return Written(files=files, load=load, facts=facts, onnx=onnx)


class SegLogits(nn.Module):
    """The segmentor's whole-image forward from a raw BGR 0..255 batch: preprocessor, encoder-decoder,
    logits resized to the input (what mmseg's ``predict`` does before ``argmax``)."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.seg = segmentor
        pre = segmentor.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, "_channel_conversion", False))
        normalize = bool(getattr(pre, "_enable_normalize", False))
        self.register_buffer("mean", pre.mean.detach().clone().view(1, -1, 1, 1) if normalize else torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", pre.std.detach().clone().view(1, -1, 1, 1) if normalize else torch.ones(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image[:, [2, 1, 0]] if self.bgr_to_rgb else image
        x = (x - self.mean) / self.std
        hw = tuple(int(v) for v in image.shape[2:])
        metas = [{"img_shape": hw, "ori_shape": hw, "pad_shape": hw}] * int(image.shape[0])
        return self.seg.encode_decode(x, metas)


def _onnx(model: nn.Module, path: Path, hw: tuple[int, int], num_classes: int, mode: str) -> dict:
    net = SegLogits(copy.deepcopy(model).float().eval())
    write_onnx(net, torch.zeros(1, 3, *hw), path, ["image"], ["logits"])
    note = "" if mode == "whole" else f" (the run used task.inference={mode}; the graph is the whole-image forward)"
    return {
        "file": path.name,
        "inputs": {"image": f"float32 [1, 3, {hw[0]}, {hw[1]}]: BGR 0..255 (cv2.imread, HWC -> CHW), resized to "
                            f"{hw[0]}x{hw[1]}{note}"},
        "outputs": {"logits": f"float32 [1, {num_classes}, {hw[0]}, {hw[1]}]: class scores; argmax over axis 1 is "
                              "the label map"},
        "run": "onnxruntime.InferenceSession(file).run(None, {'image': x})[0].argmax(1)",
    }
