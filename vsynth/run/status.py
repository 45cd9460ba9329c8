"""status.json: what state a run is in, so people and the sweep tools can tell at a glance.

States: ``running``, ``done``, ``failed`` (with the one-line reason), ``interrupted`` (resumable).
Times are ISO-8601 UTC; ``attempts`` counts starts of the same folder (resumes, requeues).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vsynth.run.atomic import write_json


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / "status.json"
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Status:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / "status.json"
        self.enabled = enabled
        self.data: dict[str, Any] = read_status(run_dir) or {}
        self._t0 = time.time()

    def start(self, **info: Any) -> None:
        prev_wall = float(self.data.get("wall_time_s", 0.0))
        self.data.update(
            state="running", started_at=self.data.get("started_at", _now()), last_start_at=_now(), ended_at=None,
            error=None, host=socket.gethostname(), pid=os.getpid(), argv=sys.argv,
            attempts=int(self.data.get("attempts", 0)) + 1, wall_time_s=prev_wall, **info,
        )
        self._prev_wall = prev_wall
        self._write()

    def finish(self, state: str, error: str | None = None, **info: Any) -> None:
        self.data.update(state=state, ended_at=_now(), error=error,
                         wall_time_s=round(getattr(self, "_prev_wall", 0.0) + time.time() - self._t0, 3), **info)
        self._write()

    def _write(self) -> None:
        if self.enabled:
            write_json(self.path, self.data)
