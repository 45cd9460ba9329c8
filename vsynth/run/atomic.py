"""Write files so a crash never leaves a half-written one in place (temp file + rename).

Run folders live on shared filesystems, so the files keep the permissions the user's umask gives
any new file (``tempfile`` alone would make them 0600, unreadable to teammates); checkpoints are
flushed to disk before the rename, so a power loss cannot leave a renamed but empty ``last.pt``.
A kill between creating the temp file and the rename leaves ``.<name>.<random>.tmp`` behind;
:func:`remove_stale_temps` clears them when a run starts again in the folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

_TMP_SUFFIX = ".tmp"
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None], fsync: bool = False) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` over ``path`` (same folder, so the rename is atomic).

    The file gets mode ``0o666 & ~umask``, like any file the user creates; ``fsync`` flushes it to disk
    before the rename (checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        write(Path(tmp))
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: the run folder's own subfolders that :func:`atomic_write` writes into (nested run folders, such as a
#: kill switch's arm runs, are left to their own runs)
RUN_SUBFOLDERS = ("", "checkpoints", "samples", "data")


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files left by :func:`atomic_write` when a process was killed mid-write (the run's own files)."""
    removed = []
    for sub in RUN_SUBFOLDERS:
        d = Path(folder) / sub
        if not d.is_dir():
            continue
        for p in d.glob(f".*{_TMP_SUFFIX}"):
            if p.is_file():
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"))


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))
