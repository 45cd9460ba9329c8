"""The keypoints page's "Your data" walk (docs/tasks/keypoints.md), command for command, on a small COCO
keypoints dataset drawn here: convert three splits into one folder, check it, train. Only the paths change (``/data/`` ->
a temporary folder), plus settings that make training take seconds."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.keypoints.your_data import FLIP_IDX, KEYPOINT_NAMES, SIGMAS, make_coco_pose

FAST = ["trainer.length=1", "trainer.threads=1", "trainer.batch_size=8", "trainer.workers=0", "task.imgsz=128",
        "task.samples.per_source=2", "task.samples.predictions=2", "trainer.progress_bar=false",
        "trainer.tensorboard=false"]


def docs_walk() -> list[str]:
    """The commands of steps 1-3 of the keypoints page's "Your data" section, continuation lines joined."""
    text = (REPO / "docs" / "tasks" / "keypoints.md").read_text()
    section = text[text.index("## Your data\n\nFrom COCO keypoints files"):]
    section = section[: section.index("4. With a synthetic source")]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [" ".join(ln.split()) for ln in lines if ln.strip()]


def test_docs_your_data_walk(tmp_path: Path, kp_cache: Path) -> None:
    make_coco_pose(tmp_path / "mydata")
    env = dict(os.environ, PYTHONPATH=str(REPO), VSYNTH_CACHE=str(kp_cache),
               YOLO_CONFIG_DIR=str(kp_cache / "ultralytics"))
    commands = docs_walk()
    assert [c.split()[2:4] for c in commands] == [["vsynth.data", "convert-coco-pose"]] * 3 + [
        ["vsynth.data", "check"], ["vsynth", "task=keypoints"]]
    outputs = []
    for command in commands:
        argv = shlex.split(command.replace("/data/", f"{tmp_path}/"))
        assert argv[0] == "python"
        if argv[2] == "vsynth":
            argv += [*FAST, f"hydra.run.dir={tmp_path / 'run'}"]
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-3000:])
        outputs.append(proc.stdout)
    assert "still missing: val: missing" in outputs[0] and outputs[2].splitlines()[-1].endswith("ready for training")
    assert outputs[3].splitlines()[-1] == "ok"
    run = tmp_path / "run"
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/num_images"] == 4 and metrics["test/num_gt"] == 4
    assert set(metrics["test/per_keypoint"]) == set(KEYPOINT_NAMES)
    gt = json.loads((run / "gt_test.json").read_text())["categories"][0]
    assert gt["kpt_oks_sigmas"] == SIGMAS and gt["flip_idx"] == FLIP_IDX  # from the converted data YAML
    assert "flip pair 1 <-> 2: left_eye <-> right_eye" in (run / "run.log").read_text()
