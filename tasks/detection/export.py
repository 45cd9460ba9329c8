"""The detector out as YOLOX's own ``.pth`` plus the YOLOX config class that rebuilds it, and ONNX.

YOLOX's trainer writes ``{"model": state_dict, ...}`` and every YOLOX tool (``yolox eval``, the demo,
trackers built on YOLOX) rebuilds the network from a config before loading ``ckpt["model"]``. In
pixeltable-yolox that config is a ``YoloxConfig`` subclass (``yolox eval -c module:Class``,
``Yolox.from_pretrained(path, config)``), so the export is ``yolox.pth`` (the weights vsynth evaluated,
float32, nothing pickled but tensors) and ``yolox_config.py`` (class ``VsynthYolox``: depth, width,
depthwise, activation, number of classes, test size, the run's score and NMS thresholds, and the class
names as ``CLASSES``, by class index).

ONNX: YOLOX's network in eval mode with its outputs decoded (``decode_in_inference``), input
``images`` = YOLOX's ``ValTransform`` letterbox (BGR 0..255, padded right/bottom with 114), output
``output`` = ``[1, anchors, 5 + classes]`` ready for ``yolox.utils.postprocess``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from vsynth.export.bundle import Options, Written, float_state, write_onnx
from vsynth.export.source import RunModel

PTH = "yolox.pth"
CONFIG = "yolox_config.py"
CLASS = "VsynthYolox"
ONNX = "yolox.onnx"


def config_source(spec: dict, classes: list[str], test_size: tuple[int, int], input_size: tuple[int, int],
                  conf: float, nms: float, ckpt: str) -> str:
    """``yolox_config.py``: a ``YoloxConfig`` subclass for the exported model (plain literals only)."""
    return f'''"""YOLOX config of a model exported by vsynth from {ckpt}.

Rebuilds the network for yolox.pth with pixeltable-yolox (no vsynth needed):

    from yolox.models import Yolox
    from yolox_config import {CLASS}, CLASSES      # this file, on sys.path
    cfg = {CLASS}()
    net = Yolox.from_pretrained("yolox.pth", config=cfg).module   # then YOLOX's demo path on BGR images:
    # yolox.data.data_augment.preproc(cv2.imread(path), cfg.test_size), net(...), yolox.utils.postprocess

``yolox eval -c yolox_config:{CLASS} --ckpt yolox.pth -D data_dir=...`` takes the same class (CUDA only).
"""

from yolox.config import YoloxConfig

#: class names by class index (the order of the training data's category ids)
CLASSES = {tuple(classes)!r}


class {CLASS}(YoloxConfig):
    def __init__(self):
        super().__init__({spec["name"]!r})
        self.num_classes = {len(classes)}
        self.depth = {float(spec["depth"])!r}
        self.width = {float(spec["width"])!r}
        self.depthwise = {bool(spec["depthwise"])!r}
        self.act = {spec["act"]!r}
        self.input_size = {tuple(int(v) for v in input_size)!r}
        self.test_size = {tuple(int(v) for v in test_size)!r}
        self.test_conf = {float(conf)!r}
        self.nmsthre = {float(nms)!r}
'''


def export(run: RunModel, out: Path, options: Options) -> Written:
    task = run.task
    classes = list(task.classes)
    torch.save({"model": float_state(run.model)}, out / PTH)
    e = task.cfg.eval
    (out / CONFIG).write_text(config_source(task.spec, classes, task.test_size, task.input_size, float(e.conf),
                                            float(e.nms), str(run.weights.path)))
    facts = {"class_names": classes, "model": dict(task.spec), "test_size": list(task.test_size),
             "eval": {"conf": float(e.conf), "nms": float(e.nms), "max_det": int(e.max_det)},
             "input": "BGR uint8 image (cv2.imread) letterboxed by YOLOX's ValTransform to test_size"}
    files = {PTH: f"YOLOX weights ({task.spec['name']}, {len(classes)} classes): {{'model': state_dict}}",
             CONFIG: f"YOLOX config class {CLASS} that rebuilds the network, and CLASSES"}
    load = ("import cv2, torch\nfrom yolox.data.data_augment import preproc\nfrom yolox.models import Yolox\n"
            f"from yolox.utils import postprocess\nfrom yolox_config import {CLASS}, CLASSES  # {CONFIG} on sys.path\n"
            f'cfg = {CLASS}()\nnet = Yolox.from_pretrained("{PTH}", config=cfg).module\n'
            'x, ratio = preproc(cv2.imread("image.jpg"), cfg.test_size)  # BGR, as YOLOX (and vsynth) trained\n'
            "with torch.no_grad():\n"
            "    det = postprocess(net(torch.from_numpy(x)[None]), cfg.num_classes, 0.3, cfg.nmsthre)[0]\n"
            "# det[:, :4] / ratio: xyxy boxes; det[:, 4] * det[:, 5]: scores; det[:, 6]: index into CLASSES")
    onnx = None
    if options.onnx:
        hw = options.imgsz or tuple(task.test_size)
        onnx = _onnx(run.model, out / ONNX, hw, len(classes))
        files[ONNX] = f"ONNX graph of the network with decoded outputs (input {hw[0]}x{hw[1]})"
    return Written(files=files, load=load, facts=facts, onnx=onnx)


def _onnx(model: torch.nn.Module, path: Path, hw: tuple[int, int], num_classes: int) -> dict:
    net = copy.deepcopy(model).float().eval()
    net.head.decode_in_inference = True
    write_onnx(net, torch.zeros(1, 3, *hw), path, ["images"], ["output"])
    return {
        "file": path.name,
        "inputs": {"images": f"float32 [1, 3, {hw[0]}, {hw[1]}]: BGR 0..255 letterboxed as YOLOX's ValTransform "
                             "(yolox.data.data_augment.preproc: resize to fit, pad right/bottom with 114)"},
        "outputs": {"output": f"float32 [1, anchors, {5 + num_classes}]: cx, cy, w, h (input pixels), objectness, "
                              f"{num_classes} class probabilities; before NMS"},
        "run": "yolox.utils.postprocess(torch.from_numpy(output), num_classes, conf, nms) gives xyxy boxes in input "
               "pixels; divide by the letterbox ratio for the original image",
    }
