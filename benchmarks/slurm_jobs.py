"""Job and requeue times on a one-node SLURM (scripts/setup-slurm.sh), with the tiny test task.

What a user waits for around the training itself, measured through the real CLI
(`python -m vsynth -m hydra/launcher=slurm ...`):
  sweep       the sweep command, start to exit (Hydra + submitit + SLURM + the job)
  queue       sbatch to the job's start (sacct Submit -> Start)
  job         the job in SLURM (sacct Start -> End)
  requeue     the stop signal (or `scontrol requeue`) to the next attempt's "Resumed from" line
  signal      for a 1-minute job with signal_delay_s=15: seconds into the job when USR2 arrived

    .venv/bin/python benchmarks/slurm_jobs.py [--skip-time-limit]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' SLURM helpers

from tests.slurm.helpers import Sweep, log_times, slurm_problem, training_underway, wait_for  # noqa: E402
from vsynth.run.envinfo import cpu_model  # noqa: E402


def _sacct(job: str) -> list[dict[str, str]]:
    """One record per attempt: Submit, Start, End (epoch seconds) and State."""
    out = subprocess.run(["sacct", "-j", job, "-D", "-X", "-n", "-P", "-o", "Submit,Start,End,State"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        submit, start, end, state = line.split("|")
        stamp = {k: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S").timestamp() if v[:1].isdigit() else float("nan")
                 for k, v in (("submit", submit), ("start", start), ("end", end))}
        rows.append({**stamp, "state": state})
    return rows


def _run(cwd: Path, name: str, *overrides: str, stop: list[str] | None = None) -> dict:
    s = Sweep(cwd, *overrides)
    try:
        folder = s.job_folder()
        (job,) = s.job_ids()
        sent = None
        if stop:
            wait_for("training to save last.pt", lambda: training_underway(folder))
            sent = time.time()
            subprocess.run([*stop, job], check=True)
        code, _, err = s.finish(timeout=600)
        if code != 0:
            raise SystemExit(f"{name}: the sweep exited {code}\n{err[-2000:]}")
        attempts = _sacct(job)
        while time.time() < s.ended + 5 and (not attempts or attempts[-1]["end"] != attempts[-1]["end"]):
            time.sleep(0.5)  # the job's own end is written a moment after its result
            attempts = _sacct(job)
        fig = {"name": name, "sweep": s.ended - s.started, "queue": attempts[0]["start"] - attempts[0]["submit"],
               "job": sum(a["end"] - a["start"] for a in attempts), "attempts": len(attempts)}
        if sent is not None:
            fig["requeue"] = log_times(folder / "run.log", "Resumed from")[0] - sent
        return fig
    finally:
        s.close()


def _time_limit(cwd: Path) -> dict:
    s = Sweep(cwd, "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=15", "trainer.length=100000")
    try:
        folder = s.job_folder()
        (job,) = s.job_ids()
        log = folder / "run.log"
        wait_for("the next attempt to resume", lambda: log.is_file() and "Resumed from" in log.read_text(), 240)
        first = _sacct(job)[0]
        got = log_times(log, "received signal 12")[0]
        return {"name": "time limit 1 min, signal_delay_s=15", "signal": got - first["start"],
                "requeue": log_times(log, "Resumed from")[0] - got, "attempts": "2 (then cancelled)"}
    finally:
        s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-time-limit", action="store_true", help="skip the 1-minute time-limit job")
    args = parser.parse_args()
    problem = slurm_problem()
    if problem:
        raise SystemExit(f"slurm_jobs.py: {problem}")
    conf = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    version = next((ln.split("=")[1].strip() for ln in conf.splitlines() if ln.startswith("SLURM_VERSION")), "?")
    auth = next((ln.split("=", 1)[1].strip() for ln in conf.splitlines() if ln.startswith("AuthInfo")), "?")
    print(f"# {platform.node()}: {cpu_model()}, SLURM {version} (AuthInfo {auth})\n")
    figs = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("1 job, 1 task, trainer.length=1", ("trainer.length=1",), None),
                ("1 job, 2 tasks (gloo), trainer.length=1", ("hydra.launcher.tasks_per_node=2", "trainer.length=1"), None),
                ("USR2 (scancel --signal=USR2)", ("trainer.length=100",), ["scancel", "--signal=USR2"]),
                ("SIGTERM (scontrol requeue)", ("trainer.length=100",), ["scontrol", "requeue"]),
                ("SIGTERM (scontrol requeue), 2 tasks", ("hydra.launcher.tasks_per_node=2", "trainer.length=100"),
                 ["scontrol", "requeue"])]
        for i, (name, overrides, stop) in enumerate(runs):
            cwd = Path(tmp) / str(i)
            cwd.mkdir()
            figs.append(_run(cwd, name, *overrides, stop=stop))
            print(figs[-1], flush=True)
        if not args.skip_time_limit:
            cwd = Path(tmp) / "tl"
            cwd.mkdir()
            figs.append(_time_limit(cwd))
            print(figs[-1], flush=True)
    print("\n| run | sweep command (s) | queue (s) | job in SLURM (s) | attempts | signal -> resumed (s) |")
    print("|---|---|---|---|---|---|")
    for f in figs:
        cells = [f"{f[k]:.1f}" if isinstance(f.get(k), float) else str(f.get(k, ""))
                 for k in ("sweep", "queue", "job", "attempts", "requeue")]
        print(f"| {f['name']} | {' | '.join(cells)} |")
    tl = [f for f in figs if "signal" in f]
    if tl:
        print(f"\ntime-limit USR2 arrived {tl[0]['signal']:.0f} s into a 1-minute job with signal_delay_s=15 "
              f"(nominal: 45 s)")


if __name__ == "__main__":
    main()
