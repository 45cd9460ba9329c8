"""The test task's exporter: the smallest ``tasks/<task>/export.py`` (see :mod:`vsynth.export`).

Writes the network's state dict (``torch.load`` + ``TinyNet.load_state_dict`` is this "backend's" API)
and, with ``onnx=true``, the network as ONNX through vsynth's shared writer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vsynth.export.bundle import Options, Written, float_state, write_onnx
from vsynth.export.source import RunModel

from tests.tiny.task import DIM


def export(run: RunModel, out: Path, options: Options) -> Written:
    torch.save(float_state(run.model), out / "tiny.pt")
    files = {"tiny.pt": "state dict of TinyNet"}
    onnx = None
    if options.onnx:
        write_onnx(run.model, torch.zeros(1, DIM), out / "tiny.onnx", ["x"], ["logits"])
        files["tiny.onnx"] = "ONNX graph: x [1, 8] -> logits [1, 3]"
        onnx = {"file": "tiny.onnx", "inputs": {"x": "float32 [1, 8]"}, "outputs": {"logits": "float32 [1, 3]"}}
    return Written(files=files, load='TinyNet(width).load_state_dict(torch.load("tiny.pt"))',
                   facts={"width": int(run.cfg.model.width)}, onnx=onnx)
