"""The entry point as users call it: python -m vsynth ... in a subprocess."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, tiny_args

RUN_FILES = [".hydra/config.yaml", ".hydra/overrides.yaml", "run.log", "status.json", "env.txt", "metrics.jsonl",
             "metrics.json", "checkpoints/last.pt", "checkpoints/best.pt", "report.md", "composition.json",
             "samples/train_batch_0.png"]


def _run_dir(proc) -> Path:
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("Run folder: ")]
    assert lines, proc.stdout + proc.stderr
    return Path(lines[-1].split("Run folder: ", 1)[1].split(" (")[0])


def test_help_imports_no_backend_and_lists_the_groups(tmp_path):
    code = ("import sys, time; t=time.time(); sys.argv=['vsynth','--help']; import vsynth.__main__ as m\n"
            "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
            "print('ELAPSED', time.time()-t); print('HEAVY', [x for x in ('torch','ultralytics','yolox','mmseg') if x in sys.modules])")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "Config groups" in p.stdout and "task: " in p.stdout and "arm: A, B, base" in p.stdout
    assert "HEAVY []" in p.stdout and "vsynth/" not in p.stdout  # not the schema groups
    assert "hydra/launcher: basic, local, slurm" in p.stdout
    assert not (tmp_path / "outputs").exists()


def test_cfg_job_prints_composed_config_from_any_directory(tmp_path):
    p = run_cli(tiny_args("trainer.optimizer.lr=0.5", "--cfg", "job"), tmp_path)
    assert p.returncode == 0, p.stderr
    assert "lr: 0.5" in p.stdout and "name: tiny" in p.stdout and "real_subset: 16" in p.stdout


def test_run_writes_complete_run_folder(tiny_cli):
    p = tiny_cli("trainer.length=1", "trainer.threads=1")
    assert p.returncode == 0, p.stderr
    d = _run_dir(p)
    for f in RUN_FILES:
        assert (d / f).exists(), f
    assert (d / "tb").is_dir() and any((d / "tb").iterdir())
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and status["seed"] == 0 and status["error"] is None
    metrics = json.loads((d / "metrics.json").read_text())
    assert {"test/acc", "best/val/acc", "best/step", "val/acc", "val/loss"} <= set(metrics)
    assert metrics["val/acc"] == metrics["best/val/acc"]
    assert "Batch composition: " in (d / "run.log").read_text()
    assert "trainer.threads=1: torch uses 1 CPU thread(s)" in (d / "run.log").read_text()
    assert "torch: " in (d / "env.txt").read_text() and "git commit:" in (d / "env.txt").read_text()
    assert "## Final metrics" in (d / "report.md").read_text()


def test_two_runs_in_the_same_second_get_different_folders(tiny_cli):
    args = tiny_args("trainer.length=1", "name=same")
    procs = [subprocess.Popen([sys.executable, "-m", "vsynth", *args], cwd=tiny_cli.cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    dirs = {_run_dir(type("P", (), {"stdout": o, "stderr": e})()) for o, e in outs}
    assert len(dirs) == 2 and all((d / "status.json").exists() for d in dirs)


def test_explicit_run_dir_resumes_and_finished_run_is_not_retrained(tiny_cli, tmp_path):
    rd = tmp_path / "myrun"
    p = tiny_cli("trainer.length=2", "trainer.stop_at_step=30", f"hydra.run.dir={rd}")
    assert p.returncode == 3 and json.loads((rd / "status.json").read_text())["state"] == "interrupted"
    p = tiny_cli("trainer.length=2", f"hydra.run.dir={rd}")
    assert p.returncode == 0, p.stderr
    assert "Resumed from" in (rd / "run.log").read_text()
    st = json.loads((rd / "status.json").read_text())
    assert st["state"] == "done" and st["attempts"] == 2
    before = (rd / "checkpoints" / "last.pt").read_bytes()
    p = tiny_cli("trainer.length=2", f"hydra.run.dir={rd}")
    assert p.returncode == 0 and "already done" in p.stdout
    assert (rd / "checkpoints" / "last.pt").read_bytes() == before


def test_mode_eval_reproduces_final_test_metrics(tiny_cli):
    p = tiny_cli("trainer.length=1")
    d = _run_dir(p)
    final = json.loads((d / "metrics.json").read_text())
    e = tiny_cli("mode=eval", f"ckpt={d / 'checkpoints' / 'best.pt'}")
    assert e.returncode == 0, e.stderr
    ev = json.loads((_run_dir(e) / "metrics.json").read_text())
    assert ev["test/acc"] == final["test/acc"] and ev["test/loss"] == pytest.approx(final["test/loss"], abs=1e-7)


@pytest.mark.parametrize(
    "override,needle",
    [
        (["arm=ratio", "data.ratio=1.5"], "data.ratio must be in [0, 1], got 1.5"),
        (["arm.sources.real.factor=-2"], "arm.sources.real.factor must be >= 0, got -2.0"),
        (["data.root=/nonexistent/place"], "data.root=/nonexistent/place: folder not found"),
        (["data.real_subset=1000"], "data.real_subset=1000 is larger than the 40 images of the real train split"),
        (["mode=eval", "ckpt=/nonexistent/model.pt"], "ckpt=/nonexistent/model.pt: file not found"),
        (["trainer.amp=fp8"], "trainer.amp must be auto | fp16 | bf16 | off, got 'fp8'"),
        (["trainer.threads=0"], "trainer.threads must be a positive integer or null, got 0"),
    ],
)
def test_bad_input_gives_one_line_and_failed_status(tiny_cli, override, needle):
    p = tiny_cli("trainer.length=1", *override)
    assert p.returncode == 2, p.stdout + p.stderr
    err = [l for l in p.stderr.splitlines() if l.startswith("vsynth: error:")]
    assert len(err) == 1 and needle in err[0], p.stderr
    assert "Traceback" not in p.stderr
    d = _run_dir(p)
    st = json.loads((d / "status.json").read_text())
    assert st["state"] == "failed" and needle in st["error"]
    assert "Traceback" in (d / "run.log").read_text()


def test_unreadable_checkpoint_is_named(tiny_cli, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    p = tiny_cli("mode=eval", f"ckpt={bad}")
    assert p.returncode == 2 and f"ckpt={bad}: not a readable checkpoint" in p.stderr


def test_unknown_group_option_is_refused(tiny_cli):
    p = tiny_cli("arm=Z")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["vsynth: error: arm=Z: no such option; available: A, B, base, ratio, synth_only"]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])  # a scheduler's kill, a user's Ctrl-C
def test_stop_signal_saves_last_checkpoint_and_marks_interrupted(tiny_cli, tmp_path, signame):
    import os
    import signal

    sig = getattr(signal, signame)

    rd = tmp_path / "killed"
    args = tiny_args("trainer.length=400", "trainer.val.interval=1000", "trainer.log_interval=1", f"hydra.run.dir={rd}")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vsynth", *args], cwd=tiny_cli.cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("step 20/"):
            break
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode == 3
    st = json.loads((rd / "status.json").read_text())
    assert st["state"] == "interrupted" and f"signal {int(sig)}" in st["error"]
    from vsynth.train.checkpoint import load_checkpoint

    assert load_checkpoint(rd / "checkpoints" / "last.pt")["step"] >= 20


def test_a_bad_key_in_a_preset_file_is_named_with_the_file():
    """A wrong key inside a user's experiment YAML: Hydra's first line names only the file, the key is on the next."""
    from hydra.errors import ConfigCompositionException

    from vsynth.config.errors import one_line

    ex = ConfigCompositionException("In 'experiment/mine': ConfigKeyError raised while composing config:\n"
                                    "Key 'size' not in 'SegDemo'\n    full_key: data.demo.size")
    assert one_line(ex) == ("In 'experiment/mine': Key 'size' not in 'SegDemo'; "
                            "`--cfg job` prints the composed config")
