"""The keypoint model out as an ultralytics checkpoint (``YOLO(path)``), and as ultralytics' own ONNX.

The ``.pt`` is what ultralytics' trainer leaves after training (``strip_optimizer``): a dict whose
``model`` is the pickled ``PoseModel`` (here in float32, the weights vsynth evaluated), with the run's
class name, keypoint names and shape on it, and ``train_args`` holding ultralytics' own argument names
(``imgsz`` is the run's, so ``YOLO(path).predict(img)`` letterboxes as vsynth's evaluation did). It
contains only ultralytics and torch classes, so ultralytics' restricted loader
(``ULTRALYTICS_SAFE_LOAD=1``) and vsynth's own safe reader both load it.

ONNX is written by ultralytics' exporter from that file (``YOLO(pt).export(format="onnx")``), so the
graph carries ultralytics' metadata and ``YOLO("yolo_pose.onnx").predict(img)`` runs it with onnxruntime.
"""

from __future__ import annotations

import copy
import datetime as _dt
from pathlib import Path

import torch

from vsynth.export.bundle import Options, Written
from vsynth.export.source import RunModel

PT = "yolo_pose.pt"


def export(run: RunModel, out: Path, options: Options) -> Written:
    from ultralytics import __version__
    from ultralytics.utils import DEFAULT_CFG_KEYS

    task = run.task
    s = task.schema
    model = copy.deepcopy(run.model).float().eval()
    args = {k: v for k, v in dict(task.hyp).items() if k in DEFAULT_CFG_KEYS}
    model.args = dict(args)
    model.criterion = None
    model.names = {0: s.class_name}
    model.kpt_names = {0: list(s.names) if s.names else [str(i) for i in range(s.k)]}
    for p in model.parameters():
        p.requires_grad = False
    ckpt = {
        "date": _dt.datetime.now().astimezone().isoformat(),
        "version": __version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": model,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": args,
        "train_metrics": {},
        "train_results": {},
    }
    torch.save(ckpt, out / PT)
    e = task.cfg.eval
    facts = {"class_names": [s.class_name], "kpt_shape": list(s.kpt_shape), "kpt_names": model.kpt_names[0],
             "flip_idx": s.flip_idx, "kpt_oks_sigmas": s.sigmas, "imgsz": task.imgsz,
             "eval": {"conf": float(e.conf), "iou": float(e.nms), "max_det": int(e.max_det)}}
    files = {PT: f"ultralytics YOLO-pose checkpoint ({task.cfg.model.cfg}, {s.k} keypoints, class '{s.class_name}')"}
    load = (f'from ultralytics import YOLO\nmodel = YOLO("{PT}")\n'
            f'results = model.predict("image.jpg", imgsz={task.imgsz}, rect=False, conf=0.25)\n'
            "# results[0].boxes.xyxy, results[0].keypoints.data; rect=False letterboxes to the square imgsz as "
            "vsynth's evaluation did")
    onnx = None
    if options.onnx:
        onnx = _onnx(out / PT, options.imgsz or (task.imgsz, task.imgsz), s.kpt_shape)
        files[onnx["file"]] = "ONNX graph written by ultralytics' exporter (its metadata: names, kpt_shape, imgsz)"
    return Written(files=files, load=load, facts=facts, onnx=onnx)


def _onnx(pt: Path, hw: tuple[int, int], kpt_shape: list[int]) -> dict:
    from ultralytics import YOLO

    f = Path(YOLO(str(pt)).export(format="onnx", imgsz=list(hw), dynamic=False, simplify=False, half=False,
                                   nms=False, device="cpu", verbose=False))
    k, d = kpt_shape
    return {
        "file": f.name,
        "inputs": {"images": f"float32 [1, 3, {hw[0]}, {hw[1]}]: RGB in 0..1, letterboxed (ultralytics' LetterBox, "
                             "pad 114)"},
        "outputs": {"output0": f"float32 [1, {5 + k * d}, anchors]: per anchor box cx, cy, w, h (input pixels), "
                               f"score, then {k} keypoints x, y{', visibility' if d == 3 else ''}; before NMS"},
        "run": f'YOLO("{f.name}").predict("image.jpg", imgsz={list(hw)}) (ultralytics with onnxruntime), or '
               "onnxruntime.InferenceSession + ultralytics.utils.nms.non_max_suppression",
    }
