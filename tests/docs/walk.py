"""A docs page's step-by-step walk, run command for command: the ``bash`` blocks of one section (continuation
lines joined), with ``/data/`` pointing at data a test drew and settings that make training take seconds
appended; and the ``text`` blocks beside them, the output the page says a step prints."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, cli_env


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (e.g. ``### Detection, step by step``) up to the next heading of its level or higher."""
    text = (REPO / page).read_text()
    rest = text[text.index(f"\n{heading}\n") + len(heading) + 2:]
    end = re.search(rf"^#{{1,{len(heading.split()[0])}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def blocks(text: str, lang: str) -> list[list[str]]:
    """The lines of each fenced ``lang`` block in ``text`` (indented blocks too), continuation lines joined."""
    found = re.findall(rf"^[ \t]*```{lang}\n(.*?)^[ \t]*```", text, flags=re.S | re.M)
    return [[" ".join(ln.split()) for ln in b.replace("\\\n", " ").splitlines() if ln.strip()] for b in found]


def run_step(command: str, data: Path, cwd: Path, *extra: str, env: dict | None = None,
             timeout: int = 300) -> subprocess.CompletedProcess:
    """Run one command of a walk (``python -m ...``) with ``/data/`` -> ``data``, ``extra`` appended; it must exit 0."""
    argv = shlex.split(command.replace("/data/", f"{data}/"))
    assert argv[:2] == ["python", "-m"], command
    proc = subprocess.run([sys.executable, *argv[1:], *extra], cwd=cwd, env=cli_env(cwd, env), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (command, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def assert_shown(shown: list[str], proc: subprocess.CompletedProcess, data: Path) -> None:
    """Every line of a page's output block (but ``...``) is a line the command printed, with ``data`` as ``/data``."""
    printed = (proc.stdout + proc.stderr).replace(f"{data}/", "/data/").splitlines()
    for line in shown:
        if line != "...":
            assert line in printed, (line, printed)
