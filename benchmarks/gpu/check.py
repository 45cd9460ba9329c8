"""The GPU check: vsynth's CUDA path proven in one call, within a time budget (default 7.5 minutes).

    python benchmarks/gpu/check.py [--out DIR] [--budget SECONDS] [--tasks T ...] [--stages S ...]
    python benchmarks/gpu/check.py --cpu-dry-run    # the same script end to end on a CPU, tiny sizes

On the air-gapped GPU node run ``benchmarks/gpu/check.sh``, which installs the wheels fetched by
``fetch_wheels.py`` and then runs this. Every stage (see ``stages.py``) runs in its own process with
a deadline of its own, cut to what is left of the budget, so one hang cannot use the whole budget;
stages that no longer fit are reported as not run. Writes ``gpu_check.json`` (every number) and
``gpu_check.md`` (a readable summary, also printed) into ``--out``. Exit code 0 when every stage
that ran passed, 1 otherwise, 2 when CUDA is absent (without ``--cpu-dry-run``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.gpu.common import TASKS  # noqa: E402

#: stage -> its own deadline in seconds (GPU node); most important first: the order they run in
STAGES: dict[str, int] = {"env": 60, "data": 120, "train": 100, "resume": 100, "backend": 120, "cli": 120}


def stage_list(stages: list[str], tasks: list[str]) -> list[tuple[str, int]]:
    out = []
    for s in stages:
        if s == "env":
            out.append(("env", STAGES["env"]))
        elif s == "data":
            out.extend((f"data:{t}", STAGES["data"] // len(tasks)) for t in tasks)
        else:
            out.extend((f"{s}:{t}", STAGES[s]) for t in tasks)
    return out


def run_stage(name: str, limit: float, out: Path, dry: bool) -> dict[str, Any]:
    result = out / "stages" / f"{name.replace(':', '-')}.json"
    log = out / "stages" / f"{name.replace(':', '-')}.log"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / "stages.py"), name, "--out", str(out), "--result", str(result)]
    if dry:
        cmd.append("--cpu-dry-run")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=out, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage and its DataLoader workers
            proc.wait()
            code = None
    seconds = round(time.perf_counter() - t0, 1)
    data = json.loads(result.read_text()) if result.is_file() else {}
    state = "ok" if code == 0 else "timeout" if code is None else "failed"
    rec = {"state": state, "seconds": seconds, "limit_s": round(limit), "exit_code": code, "log": str(log), **data}
    if state != "ok":
        rec["log_tail"] = log.read_text(errors="replace")[-1500:]
    return rec


def _fmt(r: dict[str, Any] | None) -> str:
    if not r:
        return "-"
    if r.get("ok") is None and "skipped" in r:
        return f"skipped: {r['skipped']}"
    if r.get("ok") is False:
        return f"FAILED: {r.get('error', '')}"
    mem = f", {r['peak_mem_mib']} MiB" if "peak_mem_mib" in r else ""
    return f"{r.get('images_per_s', '?')} img/s{mem}"


def summary(report: dict[str, Any]) -> str:
    st = report["stages"]
    env = st.get("env", {})
    gpu = env.get("gpu") or {}
    lines = ["# vsynth GPU check" + (" (CPU dry run)" if report["cpu_dry_run"] else ""), "",
             f"- machine: {report['machine']}; GPU: {gpu.get('name', 'none')} ({gpu.get('memory_gib', '-')} GiB, CUDA "
             f"{gpu.get('cuda', '-')}, cuDNN {gpu.get('cudnn', '-')}); torch {env.get('torch', '?')}, "
             f"python {env.get('python', '?')}",
             f"- vsynth commit: {report['commit']}; total {report['seconds']} s of a {report['budget_s']} s budget",
             ""]
    if env.get("versions"):
        lines += ["- backends: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    lines += ["| task | loop | fp16 (+ grad scaler) | bf16 |", "|---|---|---|---|"]
    for t in report["tasks"]:
        tr, be = st.get(f"train:{t}", {}), st.get(f"backend:{t}", {})
        plan = tr.get("plan") or be.get("plan") or {}
        what = f"batch {plan.get('batch', '?')}, {plan.get('size', '?')} px" if plan else ""
        lines.append(f"| {t} ({what}) | vsynth Trainer | {_fmt(tr.get('fp16'))} | {_fmt(tr.get('bf16'))} |")
        label = next((r["trainer"] for r in (be.get("fp16"), be.get("bf16")) if r and r.get("trainer")),
                     "backend's own trainer")
        lines.append(f"| {t} | {label} | {_fmt(be.get('fp16'))} | {_fmt(be.get('bf16'))} |")
    lines += ["", "| task | resume (stop, resume vs uninterrupted) | EMA | CLI demo |", "|---|---|---|---|"]
    for t in report["tasks"]:
        rs, cli = st.get(f"resume:{t}", {}), st.get(f"cli:{t}", {})
        r = rs.get("result") or {}
        if r:
            d, f = r["resumed_vs_straight"]["model"], r["straight_vs_straight"]["model"]
            resume = (f"{'ok' if r['resume_ok'] else 'FAILED'}: rel L2 {d['rel_l2']:.1e} (max {d['max_abs']:.1e}); "
                      f"two uninterrupted runs differ by {f['rel_l2']:.1e}; rule: {r['rule']}")
            ema = "ok" if r["ema_ok"] else "FAILED"
            e = rs.get("ema") or {}
            ema += f" ({e.get('updates')} updates on {','.join(e.get('devices', []))})"
        else:
            resume, ema = rs.get("state", "not run"), "-"
        if cli:
            tm = cli.get("test_metrics") or {}
            first = next(iter(tm.items()), None)
            demo = (f"exit {cli.get('exit_code')}, {cli.get('status')}, {cli.get('wall_s')} s"
                    + (f", {first[0]} {first[1]:.3f}" if first else ""))
        else:
            demo = "not run"
        lines.append(f"| {t} | {resume} | {ema} | {demo} |")
    lines += ["", "| stage | state | seconds (limit) |", "|---|---|---|"]
    for name, rec in st.items():
        lines.append(f"| {name} | {rec['state']} | {rec['seconds']} ({rec['limit_s']}) |")
    bad = [n for n, r in st.items() if r["state"] != "ok"]
    lines += ["", "RESULT: " + ("all stages passed" if not bad else f"{len(bad)} stage(s) not ok: {', '.join(bad)}")]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder (default ./gpu-check)")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for everything (default 450)")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    ap.add_argument("--cpu-dry-run", action="store_true",
                    help="run on the CPU at tiny sizes (CUDA-only parts are skipped with a reason)")
    a = ap.parse_args(argv)
    start = time.perf_counter()
    if not a.cpu_dry_run:
        import torch

        if not torch.cuda.is_available():
            print("gpu check: error: CUDA is not available to torch on this machine (torch "
                  f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); run it on the GPU node, or pass "
                  "--cpu-dry-run to test the script on a CPU", file=sys.stderr)
            return 2
    out = a.out.resolve()
    (out / "stages").mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpu_dry_run": a.cpu_dry_run, "budget_s": a.budget, "tasks": a.tasks, "commit": _commit(),
                              "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}",
                              "stages": {}}
    reserve = 5.0  # for writing the report
    for name, limit in stage_list(a.stages, a.tasks):
        left = a.budget - (time.perf_counter() - start) - reserve
        if left < 10:
            report["stages"][name] = {"state": "not run (budget spent)", "seconds": 0, "limit_s": 0}
            print(f"[gpu check] {name}: not run, the budget is spent", flush=True)
            continue
        # a dry run on a small CPU is slower than the node: the budget, not the per-stage limits, bounds it
        rec = run_stage(name, left if a.cpu_dry_run else min(limit, left), out, a.cpu_dry_run)
        report["stages"][name] = rec
        print(f"[gpu check] {name}: {rec['state']} in {rec['seconds']} s", flush=True)
        if name == "env" and rec["state"] != "ok":
            print(f"[gpu check] env failed; see {rec['log']}", flush=True)
            break
    report["seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    text = summary(report)
    (out / "gpu_check.md").write_text(text)
    print(text)
    print(f"[gpu check] wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0 if all(r["state"] == "ok" for r in report["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
