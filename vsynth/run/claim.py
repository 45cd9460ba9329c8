"""Claiming a folder name atomically, and making one choice for every process of a multi-process job.

Two runs started in the same second, two evaluations of one run, a DDP job whose processes all
resolve the same config: each needs a folder nobody else has, and all processes of one job need the
same one. :func:`claim` creates a folder with an atomic ``mkdir`` (trying ``-1``, ``-2``... when taken);
:func:`shared_choice` lets rank 0 choose and the other ranks read its choice from a small file.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from vsynth.run.cluster import launch


def claim(path: Path, first_suffix: int = 1) -> Path:
    """Create ``path`` (or ``path-1``, ``path-2``... from ``first_suffix``) atomically; the one created."""
    i = 0
    while True:
        cand = path if i == 0 else path.with_name(f"{path.name}-{i + first_suffix - 1}")
        try:
            cand.mkdir(parents=True, exist_ok=False)
            return cand
        except FileExistsError:
            i += 1


def shared_choice(key: str, choose, where: Path) -> str:
    """``choose()`` made once per multi-process job: rank 0 chooses, the other ranks read its answer.

    Alone (one process), it is just ``choose()``. ``where`` (on a filesystem every node sees, e.g. the
    outputs folder) holds the small rendezvous file, named by the job's group id and ``key``.
    """
    job = launch()
    if job.world_size <= 1 or not job.group_id:
        return str(choose())
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    rdv = Path(where) / ".ranks" / f"{job.group_id}-{digest}.txt"
    if job.rank == 0:
        chosen = str(choose())
        rdv.parent.mkdir(parents=True, exist_ok=True)
        tmp = rdv.with_suffix(".part")
        tmp.write_text(chosen)
        os.replace(tmp, rdv)
        return chosen
    deadline = time.time() + 120
    while not rdv.exists():
        if time.time() > deadline:
            raise RuntimeError(f"rank 0 did not announce its choice for {key} in {rdv}")
        time.sleep(0.1)
    return rdv.read_text().strip()
