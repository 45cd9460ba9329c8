"""status.json: what state a run is in, so people and the sweep tools can tell at a glance.

States: ``running``, ``done``, ``failed`` (with the one-line reason), ``interrupted`` (resumable).
Times are ISO-8601 UTC; ``attempts`` counts starts of the same folder (resumes, requeues). A running
run records its host and pid and refreshes ``heartbeat_at`` every ``HEARTBEAT_S`` seconds, so a run
killed with ``kill -9`` (which cannot write ``failed``) shows as *stale* in reports instead of
*running* forever (:func:`effective_state`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vsynth.run.atomic import write_json

#: seconds between heartbeats of a running run; a run silent for STALE_AFTER heartbeats is stale
HEARTBEAT_S = 30.0
STALE_AFTER = 4


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / "status.json"
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError, NotADirectoryError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def effective_state(status: dict[str, Any] | None, now: float | None = None) -> str:
    """The state to show: ``stale`` for a ``running`` run whose process is gone (same host, pid dead)
    or whose heartbeat stopped (another host), else the recorded state (``pending`` without a status)."""
    if not status:
        return "pending"
    state = str(status.get("state", "pending"))
    if state != "running":
        return state
    if status.get("host") == socket.gethostname() and isinstance(status.get("pid"), int):
        if not _pid_alive(int(status["pid"])):
            return "stale"
    beat = status.get("heartbeat_at") or status.get("last_start_at")
    interval = float(status.get("heartbeat_s", HEARTBEAT_S))
    if beat:
        try:
            age = (now or time.time()) - datetime.fromisoformat(str(beat)).timestamp()
        except ValueError:
            return state
        if age > STALE_AFTER * interval:
            return "stale"
    return state


class Status:
    def __init__(self, run_dir: Path, enabled: bool = True, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.path = run_dir / "status.json"
        self.enabled = enabled
        self.data: dict[str, Any] = read_status(run_dir) or {}
        self._t0 = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.heartbeat_s = heartbeat_s

    def start(self, **info: Any) -> None:
        prev_wall = float(self.data.get("wall_time_s", 0.0))
        with self._lock:
            self.data.update(
                state="running", started_at=self.data.get("started_at", _now()), last_start_at=_now(), ended_at=None,
                error=None, host=socket.gethostname(), pid=os.getpid(), argv=sys.argv, heartbeat_at=_now(),
                heartbeat_s=self.heartbeat_s, attempts=int(self.data.get("attempts", 0)) + 1, wall_time_s=prev_wall,
                **info,
            )
            self._prev_wall = prev_wall
            self._write()
        if self.enabled and self.heartbeat_s > 0:
            self._beat = threading.Thread(target=self._heartbeat, name="vsynth-heartbeat", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                if self.data.get("state") != "running":
                    return
                self.data["heartbeat_at"] = _now()
                try:
                    self._write()
                except OSError:  # a full or vanished disk must not kill the training thread's run
                    pass

    def update(self, **info: Any) -> None:
        with self._lock:
            self.data.update(**info)
            self._write()

    def record_drift(self, drift: list[tuple[str, Any, Any]]) -> None:
        """``resume=force`` continued a run whose configuration changed: keep what changed, per attempt."""
        with self._lock:
            self.data.setdefault("drift", []).append({
                "attempt": self.data.get("attempts"), "at": _now(),
                "keys": [{"key": k, "was": a, "now": b} for k, a, b in drift]})
            self._write()

    def finish(self, state: str, error: str | None = None, **info: Any) -> None:
        self._stop.set()
        with self._lock:
            self.data.update(state=state, ended_at=_now(), error=error,
                             wall_time_s=round(getattr(self, "_prev_wall", 0.0) + time.time() - self._t0, 3), **info)
            self._write()

    def _write(self) -> None:
        if self.enabled:
            write_json(self.path, self.data)
