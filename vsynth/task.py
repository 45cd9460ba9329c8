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
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from vsynth.run.context import RunContext
from vsynth.train.checkpoint import AllowList, Weights
from vsynth.train.transfer import FitRule


class SplitEvaluator(ABC):
    """One split's scoring: the task's glue between its predictions and ``vsynth.eval``'s evaluators."""

    @abstractmethod
    def process(self, indices: Sequence[int], batch: Any, outputs: Any) -> None:
        """Add one batch: ``indices`` are the dataset indices of its images, ``outputs`` the prediction step's."""

    @abstractmethod
    def compute(self) -> dict[str, Any]:
        """The split's metrics, keys without the split prefix (``oks_map``, ``ap50``, ``miou``...)."""

    def write(self, folder: Path, split: str) -> list[Path]:
        """Write the per-image predictions and ground truth in standard formats; returns the files."""
        return []


class Task(ABC):
    """Base class of every task adapter. ``cfg`` is the whole composed config."""

    #: short name written into checkpoints, so a checkpoint of another task is refused
    name: str = "task"
    #: default metric choosing ``best.pt`` when ``trainer.val.metric`` is null
    default_metric: str = "val/loss"

    #: the kind of model config this task builds (a ``model`` schema name in ``tasks/<task>/config.py``); a
    #: model of another kind (``model=yolox_nano`` with ``task=keypoints``) is refused with one line
    model_kind: str | None = None
    #: checkpoint meta keys that describe the run (e.g. a keypoint schema's names) without having to match
    descriptive_meta: tuple[str, ...] = ("schema",)

    def __init__(self, cfg, run: RunContext) -> None:
        self.cfg = cfg
        self.run = run
        self._check_model_kind()
        self.device = torch.device("cpu")
        #: global training step of the batch being trained (set by the loop before training_step)
        self.global_step = 0

    def _check_model_kind(self) -> None:
        from omegaconf import OmegaConf

        from vsynth.config import model_configs, schema_node
        from vsynth.errors import ConfigError

        if self.model_kind is None or not OmegaConf.is_config(self.cfg.get("model")):
            return
        kind = OmegaConf.get_type(self.cfg.model)
        if kind is not dict and kind is not schema_node("model", self.model_kind):
            mine = sorted(name for name, k in model_configs().items() if k == self.model_kind)
            raise ConfigError(f"model={self.cfg.model.get('name')}: not a model of task={self.name} "
                              f"(its models: {', '.join(mine)})")

    # ---- data (arms are applied by vsynth.data.arms) ---------------------------------------
    @abstractmethod
    def source_items(self, source: str) -> Sequence[str]:
        """Every training image of ``source`` (its full train split), one stable key each (e.g. the
        image's path). The framework draws the arm's subset from these, the same way for every task."""

    @abstractmethod
    def train_dataset(self, source: str, items: Sequence[str]) -> Dataset:
        """The augmented training dataset of ``source`` over ``items`` (keys from :meth:`source_items`).
        Items are whatever :meth:`collate` and :meth:`training_step` understand."""

    def write_source_samples(self, sources: Mapping[str, Dataset], per_batch: Mapping[str, int] | None) -> None:
        """Pictures or statistics of the training data before training (rank 0): e.g. a grid of augmented
        images per source. ``per_batch`` is the mixer's per-batch composition in ratio mode, else None."""

    def collate(self, samples: list) -> Any:
        return default_collate(samples)

    # ---- model -------------------------------------------------------------------------
    @abstractmethod
    def fresh_model(self) -> nn.Module:
        """The task's model with fresh weights (seeded by ``seed``), on CPU."""

    def build_model(self) -> nn.Module:
        """The model to train: :meth:`fresh_model`, then ``init=PATH`` loaded into it by name and shape."""
        model = self.fresh_model()
        if self.cfg.get("init"):
            self.load_weights(model, self.cfg.init, key="init")
        return model

    def checkpoint_meta(self) -> dict[str, Any]:
        """Facts that must match to reuse a checkpoint (task, model name, classes...)."""
        return {"task": self.name}

    def check_checkpoint_meta(self, meta: Mapping[str, Any], path: Path) -> None:
        """Refuse a checkpoint of another task or model (override to compare more)."""
        from vsynth.errors import CheckpointError

        mine = self.checkpoint_meta()
        for k, v in mine.items():
            if k in self.descriptive_meta:
                continue
            if k in meta and meta[k] != v:
                raise CheckpointError(f"{path}: checkpoint is for {k}={meta[k]!r}, this run has {k}={v!r}")

    def checkpoint_allow_list(self) -> Sequence[AllowList]:
        """The classes, beyond tensors and containers, that this backend's checkpoint files pickle.

        Empty by default: such files are refused (see :mod:`vsynth.train.checkpoint`).
        """
        return ()

    def fit_rule(self) -> FitRule:
        """How much of the model a checkpoint must fill, and the knobs to name when it does not fit."""
        return FitRule()

    def read_weights(self, path: Any, key: str) -> Weights:
        """The weights in ``path`` (any kind this task accepts), read safely; ``key`` names the config key.

        Read once per run: the loop reads ``init`` before any data is built (a bad file fails fast),
        and :meth:`build_model` gets the same object.
        """
        from vsynth.train.checkpoint import read_weights

        resolved = Path(str(path)).expanduser().resolve()
        cache = self.__dict__.setdefault("_weights_cache", {})
        if (resolved, key) not in cache:
            cache[(resolved, key)] = read_weights(path, key, task_name=self.name, allow=self.checkpoint_allow_list(),
                                                  trust=bool(self.cfg.get("trust_checkpoint", False)))
        return cache[(resolved, key)]

    def remember_weights(self, weights: Weights, key: str) -> None:
        """A checkpoint already read elsewhere (``mode=eval`` reads it for its config) is not read twice.

        Only a vsynth checkpoint (plain data, no allow-list involved) is remembered this way.
        """
        if weights.kind == "vsynth" and weights.task in (None, self.name):
            self.__dict__.setdefault("_weights_cache", {})[(weights.path.resolve(), key)] = weights

    def preflight(self) -> None:
        """Checks that need no data, run before any is built: today, reading the ``init`` checkpoint."""
        if self.cfg.get("init"):
            self.read_weights(self.cfg.init, "init")

    def load_weights(self, model: nn.Module, path: Any, key: str, strict: bool = False) -> Weights:
        """Copy the weights of ``path`` (a file or already-read :class:`Weights`) into ``model`` by name and
        shape (``strict``: all must fit).

        A vsynth checkpoint's meta must agree with this run (:meth:`check_checkpoint_meta`) when it is
        evaluated; what was loaded and skipped goes to run.log.
        """
        import logging

        from vsynth.train.transfer import load_into

        w = path if isinstance(path, Weights) else self.read_weights(path, key)
        if strict and w.kind == "vsynth":
            self.check_checkpoint_meta(w.meta, w.path)
        for line in load_into(model, w, key, self.fit_rule(), strict=strict):
            logging.getLogger(f"vsynth.{self.name}").info(line)
        return w

    def load_for_eval(self, path: Path) -> nn.Module:
        """The model for ``mode=eval ckpt=PATH``: a vsynth checkpoint (its EMA weights) or the backend's own."""
        weights = self.read_weights(path, "ckpt")  # before any data or model is built
        model = self.fresh_model()
        self.load_weights(model, weights, key="ckpt", strict=True)
        return model

    # ---- training ----------------------------------------------------------------------
    @abstractmethod
    def training_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, Any]]:
        """Loss for one batch (called under autocast) and scalars to log (loss parts).

        Parts are floats or one-element tensors; return them as (detached) tensors: the loop reads
        them back from the device only at its log interval, while a ``float()`` here waits for the
        GPU every step. Copy the batch to ``self.device`` with ``non_blocking=True`` (the loader
        pins it in page-locked memory on CUDA).
        """

    def on_epoch_start(self, epoch: int, num_epochs: int) -> bool | None:
        """Hook for epoch-dependent data behaviour (e.g. mosaic off for the last epochs).

        Return True when the training datasets changed (or keep per-process state that must start
        fresh each epoch), False when they did not: persistent DataLoader workers hold copies of the
        datasets and are restarted on True. An override returning None restarts them every epoch.
        """
        return False

    def fixed_train_shapes(self) -> bool:
        """Whether every training batch has the same tensor shapes, so cuDNN can benchmark its
        algorithms once per shape (``trainer.cudnn_benchmark=auto``). False when unsure."""
        return False

    # ---- evaluation (the loop is vsynth.train.evaluation's) ------------------------------
    def eval_splits(self) -> Sequence[str]:
        """Splits that exist for validation and final testing (``val``, ``test``)."""
        return ("val", "test")

    @abstractmethod
    def eval_dataset(self, split: str) -> Dataset:
        """The images of ``split`` (of the arm's evaluation domain), unaugmented, in a fixed order."""

    def eval_collate(self, samples: list) -> Any:
        return default_collate(samples)

    @abstractmethod
    def predict_step(self, model: nn.Module, batch: Any) -> Any:
        """Predictions for one evaluation batch (called under ``torch.no_grad``, model in eval mode)."""

    @abstractmethod
    def evaluator(self, split: str) -> "SplitEvaluator":
        """A fresh evaluator for ``split``, fed every batch's predictions by the evaluation loop."""

    # ---- export ------------------------------------------------------------------------
    def exporter(self) -> Callable[..., Any]:
        """The function writing this task's model in its backend's own format (``python -m vsynth.export``):
        ``export(run, folder, options)`` of the module ``export`` beside the task's class
        (``tasks/<name>/export.py``), imported only when an export runs. See :mod:`vsynth.export`."""
        from importlib import import_module

        from vsynth.errors import ConfigError

        module = f"{type(self).__module__.rpartition('.')[0]}.export"
        try:
            return import_module(module).export
        except (ModuleNotFoundError, TypeError) as e:  # TypeError: a task class outside any package
            if isinstance(e, ModuleNotFoundError) and e.name != module:
                raise
            raise ConfigError(f"task={self.name}: this task has no export ({module} not found)") from None

    def consistency(self, model: nn.Module) -> dict[str, Any]:
        """``mode=consistency``: how faithful the generated images are to the labels they reuse.

        ``model`` (trained on real data) is scored on the generated images against their source labels and
        on the source images themselves, per condition and generator, through :meth:`predict_step` and the
        shared evaluation loop (rank 0 only). Returns the body of ``consistency.json`` (keys:
        :mod:`vsynth.report.consistency`); may write pictures into ``self.run.samples``.
        """
        from vsynth.errors import ConfigError

        raise ConfigError(f"mode=consistency: the {self.name} task has no semantic consistency "
                          "(generated images scored against their source labels: task=segmentation)")

    # ---- pictures ----------------------------------------------------------------------
    def write_batch_samples(self, batch: Any, sources: Sequence[str], out: Path) -> None:
        """Draw one training batch, marked by source, into ``out`` (a PNG)."""

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        """Draw predictions on a few images of ``split`` into ``out_dir``."""
