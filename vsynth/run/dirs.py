"""Run- and sweep-folder names, registered as OmegaConf resolvers used by conf/config.yaml.

* ``vsynth_run_dir``: claims a fresh run folder with an atomic ``mkdir``: two runs started in the
  same second get ``..._name`` and ``..._name-1``; nothing is ever reused by accident. In a DDP
  job (torchrun's or SLURM's processes, see ``vsynth/run/cluster.py``) rank 0 claims it and the
  other ranks read its choice from a rendezvous file, so one DDP job writes one folder.
* ``vsynth_job_dir``: a sweep job's folder name from its overrides (``data.ratio=0.5,seed=1``),
  sorted by key with ``seed`` last, so reruns of a sweep find the same folders.
* ``vsynth_sweep_dir``: a sweep root named from the sweep's own overrides, so rerunning the same
  sweep command lands in the same root and resumes it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

from omegaconf import OmegaConf

from vsynth.run.claim import claim, shared_choice

_claimed: dict[str, str] = {}
_SAFE = re.compile(r"[^A-Za-z0-9._=,+@-]+")
_LAST_KEYS = ("seed",)
# overrides that say where or how to run, not what: never part of a job's identity
_EXCLUDED_PREFIXES = ("hydra.", "hydra/", "paths.", "resume", "trainer.workers", "trainer.threads", "trainer.stop_at_step",
                      "trainer.pin_memory", "trainer.persistent_workers", "trainer.cudnn_benchmark",
                      "trainer.channels_last", "trainer.progress_bar", "trainer.log_interval", "trainer.tensorboard",
                      "eval.batch", "eval.workers", "trust_checkpoint", "device")


def run_dir(outputs: str, rel: str) -> str:
    """Claim ``outputs/rel`` (or ``rel-N``) once per process; see the module docstring."""
    key = f"{outputs}|{rel}"
    if key not in _claimed:
        _claimed[key] = shared_choice(key, lambda: claim(Path(outputs) / rel), Path(outputs))
    return _claimed[key]


def _job_overrides(overrides: Iterable[str]) -> list[tuple[str, str]]:
    out = []
    for o in overrides:
        o = str(o)
        if "=" not in o:
            continue
        k, v = o.split("=", 1)
        k = k.lstrip("+~")
        if k.startswith(_EXCLUDED_PREFIXES):
            continue
        out.append((k, v))
    out.sort(key=lambda kv: (kv[0] in _LAST_KEYS, kv[0]))
    return out


def job_dir(overrides: Iterable[str]) -> str:
    """``key=value,key=value`` from a job's overrides, seed last; ``default`` when there are none."""
    parts = [f"{k}={v}" for k, v in _job_overrides(overrides)]
    name = _SAFE.sub("_", ",".join(parts)).strip("_") or "default"
    if len(name) > 180:  # keep under filesystem limits, stay unique
        name = name[:160] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def sweep_dir(outputs: str, name: str, overrides: Iterable[str]) -> str:
    """``outputs/sweeps/<name>-<hash of the sweep's overrides>``: the same command, the same root."""
    spec = ";".join(f"{k}={v}" for k, v in _job_overrides(overrides))
    digest = hashlib.sha1(spec.encode()).hexdigest()[:8]
    return str(Path(outputs) / "sweeps" / f"{_SAFE.sub('_', name)}-{digest}")


def package_file(package: str, relative: str) -> str:
    """Absolute path of a file shipped inside an installed package (editable or wheel).

    Configs use it as ``${vsynth_pkg_file:tasks.keypoints,weights/x.pt}`` so a bundled asset is
    found wherever vsynth is installed, without a path relative to the working directory.
    """
    from importlib.resources import files

    return str(Path(str(files(package))) / relative)


def register_resolvers() -> None:
    """Idempotent: the entry point and submitit's unpickled jobs both call it."""
    from vsynth.config import register as register_schemas
    from vsynth.run.placement import register

    register()
    register_schemas()
    OmegaConf.register_new_resolver("vsynth_run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("vsynth_job_dir", lambda o: job_dir(list(o)), replace=True)
    OmegaConf.register_new_resolver("vsynth_pkg_file", package_file, replace=True)
    OmegaConf.register_new_resolver(
        "vsynth_sweep_dir", lambda out, n, o: sweep_dir(out, n, list(o)), replace=True, use_cache=True
    )  # cached on the config: every job of a sweep (copies of the launcher's config) gets the same root
