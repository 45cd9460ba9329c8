"""Helpers of the export tests: the export CLI, vsynth's own predictions, the backends' API without vsynth.

The backends' side runs in a separate interpreter started with ``python -E -s -S``: no PYTHONPATH, no
user site, no ``site`` processing, so the ``.pth`` file of the editable vsynth install never runs; the
backends' site-packages folders are put on ``sys.path`` by the script, and its working directory is
outside the repository. Each script reports whether ``vsynth``/``tasks`` were importable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tests.conftest import REPO, run_cli

BACKEND = Path(__file__).resolve().parent / "backend"


def export_cli(args: Sequence[str], cwd: Path, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m vsynth.export ARGS`` with this repository's vsynth."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.update({"VSYNTH_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    return subprocess.run([sys.executable, "-m", "vsynth.export", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def train_then_export(train_args: Sequence[str], root: Path, env: dict[str, str], *export_args: str
                      ) -> tuple[Path, Path, Path]:
    """A tiny run through ``python -m vsynth`` in ``root``, then its export: (best.pt, the cache, the export)."""
    cache = root / "cache"
    p = run_cli([*train_args, f"hydra.run.dir={root / 'run'}"], root, env={"VSYNTH_CACHE": str(cache),
                                                                          "OMP_NUM_THREADS": "1", **env})
    assert p.returncode == 0, p.stderr[-3000:]
    ckpt, out = root / "run" / "checkpoints" / "best.pt", root / "export"
    p = export_cli([f"ckpt={ckpt}", f"out={out}", *export_args], root, cache)
    assert p.returncode == 0, p.stderr[-3000:]
    return ckpt, cache, out


def onnx_export(ckpt: Path, cache: Path, work: Path, *extra: str) -> Path:
    """``python -m vsynth.export ckpt=... onnx=true`` into a fresh folder under ``work``; the folder."""
    out = work / "onnx-export"
    p = export_cli([f"ckpt={ckpt}", f"out={out}", "onnx=true", *extra], work, cache)
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def without_vsynth(script: str, payload: dict[str, Any], work: Path, timeout: int = 300) -> dict[str, Any]:
    """Run ``tests/export/backend/<script>`` in an interpreter where vsynth is not importable; its result."""
    work.mkdir(parents=True, exist_ok=True)
    for f in ("no_vsynth.py", script):  # run from a folder outside the repository
        shutil.copyfile(BACKEND / f, work / f)
    out = work / f"{Path(script).stem}.result.json"
    request = work / f"{Path(script).stem}.request.json"
    request.write_text(json.dumps({**payload, "site": site_packages(), "out": str(out)}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "OMP_NUM_THREADS": "1",
           "YOLO_OFFLINE": "true", "YOLO_VERBOSE": "false", "YOLO_CONFIG_DIR": str(work / "ultralytics"),
           "ULTRALYTICS_SAFE_LOAD": "1", "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-E", "-s", "-S", str(work / script), str(request)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["importable"] == {"vsynth": False, "tasks": False}, result["importable"]
    assert not any(Path(s) == REPO for s in result["sys_path"]), result["sys_path"]  # (the venv may live inside it)
    return result


def vsynth_predictions(ckpt: Path, cache: Path, n: int, *overrides: str):
    """(the rebuilt run, vsynth's own predictions on the first ``n`` test images): the task's evaluation
    loader and prediction step, one image per batch."""
    from vsynth.export.source import open_checkpoint
    from vsynth.train.evaluation import eval_loader

    run = open_checkpoint(ckpt, overrides=[f"paths.cache={cache}", f"eval.max_images={n}", "eval.batch=1", *overrides])
    preds: list[Any] = []
    with torch.no_grad():
        for _, batch in eval_loader(run.task, "test"):
            preds += run.task.predict_step(run.model, batch)
    return run, preds


def reads_back_as_init(run, path: Path, kind: str) -> None:
    """vsynth's safe reader takes the export back (e.g. as ``init=``): the same tensors as the model."""
    from vsynth.train.checkpoint import read_weights

    w = read_weights(path, "init", allow=run.task.checkpoint_allow_list())
    own = run.model.state_dict()
    assert w.kind == kind and w.state.keys() == own.keys()
    assert all(torch.equal(w.state[k].to(v.dtype), v) for k, v in own.items())


def match(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], min_score: float, slack: float,
          box_tol: float, score_tol: float, extra_tol: float = 0.0) -> int:
    """Every detection scoring >= ``min_score`` on one side has a twin scoring >= ``min_score - slack`` on the
    other: boxes within ``box_tol`` px (+ 1e-6 of the coordinate: an untrained head can predict huge boxes),
    scores within ``score_tol``, same class, ``extra`` (keypoints) within
    ``extra_tol`` px. Returns how many detections were compared."""
    compared = 0
    for a, b in ((ours, theirs), (theirs, ours)):
        keep_b = b["scores"] >= min_score - slack
        for i in np.flatnonzero(a["scores"] >= min_score):
            assert keep_b.any(), f"no twin for detection {i} (score {a['scores'][i]:.4f})"
            cand = np.flatnonzero(keep_b)
            err = np.abs(b["boxes"][cand] - a["boxes"][i]).max(axis=1)
            j = cand[int(np.argmin(err))]
            assert err.min() <= box_tol + 1e-6 * np.abs(a["boxes"][i]).max(), (i, a["boxes"][i], b["boxes"][j])
            assert abs(a["scores"][i] - b["scores"][j]) <= score_tol, (a["scores"][i], b["scores"][j])
            assert a["classes"][i] == b["classes"][j], (a["classes"][i], b["classes"][j])
            if "extra" in a:
                assert np.abs(a["extra"][i] - b["extra"][j]).max() <= extra_tol, (a["extra"][i], b["extra"][j])
            compared += 1
    return compared


def onnx_outputs(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)
