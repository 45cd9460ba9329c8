"""A run folder belongs to one run: nothing written is lost, a resume is the run it claims to be,
files are shareable, killed writes and killed runs are cleaned up or shown as such (through the CLI)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, tiny_args


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def _errors(p) -> list[str]:
    return [ln for ln in p.stderr.splitlines() if ln.startswith("vsynth: error:")]


@pytest.fixture
def done_run(tmp_path):
    rd = tmp_path / "run"
    p = run_cli(tiny_args("trainer.length=1", f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    return rd


def test_eval_into_a_finished_run_writes_a_child_folder_and_changes_nothing(done_run, tmp_path):
    before = _snapshot(done_run)
    for i in range(2):  # twice: the second evaluation gets its own folder too
        p = run_cli(tiny_args("mode=eval", f"ckpt={done_run / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={done_run}"),
                    tmp_path)
        assert p.returncode == 0, p.stderr[-2000:]
    after = _snapshot(done_run)
    assert {k: v for k, v in after.items() if k in before} == before  # every earlier byte is still there
    assert all(k.startswith("eval-test") for k in set(after) - set(before))
    for child in (done_run / "eval-test", done_run / "eval-test-1"):
        assert _status(child)["state"] == "done" and _status(child)["mode"] == "eval"
        assert "test/acc" in json.loads((child / "metrics.json").read_text())
        assert (child / ".hydra" / "config.yaml").is_file() and (child / "run.log").is_file()
    assert "this evaluation writes its own records to" in (done_run / "eval-test" / "run.log").read_text()


def test_a_new_run_pointed_at_a_used_folder_gets_a_sibling(done_run, tmp_path):
    before = _snapshot(done_run)
    p = run_cli(tiny_args("trainer.length=1", "resume=never", f"hydra.run.dir={done_run}"), tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert _snapshot(done_run) == before
    sibling = done_run.with_name("run-1")
    assert _status(sibling)["state"] == "done" and f"Run folder: {sibling}" in p.stdout


def test_a_resume_with_a_result_changing_key_is_refused_then_forced(tmp_path):
    rd = tmp_path / "run"
    p = run_cli(tiny_args("trainer.length=3", "trainer.stop_at_step=2", f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 3, p.stderr[-2000:]
    before = _snapshot(rd)
    p = run_cli(tiny_args("trainer.length=3", "trainer.batch_size=4", "seed=5", f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 2 and len(_errors(p)) == 1, p.stderr
    line = _errors(p)[0]
    assert "trainer.batch_size: 8 -> 4" in line and "seed: 0 -> 5" in line and "resume=force" in line
    assert "Traceback" not in p.stderr
    after = _snapshot(rd)
    changed = {k for k in before if after.get(k) != before[k]}
    assert changed <= {"run.log"} and after["run.log"].startswith(before["run.log"])  # only appended to
    assert _status(rd)["state"] == "interrupted"
    # free keys (threads, workers, logging) may differ
    p = run_cli(tiny_args("trainer.length=3", "trainer.threads=1", "trainer.log_interval=1", "resume=force",
                          "trainer.batch_size=4", f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    st = _status(rd)
    assert st["state"] == "done" and st["drift"][0]["keys"] == [{"key": "trainer.batch_size", "was": 8, "now": 4}]
    assert "resume=force: continuing a run whose configuration drifted" in (rd / "run.log").read_text()
    assert (rd / ".hydra" / "config.yaml").read_bytes() == before[".hydra/config.yaml"]  # the run's first config
    assert sorted(p.name for p in (rd / ".hydra" / "attempts").iterdir()) == ["1", "2"]


def test_a_resume_with_free_keys_only_is_not_drift(tmp_path):
    rd = tmp_path / "run"
    run_cli(tiny_args("trainer.length=3", "trainer.stop_at_step=2", f"hydra.run.dir={rd}"), tmp_path)
    p = run_cli(tiny_args("trainer.length=3", "trainer.threads=1", "trainer.workers=0", "trainer.progress_bar=false",
                          f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "drift" not in _status(rd) and _status(rd)["attempts"] == 2


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_run_files_follow_the_umask(tmp_path, umask):
    rd = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), VSYNTH_CACHE=str(tmp_path / ".cache"))
    old = os.umask(umask)
    try:
        subprocess.run([sys.executable, "-m", "vsynth", *tiny_args("trainer.length=1", f"hydra.run.dir={rd}")],
                       cwd=tmp_path, env=env, capture_output=True, timeout=300, check=True)
    finally:
        os.umask(old)
    for f in ("status.json", "metrics.json", "composition.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert stat.S_IMODE((rd / f).stat().st_mode) == 0o666 & ~umask, f


def test_temp_files_of_killed_writes_are_removed_at_the_next_start(tmp_path):
    rd = tmp_path / "run"
    run_cli(tiny_args("trainer.length=3", "trainer.stop_at_step=2", f"hydra.run.dir={rd}"), tmp_path)
    stale = [rd / "checkpoints" / ".last.pt.x1y2.tmp", rd / ".status.json.abcd.tmp"]
    for s in stale:
        s.write_bytes(b"half a checkpoint")
    p = run_cli(tiny_args("trainer.length=3", f"hydra.run.dir={rd}"), tmp_path)
    assert p.returncode == 0 and not any(s.exists() for s in stale)
    assert "a temporary file left by a killed write" in (rd / "run.log").read_text()


def test_a_run_killed_with_sigkill_shows_as_stale(tmp_path):
    from vsynth.report.sweep import collect
    from vsynth.run.status import effective_state, read_status

    root = tmp_path / "sweep"
    rd = root / "job"
    env = dict(os.environ, PYTHONPATH=str(REPO), VSYNTH_CACHE=str(tmp_path / ".cache"))
    proc = subprocess.Popen([sys.executable, "-m", "vsynth", *tiny_args("trainer.length=100000", f"hydra.run.dir={rd}")],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while (read_status(rd) or {}).get("state") != "running":
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.2)
        assert effective_state(read_status(rd)) == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    st = read_status(rd)
    assert st["state"] == "running" and effective_state(st) == "stale"  # the file cannot know; readers can
    assert [r["status"] for r in collect(root)] == ["stale"]


def test_stale_by_heartbeat_on_another_host():
    from vsynth.run.status import effective_state

    now = time.time()
    old = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 600))
    fresh = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 5))
    base = {"state": "running", "host": "some-other-node", "pid": 1, "heartbeat_s": 30}
    assert effective_state({**base, "heartbeat_at": old}, now) == "stale"
    assert effective_state({**base, "heartbeat_at": fresh}, now) == "running"
    assert effective_state({**base, "state": "done", "heartbeat_at": old}, now) == "done"
    assert effective_state(None) == "pending"
