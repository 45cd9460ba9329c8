"""Compose the real config with the tiny test task, in-process (no subprocess, no Hydra run dir)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from vsynth.paths import conf_dir
from vsynth.run.context import RunContext
from vsynth.run.dirs import register_resolvers

TINY_CONF = Path(__file__).resolve().parent.parent / "tiny" / "conf"


def tiny_cfg(*overrides: str):
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=[f"hydra.searchpath=[file://{TINY_CONF}]", "task=tiny", *overrides])


def make_trainer(run_dir: Path, *overrides: str):
    from tests.tiny.task import TinyTask
    from vsynth.train.trainer import Trainer

    cfg = tiny_cfg(*overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(run_dir, cfg)
    task = TinyTask(cfg, ctx)
    return Trainer(cfg, task, ctx, torch.device("cpu"))
