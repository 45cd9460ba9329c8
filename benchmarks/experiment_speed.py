"""Wall and CPU time of a demo experiment end to end, and what it would take on N idle cores.

Runs ``python -m vsynth experiment=<preset> [overrides]`` as a user would (a fresh demo cache unless
--cache is given, so the world's generation is included), polls the process tree every half second
and charges each process's CPU time (user + system, its DataLoader workers included) to the run
folder it writes (its open run.log), or to the experiment itself. The experiment's runs go in
stages (the kill switch: the baseline, then every seed of both arms at once), so on N idle cores it
would take about

    experiment's own CPU  +  sum over stages of (the stage's runs scheduled longest-first on N cores)

with each run's CPU time as measured here. On a loaded machine CPU times are inflated somewhat
(shared caches, time slicing), so the estimate is an upper bound for idle cores.

    .venv/bin/python benchmarks/experiment_speed.py kill_switch_planted [--cores 2] [--out DIR] [--cache DIR] \
        ['data.demo.effects.keypoint_shift.offset=[0.0,0.0]' ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vsynth.run.envinfo import cpu_model  # noqa: E402


def _run_folder(proc: psutil.Process, root: Path) -> str | None:
    """The run folder under ``root`` whose run.log this process writes, if any ('' = the root itself)."""
    try:
        for f in proc.open_files():
            p = Path(f.path)
            if p.name == "run.log" and root in p.parents:
                rel = str(p.parent.relative_to(root))
                return "" if rel == "." else rel
    except (psutil.Error, ValueError):
        pass
    return None


def measure(cmd: list[str], root: Path, env: dict[str, str]) -> dict:
    """Run ``cmd``; per process: last seen CPU seconds and the run folder it belongs to (inherited by children)."""
    t0 = time.time()
    top = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    parent = psutil.Process(top.pid)
    cpu: dict[int, float] = {}
    owner: dict[int, str | None] = {}
    parents: dict[int, int] = {}
    while top.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
        except psutil.Error:
            procs = [parent]
        for p in procs:
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
                parents.setdefault(p.pid, p.ppid())
                if owner.get(p.pid) is None:
                    owner[p.pid] = _run_folder(p, root)
            except psutil.Error:
                continue
        time.sleep(0.5)
    out = top.stdout.read() if top.stdout else ""
    wall = time.time() - t0

    def folder(pid: int) -> str:
        seen = set()
        while pid not in seen:
            seen.add(pid)
            if owner.get(pid) not in (None, ""):
                return owner[pid]
            if pid == top.pid or pid not in parents:
                break
            pid = parents[pid]
        return ""

    by_run: dict[str, float] = {}
    for pid, seconds in cpu.items():
        by_run[folder(pid)] = by_run.get(folder(pid), 0.0) + seconds
    return {"code": top.returncode, "wall_s": wall, "cpu_s": by_run, "output": out}


def schedule(jobs: list[float], cores: int) -> float:
    """Makespan of ``jobs`` (CPU seconds) on ``cores``, longest first to the least loaded core."""
    loads = [0.0] * cores
    for j in sorted(jobs, reverse=True):
        loads[loads.index(min(loads))] += j
    return max(loads)


def stages(preset: str, runs: list[str]) -> list[list[str]]:
    """The runs of each stage: the kill switch's baseline comes first, everything else is one stage."""
    first = [r for r in runs if r.startswith(("base-seed", "base-eval"))] if "kill_switch" in preset else []
    rest = [r for r in runs if r not in first]
    return [s for s in (first, rest) if s]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", help="an experiment preset, e.g. kill_switch_planted or data_value")
    ap.add_argument("overrides", nargs="*", help="extra overrides (after --)")
    ap.add_argument("--cores", type=int, default=2, help="idle cores to estimate the wall time for (default 2)")
    ap.add_argument("--out", type=Path, help="experiment root (default: a temporary folder)")
    ap.add_argument("--cache", type=Path, help="demo cache to use (default: a fresh one: world generation included)")
    args = ap.parse_intermixed_args()
    tmp = Path(tempfile.mkdtemp(prefix="vsynth-exp-speed-"))
    root = (args.out or tmp / "experiment").resolve()
    env = dict(os.environ, VSYNTH_CACHE=str(args.cache or tmp / "cache"), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "vsynth", f"experiment={args.preset}", f"hydra.run.dir={root}", *args.overrides]
    print("$", " ".join(cmd))
    res = measure(cmd, root, env)
    if res["code"] != 0:
        print(res["output"][-3000:])
        return 1
    runs = sorted(k for k in res["cpu_s"] if k)
    own = res["cpu_s"].get("", 0.0)
    estimate = own + sum(schedule([res["cpu_s"][r] for r in stage], args.cores) for stage in stages(args.preset, runs))
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          f"python {platform.python_version()}")
    print(f"wall {res['wall_s']:.0f} s, CPU {sum(res['cpu_s'].values()):.0f} s "
          f"(the experiment itself {own:.0f} s, {len(runs)} runs)")
    for r in runs:
        status = json.loads((root / r / "status.json").read_text()) if (root / r / "status.json").is_file() else {}
        print(f"  {r}: CPU {res['cpu_s'][r]:.0f} s, wall {status.get('wall_time_s', '?')} s")
    print(f"estimated wall on {args.cores} idle cores: {estimate:.0f} s")
    for name in ("killswitch.json", "data_value.json"):
        if (root / name).is_file():
            data = json.loads((root / name).read_text())
            if name == "killswitch.json":
                c = data["contribution"]
                print(f"A - B = {c['mean'] * 100:+.2f} pp [{c['low'] * 100:+.2f}, {c['high'] * 100:+.2f}] "
                      f"{data['metric']}; {data['verdict_line']}")
            else:
                for p in data["points"]:
                    print(f"  {p['size']}: {p['worth']['answer']}")
    print(f"experiment root: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
