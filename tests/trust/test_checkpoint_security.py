"""No checkpoint a user passes runs code: every entry of every task, plain-pickle and torch-zip payloads.

Each payload would create a marker file when unpickled in full. Every run must end with one
``vsynth: error:`` line naming the key, the file and the offending global, exit code 2, no marker,
and ``status.json`` failed. Genuine backend checkpoints of each kind still load (see
``test_genuine_checkpoints.py``).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run_cli, tiny_args

SEG_CONF = REPO / "tests" / "segmentation" / "conf"


class _Payload:
    """Unpickling this calls ``os.system`` (the classic malicious checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plain_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    return path


def _torch_zip(path: Path, marker: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(2)}, "ema": _Payload(marker)}, path)
    return path


PAYLOADS = {"plain-pickle": _plain_pickle, "torch-zip": _torch_zip}


def _refused(p: subprocess.CompletedProcess, run_dir: Path, key: str, file: Path, marker: Path) -> None:
    assert not marker.exists(), "the payload ran"
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error:")]
    assert len(errors) == 1, p.stderr
    assert f"{key}={file}" in errors[0] and "refused" in errors[0] and "system" in errors[0], errors[0]
    assert "Traceback" not in p.stderr
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"


# ---- the framework's own entries (the tiny task): ckpt=, init=, resume from last.pt, slim ----------------
@pytest.mark.parametrize("kind", PAYLOADS)
@pytest.mark.parametrize("entry", ["ckpt", "init", "resume"])
def test_framework_entries_never_run_a_payload(tmp_path, kind, entry):
    marker = tmp_path / "pwned"
    rd = tmp_path / "run"
    if entry == "resume":  # a poisoned last.pt in the run folder being resumed
        (rd / "checkpoints").mkdir(parents=True)
        bad = PAYLOADS[kind](rd / "checkpoints" / "last.pt", marker)
        extra, key = [], "resume"
    else:
        bad = PAYLOADS[kind](tmp_path / "bad.pt", marker)
        extra = ["mode=eval"] if entry == "ckpt" else []
        extra.append(f"{entry}={bad}")
        key = entry
    p = run_cli(tiny_args("trainer.length=1", *extra, f"hydra.run.dir={rd}"), tmp_path)
    _refused(p, rd, key, bad, marker)


@pytest.mark.parametrize("kind", PAYLOADS)
def test_slim_never_runs_a_payload(tmp_path, kind):
    marker = tmp_path / "pwned"
    bad = PAYLOADS[kind](tmp_path / "bad.pt", marker)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "vsynth.train.slim", str(bad), str(tmp_path / "out.pt")], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert not marker.exists() and p.returncode == 2 and not (tmp_path / "out.pt").exists()
    assert f"src={bad}: refused" in p.stderr and "Traceback" not in p.stderr


def test_trust_checkpoint_is_the_only_full_unpickle_and_says_so(tmp_path):
    """trust_checkpoint=true unpickles the file (here: the payload runs, which is what trusting means)."""
    marker = tmp_path / "ran"
    bad = _torch_zip(tmp_path / "bad.pt", marker)
    rd = tmp_path / "run"
    p = run_cli(tiny_args("mode=eval", f"ckpt={bad}", "trust_checkpoint=true", f"hydra.run.dir={rd}"), tmp_path)
    assert marker.exists() and p.returncode == 2  # it ran, then the file held no usable weights
    assert "trust_checkpoint=true: unpickling the file in full" in (rd / "run.log").read_text()


# ---- the three tasks: their ckpt=, init= (and the keypoints demo's data.demo.init=) ---------------------
TASK_ARGS = {
    "keypoints": ["task=keypoints", "arm=B", "data.demo.counts.real={train: 8, val: 4, test: 4}",
                  "data.demo.counts.synthetic={train: 4, val: 2, test: 2}", "data.demo.image_size=[160,128]", "task.imgsz=64",
                  "data.real_subset=2"],
    "detection": ["task=detection", "arm=base", "data.demo.counts.real={train: 8, val: 4, test: 4}",
                  "data.demo.counts.synthetic={train: 4, val: 2, test: 2}", "data.demo.image_size=[160,128]"],
    "segmentation": [f"hydra.searchpath=[file://{SEG_CONF}]", "experiment=seg_tiny"],
}
ENTRIES = [("keypoints", "ckpt"), ("keypoints", "init"), ("keypoints", "data.demo.init"),
           ("detection", "ckpt"), ("detection", "init"), ("segmentation", "ckpt"), ("segmentation", "init")]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trust-cache")


@pytest.mark.parametrize("kind", PAYLOADS)
@pytest.mark.parametrize("task,entry", ENTRIES)
def test_task_entries_never_run_a_payload(tmp_path, shared_cache, task, entry, kind):
    marker = tmp_path / "pwned"
    bad = PAYLOADS[kind](tmp_path / "bad.pt", marker)
    rd = tmp_path / "run"
    extra = ["mode=eval"] if entry == "ckpt" else []
    p = run_cli([*TASK_ARGS[task], *extra, f"{entry}={bad}", "trainer.threads=1", f"hydra.run.dir={rd}"], tmp_path,
                env={"VSYNTH_CACHE": str(shared_cache)})
    _refused(p, rd, entry, bad, marker)


def test_an_ultralytics_checkpoint_with_a_payload_inside_is_refused(tmp_path, shared_cache):
    """A real pose model pickled with a payload beside it: the allow-list admits the model classes only."""
    from ultralytics.nn.tasks import PoseModel

    marker = tmp_path / "pwned"
    bad = tmp_path / "yolo-with-payload.pt"
    torch.save({"model": PoseModel("yolo11n-pose.yaml", nc=1, data_kpt_shape=(14, 3), verbose=False).half(),
                "train_args": {"x": _Payload(marker)}}, bad)
    rd = tmp_path / "run"
    p = run_cli([*TASK_ARGS["keypoints"], f"init={bad}", f"hydra.run.dir={rd}"], tmp_path,
                env={"VSYNTH_CACHE": str(shared_cache)})
    _refused(p, rd, "init", bad, marker)


def test_a_model_yaml_never_runs_code(tmp_path, shared_cache):
    """ultralytics evaluates a model YAML's activation with eval() unless its restricted mode is on."""
    marker = tmp_path / "pwned"
    yaml = tmp_path / "evil-pose.yaml"
    src = (Path(__import__("ultralytics").__file__).parent / "cfg" / "models" / "11" / "yolo11-pose.yaml").read_text()
    yaml.write_text(f"activation: __import__('os').system('touch {marker}')\n" + src)
    rd = tmp_path / "run"
    p = run_cli([*TASK_ARGS["keypoints"], f"model.cfg={yaml}", "data.demo.init=null", f"hydra.run.dir={rd}"], tmp_path,
                env={"VSYNTH_CACHE": str(shared_cache)})
    assert not marker.exists()
    assert p.returncode == 2 and "model.cfg=" in p.stderr, p.stderr[-2000:]
