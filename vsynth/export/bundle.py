"""The export folder: the backend's files written by the task, ``export.json`` beside them, all or nothing.

A task's exporter (``tasks/<task>/export.py``, found through :meth:`vsynth.task.Task.exporter`) writes
the model in its backend's own format into a staging folder next to ``out``; the staging folder
becomes ``out`` only when every file is written, so a failed export leaves nothing half-written and
never touches an earlier export (``overwrite=true`` replaces the export's own files, nothing else).
``export.json`` says what each file is, how to load it with the backend's API, and, with ONNX, the
graph's inputs and outputs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vsynth.errors import ConfigError

MANIFEST = "export.json"
#: ONNX opset of the graphs vsynth writes itself (torch's exporter; ultralytics' exporter picks its own)
OPSET = 18


@dataclass(frozen=True)
class Options:
    """What the command line asks of every exporter."""

    onnx: bool = False
    imgsz: tuple[int, int] | None = None  # the ONNX input [height, width]; None: the task's evaluation size


@dataclass
class Written:
    """What a task's exporter wrote into the export folder."""

    files: dict[str, str]  # file name -> what it is
    load: str  # Python lines that load the export with the backend's own API (no vsynth)
    facts: dict[str, Any] = field(default_factory=dict)  # classes, sizes, thresholds the run used
    onnx: dict[str, Any] | None = None  # file, inputs, outputs, preprocessing, how to run it


def default_out(ckpt: Path) -> Path:
    """``RUN/checkpoints/best.pt`` -> ``RUN/checkpoints/best-export/``."""
    return ckpt.parent / f"{ckpt.stem}-export"


def export_checkpoint(ckpt: str | Path, out: str | Path | None = None, weights: str | None = None,
                      options: Options = Options(), overwrite: bool = False,
                      overrides: Sequence[str] = ()) -> tuple[Path, Written]:
    """Write the model of vsynth checkpoint ``ckpt`` in its backend's own format into ``out``."""
    from vsynth.export.source import open_checkpoint
    from vsynth.run.atomic import current_umask

    ckpt = Path(str(ckpt)).expanduser()
    if not ckpt.is_file():
        raise ConfigError(f"ckpt={ckpt}: file not found")
    out = Path(str(out)).expanduser() if out else default_out(ckpt)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"out={out}: folder exists and is not empty (nothing written; overwrite=true replaces "
                          "the export's files in it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())
        run = open_checkpoint(ckpt, weights, overrides, workdir=staging)
        written = run.task.exporter()(run, staging, options)
        manifest = {
            "task": run.task.name,
            "source": {"ckpt": str(ckpt.resolve()), "weights": run.weights.which, "step": run.step,
                       "meta": run.weights.meta},
            "written": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            **asdict(written),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out, written


def _publish(staging: Path, out: Path) -> None:
    """Move the finished files into ``out`` (the whole folder in one rename when ``out`` is new)."""
    if not out.exists():
        os.replace(staging, out)
        return
    for f in sorted(staging.iterdir()):
        os.replace(f, out / f.name)


def write_onnx(module, example, path: Path, inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """``module(example)`` as an ONNX graph at ``path`` (torch's exporter, fixed shapes, opset :data:`OPSET`).

    torch's graph-capturing exporter (``dynamo=True``) is used: it decomposes what the older tracing exporter
    refuses (e.g. PSPNet's adaptive pooling to sizes that do not divide the feature map).
    """
    import contextlib
    import io
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), input_names=list(inputs), output_names=list(outputs),
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)


def float_state(model) -> dict[str, Any]:
    """``model``'s state dict as plain float32 CPU tensors (copies), for a backend's checkpoint file."""
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().clone()
            for k, v in model.state_dict().items()}
