"""The task contract: what a task package (``tasks/<name>/``) implements to plug into vsynth.

A task turns one backend (ultralytics, YOLOX, MMSegmentation) into a recipe of a few methods:
datasets per named source, the model, one training step, evaluation on a split, and pictures for
the run folder. Mixing, the loop (phases, AMP, EMA, clipping, schedule, checkpoints, resume, DDP),
logging, the run folder and reports are shared. ``conf/task/<name>.yaml`` names the class with
``task._target_``; vsynth imports it only when that task runs, so one broken backend never breaks
another task or ``--help``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from vsynth.run.context import RunContext


class Task(ABC):
    """Base class of every task adapter. ``cfg`` is the whole composed config."""

    #: short name written into checkpoints, so a checkpoint of another task is refused
    name: str = "task"
    #: default metric choosing ``best.pt`` when ``trainer.eval.metric`` is null
    default_metric: str = "val/loss"

    def __init__(self, cfg, run: RunContext) -> None:
        self.cfg = cfg
        self.run = run
        self.device = torch.device("cpu")
        #: global training step of the batch being trained (set by the loop before training_step)
        self.global_step = 0

    # ---- data --------------------------------------------------------------------------
    @abstractmethod
    def train_sources(self) -> Mapping[str, Dataset]:
        """Training datasets by source name (``real``, ``synthetic``, ``generated``...).

        Only the sources the arm uses need to be built; subsets are already applied. Items are
        whatever :meth:`collate` and :meth:`training_step` understand.
        """

    def collate(self, samples: list) -> Any:
        return default_collate(samples)

    # ---- model -------------------------------------------------------------------------
    @abstractmethod
    def build_model(self) -> nn.Module:
        """The model, initialised (``init=PATH`` handled here), on CPU."""

    def checkpoint_meta(self) -> dict[str, Any]:
        """Facts that must match to reuse a checkpoint (task, model name, classes...)."""
        return {"task": self.name}

    def check_checkpoint_meta(self, meta: Mapping[str, Any], path: Path) -> None:
        """Refuse a checkpoint of another task or model (override to compare more)."""
        from vsynth.errors import CheckpointError

        mine = self.checkpoint_meta()
        for k, v in mine.items():
            if k in meta and meta[k] != v:
                raise CheckpointError(f"{path}: checkpoint is for {k}={meta[k]!r}, this run has {k}={v!r}")

    def load_for_eval(self, path: Path) -> nn.Module:
        """The model for ``mode=eval ckpt=PATH``: a vsynth checkpoint (EMA weights if stored).

        Tasks override this to also accept their backend's own checkpoints.
        """
        from vsynth.train.checkpoint import load_checkpoint

        ck = load_checkpoint(path, key="ckpt")
        self.check_checkpoint_meta(ck.get("meta", {}), Path(path))
        model = self.build_model()
        model.load_state_dict(ck["ema"]["module"] if ck.get("ema") else ck["model"])
        return model

    # ---- training ----------------------------------------------------------------------
    @abstractmethod
    def training_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, float]]:
        """Loss for one batch (called under autocast) and scalars to log (loss parts)."""

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Hook for epoch-dependent data behaviour (e.g. mosaic off for the last epochs)."""

    # ---- evaluation --------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """Score ``model`` (already in eval mode) on ``split``; keys without the split prefix."""

    def eval_splits(self) -> Sequence[str]:
        """Splits that exist for validation and final testing (``val``, ``test``)."""
        return ("val", "test")

    # ---- pictures ----------------------------------------------------------------------
    def write_batch_samples(self, batch: Any, sources: Sequence[str], out: Path) -> None:
        """Draw one training batch, marked by source, into ``out`` (a PNG)."""

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        """Draw predictions on a few images of ``split`` into ``out_dir``."""
