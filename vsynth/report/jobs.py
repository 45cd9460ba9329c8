"""The jobs of a sweep folder: which subfolders are runs, the overrides each was started with, which keys vary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: override keys that name a repetition (a seed), not a condition: never a column of their own
SEED_KEYS = ("seed",)


def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job folders: any folder below the root holding ``.hydra/overrides.yaml`` or ``status.json``."""
    jobs = []
    for p in sorted(sweep_dir.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and ((p / ".hydra" / "overrides.yaml").is_file() or (p / "status.json").is_file()):
            jobs.append(p)
    return jobs


def job_overrides(job: Path) -> dict[str, str]:
    p = job / ".hydra" / "overrides.yaml"
    out: dict[str, str] = {}
    if p.is_file():
        for o in yaml.safe_load(p.read_text()) or []:
            if "=" in o and not o.startswith("hydra"):
                k, v = o.split("=", 1)
                out[k.lstrip("+~")] = v
    return out


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The ``override:KEY`` columns whose value differs between jobs (the sweep's conditions and seeds)."""
    keys = sorted({k for r in rows for k in r if k.startswith("override:")})
    return [k for k in keys if len({r.get(k) for r in rows}) > 1]
