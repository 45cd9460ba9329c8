"""Where a job's records go, so that a run folder belongs to one run and nothing written is lost.

Hydra writes ``.hydra/`` and opens ``run.log`` in the output folder before vsynth's code runs; users
point ``hydra.run.dir`` at existing folders (to resume, to evaluate a finished run, by mistake). The
decision is made once per process, here, and Hydra's ``output_subdir``, the log file and the app all
read it (``conf/config.yaml``, ``conf/hydra/job_logging/vsynth.yaml``):

* an empty folder (or a new one): the job's own folder;
* a folder holding a run of the same task and mode (``resume`` not ``never``): the same run going on
  (resume, or "already done"); its first ``.hydra/`` is kept and this attempt's config goes to
  ``.hydra/attempts/<n>/`` (the resume compares them: :mod:`vsynth.run.drift`);
* ``mode=eval`` (or ``consistency``) on a folder holding any run, an earlier evaluation included: a
  child folder of its own, ``eval-<split>`` (then ``eval-<split>-1``...; ``consistency``...), so
  evaluations stay next to the run they score and never replace one another;
* anything else (another task or mode, ``resume=never``): a new sibling folder ``<folder>-1``...

Under ``torchrun`` or a multi-task SLURM job every process computes the same answer, except for a
fresh claim, which rank 0 makes and the others read (:func:`vsynth.run.dirs.shared_choice`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HYDRA_SUBDIR = ".hydra"
#: modes whose rerun in the same folder continues the same run (they keep a resumable state)
RESUMABLE = ("train", "killswitch", "datavalue")
#: modes that score a finished model: each start is a record of its own
SCORING = ("eval", "consistency")


@dataclass(frozen=True)
class Placement:
    """The job's records folder, Hydra's output_subdir relative to Hydra's output folder, and why."""

    dir: Path
    hydra_subdir: str | None
    reason: str  # new | resume | eval-child | sibling
    occupant: dict | None = None  # the status.json of the run already in the requested folder


_placements: dict[str, Placement] = {}


def _status(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError, NotADirectoryError):
        return None


def _claim_child(folder: Path, name: str) -> Path:
    from vsynth.run.claim import claim

    return claim(folder / name)


def _claim_attempt(folder: Path) -> Path:
    """``folder/.hydra/attempts/<n>`` for the next free n (1, 2, ...), created atomically."""
    base = folder / HYDRA_SUBDIR / "attempts"
    base.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(p.name) for p in base.iterdir() if p.name.isdigit()), default=0)
    while True:
        try:
            (base / str(n)).mkdir()
            return base / str(n)
        except FileExistsError:
            n += 1


def _claim_sibling(folder: Path) -> Path:
    from vsynth.run.claim import claim

    return claim(folder.with_name(f"{folder.name}-1"), first_suffix=2)


def _choose(folder: Path, mode: str, task: str, resume: str, split: str) -> Placement:
    """The decision itself (made by one process; it may claim a folder)."""
    occupant = _status(folder)
    if occupant is None:
        return Placement(folder, HYDRA_SUBDIR, "new")
    if (occupant.get("mode") == mode and mode in RESUMABLE and occupant.get("task") == task
            and str(resume) != "never"):
        return Placement(folder, str(_claim_attempt(folder).relative_to(folder)), "resume", occupant)
    if mode in SCORING:
        child = _claim_child(folder, f"eval-{split}" if mode == "eval" else mode)
        return Placement(child, str(Path(child.name) / HYDRA_SUBDIR), "eval-child", occupant)
    sib = _claim_sibling(folder)
    return Placement(sib, os.path.relpath(sib / HYDRA_SUBDIR, folder), "sibling", occupant)


def decide(output_dir: str | Path, mode: str, task: str, resume: str, split: str) -> Placement:
    """The placement for a job Hydra runs in ``output_dir`` (cached per process; one decision per DDP job)."""
    key = str(Path(output_dir).resolve())
    if key in _placements:
        return _placements[key]
    from vsynth.run.cluster import launch
    from vsynth.run.claim import shared_choice

    folder = Path(key)

    def choose() -> str:  # rank 0 decides before it writes anything; the other ranks read its decision
        p = _choose(folder, mode, task, resume, split)
        return json.dumps({"dir": str(p.dir), "hydra_subdir": p.hydra_subdir, "reason": p.reason,
                           "occupant": p.occupant})

    d = json.loads(shared_choice(f"placement:{key}", choose, folder.parent))
    p = Placement(Path(d["dir"]), d["hydra_subdir"], d["reason"], d["occupant"])
    if launch().rank != 0:  # only rank 0 keeps Hydra's config files
        p = Placement(p.dir, None, p.reason, p.occupant)
    _placements[key] = p
    return p


def describe(p: Placement, requested: Path) -> str | None:
    """A run.log line when the job does not write where it was pointed, else None."""
    occ = p.occupant or {}
    what = f"a {occ.get('state', '?')} {occ.get('task', '?')} {occ.get('mode', '?')} run"
    if p.reason == "eval-child":
        return f"{requested} holds {what}; this evaluation writes its own records to {p.dir}"
    if p.reason == "sibling":
        return f"{requested} holds {what}; this run writes to a new folder {p.dir} (nothing there is rewritten)"
    return None


def register() -> None:
    """OmegaConf resolvers used by the configs (idempotent)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver(
        "vsynth_hydra_subdir", lambda out, mode, task, resume, split: decide(out, mode, task, resume, split).hydra_subdir,
        replace=True)
    OmegaConf.register_new_resolver(
        "vsynth_log_file", lambda out, mode, task, resume, split: str(decide(out, mode, task, resume, split).dir / "run.log"),
        replace=True)
