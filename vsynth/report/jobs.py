"""The jobs of a sweep folder: which subfolders are runs, and the overrides each was started with."""

from __future__ import annotations

from pathlib import Path

import yaml


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
