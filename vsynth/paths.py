"""Where vsynth finds its configs and keeps its caches.

conf/ sits at the top of a source checkout and inside the package (``vsynth/conf``) in an
installed wheel; both are found here so the entry point works from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The Hydra config directory (installed copy first, then the checkout's ``conf/``)."""
    for cand in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (cand / "config.yaml").is_file():
            return cand
    raise FileNotFoundError(f"vsynth configs not found next to {PACKAGE_DIR}")


def repo_root() -> Path | None:
    """The source checkout holding this vsynth, if it runs from one."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "conf").is_dir() else None


def default_cache_dir() -> Path:
    """Demo data and converted datasets: ``$VSYNTH_CACHE`` or ``~/.cache/vsynth`` (outside the repo)."""
    env = os.environ.get("VSYNTH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vsynth"


def configure_offline_backends() -> None:
    """Keep backends off the network and out of the user's global settings.

    Called before any backend import. ultralytics reads ``YOLO_OFFLINE`` and keeps its settings in
    ``YOLO_CONFIG_DIR``: a project-local one (``<repo>/.cache/ultralytics`` in a checkout, else under
    the vsynth cache) so a run never edits ``~/.config/Ultralytics`` or phones home.
    """
    os.environ.setdefault("YOLO_OFFLINE", "true")
    # ultralytics builds models from YAML with eval() of the activation and layer specs unless its
    # restricted mode is on; a user's model YAML must never run code, so it is always on here.
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "false")
    root = repo_root()
    cfg_dir = (root / ".cache" / "ultralytics") if root else default_cache_dir() / "ultralytics"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg_dir))
    os.environ.setdefault("WANDB_DISABLED", "true")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("COMET_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
