"""Sweeps through a real one-node SLURM (scripts/setup-slurm.sh): jobs, DDP tasks, every requeue path.

Each test runs the tiny test task, so a job takes seconds; a requeue takes about 20 s more (the
setup script's cred_expire=10 plus the next attempt's start-up). Times: BENCHMARKS.md.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import cli_env, tiny_args
from tests.slurm.helpers import status, summary_rows, training_underway, wait_for

pytestmark = pytest.mark.slurm


def _requeued_and_resumed(s, signal_name: str, world: int = 1) -> None:
    code, out, err = s.finish()
    assert code == 0, f"sweep exit {code}\n{out[-2000:]}\n{err[-3000:]}"
    folder = s.job_folder()
    st = status(folder)
    assert st["state"] == "done" and st["attempts"] == 2, st
    log = (folder / "run.log").read_text()
    assert f"received signal {signal_name}" in log
    assert log.count("Resumed from") == 1 and log.count("Done in") == 1
    assert log.count(f"world={world})") == 2  # one line per attempt, rank 0 only
    rows = summary_rows(s.root())
    assert len(rows) == 1 and rows[0]["status"] == "done" and rows[0]["attempts"] == "2"


def test_two_job_sweep_then_rerun_skips_finished_jobs(sweep):
    args = ("arm=ratio", "data.ratio=0.0,1.0", "trainer.length=1")
    first = sweep(*args)
    code, out, err = first.finish()
    assert code == 0, err[-3000:]
    root = first.root()
    assert len(first.job_ids(2)) == 2  # one SLURM array of two jobs
    rows = summary_rows(root)
    assert sorted(r["override:data.ratio"] for r in rows) == ["0.0", "1.0"] and {r["status"] for r in rows} == {"done"}
    second = sweep(*args, cwd=first.cwd)
    code, out, err = second.finish()
    assert code == 0, err[-3000:]
    assert second.root() == root
    for job in (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        assert status(job)["attempts"] == 1  # not retrained
        assert "already finished" in (job / "run.log").read_text()


def test_two_tasks_train_as_one_gloo_process_group(sweep):
    s = sweep("hydra.launcher.tasks_per_node=2", "trainer.length=2")
    code, out, err = s.finish()
    assert code == 0, err[-3000:]
    folder = s.job_folder()
    log = (folder / "run.log").read_text()
    assert log.count("world=2)") == 1 and log.count("Done in") == 1 and "world=1" not in log
    comp = json.loads((folder / "composition.json").read_text())
    assert comp["world_size"] == 2
    assert len(summary_rows(s.root())) == 1 and status(folder)["state"] == "done"


def test_usr2_preemption_requeues_and_resumes(sweep):
    s = sweep("trainer.length=60")
    folder = s.job_folder()
    (job,) = s.job_ids()
    wait_for("training to save last.pt", lambda: training_underway(folder))
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _requeued_and_resumed(s, "12")


def test_sigterm_requeue_of_a_two_task_job_resumes_and_the_sweep_succeeds(sweep):
    s = sweep("hydra.launcher.tasks_per_node=2", "trainer.length=60")
    folder = s.job_folder()
    (job,) = s.job_ids()
    wait_for("training to save last.pt", lambda: training_underway(folder))
    subprocess.run(["scontrol", "requeue", job], check=True)  # SIGTERM to every task, as preemption does
    _requeued_and_resumed(s, "15", world=2)


def test_scancel_ends_the_job_for_good(sweep):
    s = sweep("trainer.length=60")
    folder = s.job_folder()
    (job,) = s.job_ids()
    wait_for("training to save last.pt", lambda: training_underway(folder))
    subprocess.run(["scancel", job], check=True)  # SIGTERM too, but the user means it: no requeue
    code, out, err = s.finish()
    assert code == 3 and "failed (exit code 3)" in err, err[-3000:]  # interrupted: rerunning the sweep resumes it
    assert status(folder)["state"] == "interrupted" and status(folder)["attempts"] == 1
    states = subprocess.run(["sacct", "-j", job, "-D", "-X", "-n", "-o", "State"], capture_output=True, text=True)
    assert states.stdout.split()[0].startswith("CANCELLED") and "REQUEUED" not in states.stdout, states.stdout


def test_time_limit_requeues_and_resumes(sweep):
    # A 1-minute job that would train for hours: SLURM's time-limit signal (USR2, sent between 15
    # and 45 s in: SLURM checks time limits every 30 s) stops it, submitit requeues it, and the next
    # attempt resumes from last.pt. (The sweep's own exit after a requeue: the USR2 test above.)
    s = sweep("hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=15", "trainer.length=100000")
    folder = s.job_folder()
    (job,) = s.job_ids()
    log = folder / "run.log"
    wait_for("the next attempt to resume", lambda: log.is_file() and "Resumed from" in log.read_text(), timeout=180)
    text = log.read_text()
    assert "received signal 12" in text and "this job is timed-out" in text
    assert status(folder)["attempts"] == 2
    states = subprocess.run(["sacct", "-j", job, "-D", "-X", "-n", "-o", "State"], capture_output=True, text=True)
    assert states.stdout.split()[:2] == ["REQUEUED", "RUNNING"], states.stdout
    resumed_at = int(text.split("Resumed from")[1].split(" at step ")[1].split("/")[0])
    assert resumed_at > 0


def test_several_tasks_without_a_process_group_are_refused(tmp_path):
    # two SLURM tasks that each claim to be a whole world of 1: two copies of one run
    env = cli_env(tmp_path, {"WORLD_SIZE": "1"})
    p = subprocess.run(["srun", "-n2", "-c1", "--mem=1G", "-t", "5", sys.executable, "-m", "vsynth",
                        *tiny_args("trainer.threads=1")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr[-3000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("vsynth: error:")]
    assert len(errors) == 2 and all("SLURM started 2 tasks" in e for e in errors), p.stderr[-3000:]
    assert not list((tmp_path / "outputs").rglob("last.pt"))


def test_kill_switch_runs_its_arms_as_slurm_jobs(tmp_path):
    """experiment=kill_switch with hydra/launcher=slurm: base, then B and A as one array, then the verdict."""
    from tests.conftest import run_cli
    from tests.framework.test_experiment_launch import KS
    from tests.slurm.helpers import ON_SLURM

    root = tmp_path / "ks"
    p = run_cli(tiny_args(*KS, *ON_SLURM, f"hydra.run.dir={root}"), tmp_path, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    for run in ("base-seed0", "B-seed0", "A-seed0"):
        assert status(root / run)["state"] == "done", run
    jobs = {d.name for d in (root / ".submitit").iterdir() if d.is_dir()}
    arrays = {j.split("_")[0] for j in jobs if "_" in j}
    assert len(arrays) == 1 and {f"{next(iter(arrays))}_0", f"{next(iter(arrays))}_1"} <= jobs  # B and A: one array
    assert len({j for j in jobs if "_" not in j} - arrays) == 1  # the baseline before them
    assert json.loads((root / "killswitch.json").read_text())["verdict"] in ("PASS", "MARGINAL", "FAIL")
