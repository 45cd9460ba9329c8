"""env.txt: enough about the machine and code to reproduce or explain a result later."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from vsynth.paths import repo_root

PACKAGES = ["vsynth", "torch", "torchvision", "numpy", "opencv-python", "hydra-core", "omegaconf", "ultralytics",
            "pixeltable-yolox", "onedl-mmsegmentation", "mmcv-lite", "mmengine", "pycocotools", "submitit",
            "hydra-submitit-launcher"]
MAX_DIFF = 200_000


def _git(*args: str) -> str:
    root = repo_root()
    if root is None:
        return ""
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), for benchmark records; a generic name elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_environment(device: str) -> str:
    import torch

    lines = [
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"host: {platform.node()}",
        f"torch: {torch.__version__}  cuda: {torch.version.cuda}  cudnn: {torch.backends.cudnn.version()}",
        f"cuda available: {torch.cuda.is_available()}  device: {device}",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"gpu {i}: {p.name} {p.total_memory / 2**30:.1f} GiB")
    lines.append(f"cpu threads: {torch.get_num_threads()}")
    lines.append("packages:")
    for name in PACKAGES:
        try:
            lines.append(f"  {name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"  {name}: not installed")
    commit = _git("rev-parse", "HEAD").strip()
    lines.append(f"git commit: {commit or 'unknown (not a git checkout)'}")
    if commit:
        diff = _git("diff", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
        lines.append(f"git dirty: {bool(status.strip())}")
        if diff:
            if len(diff) > MAX_DIFF:
                diff = diff[:MAX_DIFF] + f"\n... diff truncated at {MAX_DIFF} characters\n"
            lines.append("git diff HEAD:")
            lines.append(diff)
    return "\n".join(lines) + "\n"


def write_env(path: Path, device: str) -> None:
    from vsynth.run.atomic import write_text

    write_text(path, describe_environment(device))
