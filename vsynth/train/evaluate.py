"""``mode=eval``: score a checkpoint on a split and record it like any other run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from vsynth.errors import ConfigError
from vsynth.eval.distributed import local_only
from vsynth.run.context import RunContext
from vsynth.task import Task

log = logging.getLogger("vsynth.eval")


def evaluate_checkpoint(cfg, task: Task, ctx: RunContext) -> dict[str, Any]:
    if not cfg.get("ckpt"):
        raise ConfigError("mode=eval needs ckpt=PATH (a vsynth checkpoint or the backend's own)")
    split = str(cfg.eval.split)
    if split not in task.eval_splits():
        raise ConfigError(f"eval.split={split}: this task has splits {list(task.eval_splits())}")
    path = Path(str(cfg.ckpt)).expanduser()
    model = task.load_for_eval(path).to(task.device).eval()
    with torch.no_grad(), local_only():
        raw = task.evaluate(model, split)
    metrics = {f"{split}/{k}": v for k, v in raw.items()}
    metrics["eval/ckpt"] = str(path.resolve())
    log.info("%s on %s: %s", path, split,
             ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    if ctx.is_main:
        task.write_prediction_samples(model, split, ctx.samples)
    return metrics
