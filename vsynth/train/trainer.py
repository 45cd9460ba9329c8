"""The common loop: one trainer for every task (see DESIGN.md, "The common loop").

``fit`` reads like detectron2's ``train``: :meth:`Trainer.setup` (data, mixer, model, optimizer,
schedule), :meth:`Trainer.resume` (from ``last.pt``), :meth:`Trainer.train` (the steps, with the
features in :mod:`vsynth.train.parts` around them) and :meth:`Trainer.finish` (the best checkpoint
scored on the test split). Everything that defines the run's future is one
:class:`~vsynth.train.state.TrainState`, exactly what ``last.pt`` holds; data order and
augmentation are functions of (seed, epoch, batch), so a run killed and continued from ``last.pt``
ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from vsynth.data.arms import build_sampler, build_sources
from vsynth.data.mixed_dataset import MixedDataset, TaggedCollate
from vsynth.errors import ConfigError, NonFiniteLossError
from vsynth.run.context import RunContext
from vsynth.task import Task
from vsynth.train import checkpoint as ckpt_io
from vsynth.train.amp import autocast, grad_scaler, resolve_amp
from vsynth.train.distributed import unwrap
from vsynth.train.ema import ModelEMA
from vsynth.train.evaluation import evaluate_on_rank0
from vsynth.train.optim import build_optimizer
from vsynth.train.parts import (
    STOP_SIGNALS,
    Checkpointing,
    CompositionAudit,
    Part,
    PhaseSwitch,
    Preemption,
    TrainingInterrupted,
    Validation,
    fmt_metrics,
)
from vsynth.train.phases import plan_phases
from vsynth.train.progress import Progress, StepRecord
from vsynth.train.schedule import WarmupCosine
from vsynth.train.speed import Speed, compiled, cudnn_benchmark, to_channels_last
from vsynth.train.state import TrainState

log = logging.getLogger("vsynth.train")

__all__ = ["FitResult", "Trainer", "TrainingInterrupted"]


@dataclass
class FitResult:
    """What a training run reports: ``metrics.json``'s numbers and the realised composition."""

    metrics: dict[str, Any]
    composition: dict[str, Any] = field(default_factory=dict)


class Trainer:
    def __init__(self, cfg, task: Task, run: RunContext, device: torch.device) -> None:
        self.cfg = cfg
        self.trainer_cfg = cfg.trainer  # the trainer config (``trainer.*``)
        self.task = task
        self.run = run
        self.device = device
        self.composition: dict[str, Any] = {}
        self.evaluated = False  # set by Validation in the current step
        self.train_mode_stale = True  # set after a phase change or an evaluation
        self.in_epoch = 0

    # ---- the four stages -------------------------------------------------------------------------
    def fit(self) -> FitResult:
        self.setup()
        self.resume()
        self.train()
        return FitResult(self.finish(), self.composition)

    def setup(self) -> None:
        """Data and mixer, lengths and phases, model, optimizer, scaler, EMA, schedule, the parts."""
        cfg, tc, task = self.cfg, self.trainer_cfg, self.task
        task.preflight()  # e.g. a bad init file fails before any data is built
        sources = build_sources(cfg, task, self.run)
        self.sampler = build_sampler(cfg, sources, self.run)
        log.info(self.sampler.describe())
        self.expected = self.sampler.composition()
        if self.run.is_main:
            task.write_source_samples(sources, self.expected)
        self.speed = Speed.from_config(tc, self.device, task.fixed_train_shapes())
        self.dataset = MixedDataset({n: sources[n] for n in cfg.arm.sources})
        self.loader = self._loader(self.dataset)
        self.steps_per_epoch = spe = len(self.sampler)
        self.unit = str(tc.unit)
        if self.unit not in ("epoch", "iter"):
            raise ConfigError(f"trainer.unit must be epoch or iter, got '{self.unit}'")
        self.steps_per_unit = spe if self.unit == "epoch" else 1
        self.total = int(round(float(tc.length) * self.steps_per_unit))
        if self.total < 1:
            raise ConfigError(f"trainer.length={tc.length} {self.unit}s gives no training step")
        self.num_epochs = math.ceil(self.total / spe)
        self.phases = plan_phases(list(tc.phases or []), self.total, self.steps_per_unit)

        model = task.build_model().to(self.device)
        if self.speed.channels_last:
            model = to_channels_last(model)
        self.amp = resolve_amp(tc.amp, self.device)
        ema = ModelEMA(model, float(tc.ema.decay), float(tc.ema.tau)) if tc.ema.enabled else None
        self.state = TrainState(model, build_optimizer(model, tc.optimizer), grad_scaler(self.amp, self.device), ema,
                                phase=self.phases[0].name, world_size=self.run.world_size)
        sc, lr = tc.schedule, float(tc.optimizer.lr)
        min_lr = float(sc.min_lr) if sc.min_lr is not None else lr * float(sc.final_lr_ratio)
        self.schedule = WarmupCosine(lr, self.total, int(round(float(sc.warmup) * self.steps_per_unit)),
                                     float(sc.warmup_factor), min_lr)
        every = tc.checkpoint.get("every")
        self.parts: list[Part] = [
            PhaseSwitch(),
            CompositionAudit(),
            Validation(max(1, int(round(float(tc.val.interval) * self.steps_per_unit))),
                       tc.val.metric or task.default_metric, str(tc.val.mode)),
            Checkpointing(int(round(float(every) * self.steps_per_unit)) if every else None),
            Preemption(None if tc.get("stop_at_step") is None else int(tc.stop_at_step)),
        ]

    def resume(self) -> None:
        """Continue from this run folder's ``last.pt`` (unless ``resume=never``)."""
        last = self.run.path("checkpoints", "last.pt")
        if str(self.cfg.resume) != "never" and last.is_file():
            ck = ckpt_io.load_checkpoint(last, key="resume")
            self.task.check_checkpoint_meta(ck.get("meta", {}), last)
            started = int(ck.get("world_size", 1))
            if started != self.run.world_size and str(self.cfg.resume) != "force":
                raise ConfigError(f"resume: this run was trained by {started} process(es) and is resumed by "
                                  f"{self.run.world_size}: its data order and global batch would change; resume with "
                                  f"{started} (e.g. hydra.launcher.tasks_per_node), or resume=force")
            self.state.restore(ck)
            log.info("Resumed from %s at step %d/%d (epoch %d, phase %s)", last, self.state.step, self.total,
                     self.state.step // self.steps_per_epoch + 1, self.state.phase)
        if self.state.step >= self.total:
            log.info("Training already complete (%d/%d steps)", self.state.step, self.total)

    def train(self) -> None:
        """The steps, from the state's step to the end, with every part around them."""
        if self.run.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.state.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=any(p.freeze for p in self.phases))
        else:
            self.model = self.state.model
        self.step_model = compiled(self.model, self.speed.compile_mode)  # what training_step calls
        log.info("Training %d steps (%d epochs of %d batches of %d, unit=%s), amp=%s, ema=%s, phases: %s",
                 self.total, self.num_epochs, self.steps_per_epoch, int(self.trainer_cfg.batch_size), self.unit, self.amp,
                 bool(self.state.ema),
                 ", ".join(f"{p.name}[{p.start},{p.end}) freeze={list(p.freeze)}" for p in self.phases))
        log.info("Speed: %s", self.speed.describe())
        self.progress = Progress(self.total, self.state.step, enabled=self.run.is_main, bar=self.trainer_cfg.progress_bar,
                                 log_interval=int(self.trainer_cfg.log_interval),
                                 tb_dir=self.run.path("tb") if self.trainer_cfg.tensorboard else None)
        completed = False
        for part in self.parts:
            part.before_train(self)
        try:
            with cudnn_benchmark(self.speed.cudnn_benchmark):
                for batch, sources in self._batches():
                    for part in self.parts:
                        part.before_step(self, batch, sources)
                    self.run_step(batch, sources)
                    self.evaluated = False
                    for part in self.parts:
                        part.after_step(self)
            completed = True
        except (NonFiniteLossError, TrainingInterrupted, KeyboardInterrupt):
            raise
        except Exception as err:
            # Later steps of weights ruined by a non-finite loss can fail in other ways before the
            # next flush: name the cause when a pending step shows it.
            try:
                self.flush_steps()
            except NonFiniteLossError as nonfinite:
                raise nonfinite from err
            except Exception:  # noqa: BLE001 - e.g. a dead CUDA context: the original error says more
                pass
            raise
        finally:
            self.progress.close()
            if self.speed.persistent_workers:
                self.loader = self._loader(self.dataset)  # end the workers: evaluation and testing follow
            for part in self.parts:
                part.after_train(self, completed)
        if self.device.type == "cuda" and self.run.is_main:
            log.info("Peak GPU memory: %.2f GiB allocated, %.2f GiB reserved by torch on %s",
                     torch.cuda.max_memory_allocated(self.device) / 2**30,
                     torch.cuda.max_memory_reserved(self.device) / 2**30, torch.cuda.get_device_name(self.device))

    def finish(self) -> dict[str, Any]:
        """The best checkpoint's validation numbers and its score on the test split."""
        out: dict[str, Any] = {}
        best = self.state.best
        best_path = self.run.path("checkpoints", "best.pt")
        eval_model = self.state.eval_model()
        if best is not None and best_path.is_file():
            ck = ckpt_io.load_checkpoint(best_path, key="best.pt")
            eval_model.load_state_dict(ck["ema"]["module"] if ck.get("ema") else ck["model"])
            out["best/step"] = best.step
            out[f"best/{best.metric}"] = best.value
            out.update(best.val)  # val/* of the evaluation that chose best.pt
            log.info("Best %s = %.4f at step %d", best.metric, best.value, best.step)
        for split in self.task.eval_splits():
            if split == "val":
                continue
            t0 = time.perf_counter()
            out.update(self.evaluate(split, model=eval_model, final=True))
            log.info("%s metrics (%.1fs): %s", split, time.perf_counter() - t0,
                     fmt_metrics({k: v for k, v in out.items() if k.startswith(split)}))
        if self.run.is_main:
            out["train/steps"] = self.state.step
            self.task.write_prediction_samples(eval_model, self.task.eval_splits()[-1], self.run.samples)
        return out

    # ---- one step ----------------------------------------------------------------------------------
    def run_step(self, batch: Any, sources: list[str]) -> None:
        """LR, forward under autocast, backward, clipping, optimizer, EMA, progress (and the non-finite
        guard at the log interval, see :meth:`flush_steps`)."""
        s, tc = self.state, self.trainer_cfg
        step = s.step
        self.task.global_step = step  # tasks with step-dependent behaviour (multiscale) read it
        lr = self.schedule(step)
        for g in s.optimizer.param_groups:
            g["lr"] = lr
        with autocast(self.amp, self.device):
            loss, parts = self.task.training_step(self.step_model, batch)
        s.scaler.scale(loss).backward()
        if tc.clip_grad_norm:
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None],
                                           float(tc.clip_grad_norm))
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.optimizer.zero_grad(set_to_none=True)
        if s.ema is not None:
            s.ema.update(s.model)
        s.step += 1
        self.in_epoch += 1
        self.progress.record(StepRecord(s.step, step // self.steps_per_epoch, s.phase, loss.detach(), lr, parts,
                                        len(sources)))
        if self.progress.due(s.step):
            self.flush_steps()

    def flush_steps(self) -> None:
        """Log the steps not yet read back from the device, and stop at the first non-finite loss.

        The guard reads losses here rather than every step (each read waits for the GPU). It runs
        at every log interval and before every checkpoint and evaluation, so it still names the exact
        step, and no checkpoint ever holds weights that trained on a non-finite loss: ``last.pt`` is
        the last good state. Steps after the bad one (fewer than ``trainer.log_interval``) ran
        but are never saved.
        """
        progress = getattr(self, "progress", None)
        bad = progress.flush() if progress is not None else None
        if bad is None:
            return
        last = self.run.path("checkpoints", "last.pt")
        raise NonFiniteLossError(
            f"non-finite loss ({bad.loss}) at step {bad.step} (epoch {bad.epoch + 1}); "
            f"stopped, the last good checkpoint is {last if last.is_file() else 'none (no checkpoint yet)'}; "
            "lower trainer.optimizer.lr or set trainer.clip_grad_norm")

    # ---- helpers -----------------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[Any, list[str]]]:
        """Batches from the state's step on: every epoch's order is set by (seed, epoch), mid-epoch too."""
        seed = int(self.cfg.seed)
        while self.state.step < self.total:
            epoch, self.in_epoch = divmod(self.state.step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch, self.in_epoch)
            # Persistent workers hold copies of the datasets made when they started: restart them when the
            # task changed its datasets (True) or does not say (None, an override that returns nothing).
            if self.task.on_epoch_start(epoch, self.num_epochs) is not False and self.speed.persistent_workers:
                self.loader = self._loader(self.dataset)  # the old workers end with the old loader
            self.loader.generator.manual_seed(seed * 1000003 + epoch)
            for batch, sources in self.loader:
                yield batch, sources
                if self.state.step >= self.total or self.in_epoch >= self.steps_per_epoch:
                    break

    def _loader(self, dataset: MixedDataset) -> DataLoader:
        workers = int(self.trainer_cfg.workers)
        # A private generator: creating a loader iterator must not consume the global torch RNG,
        # otherwise a run resumed mid-epoch would drift from an uninterrupted one.
        gen = torch.Generator().manual_seed(int(self.cfg.seed))
        return DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=TaggedCollate(self.task.collate),
            num_workers=workers,
            pin_memory=self.speed.pin_memory,
            generator=gen,
            persistent_workers=self.speed.persistent_workers,
            worker_init_fn=_ignore_stop_signals if workers > 0 else None,
        )

    def save(self, name: str, full: bool = True) -> Path:
        """Write ``checkpoints/<name>`` from the state (rank 0 only); ``full=False`` leaves out what only
        resuming needs."""
        path = self.run.path("checkpoints", name)
        self.flush_steps()  # never save weights trained on a non-finite loss
        if self.run.is_main:
            ckpt_io.save_checkpoint(path, self.state.payload(self.task, self.cfg, full=full))
        return path

    def evaluate(self, split: str, model: nn.Module | None = None, final: bool = False) -> dict[str, Any]:
        """``split/``-prefixed metrics of ``model`` (default: the state's evaluation weights); the final
        test also writes the per-image prediction and ground-truth files into the run folder."""
        self.flush_steps()
        model = self.state.eval_model() if model is None else model
        with cudnn_benchmark(False):  # evaluation images come in many shapes
            return evaluate_on_rank0(self.task, model, split, self.run.is_main,
                                     outputs=self.run.dir if final and self.run.is_main else None)


def _ignore_stop_signals(worker_id: int) -> None:  # noqa: ARG001
    """DataLoader workers leave stop signals to the main process, which saves last.pt and ends them.

    A scheduler may signal the whole process group; a worker dying on it would crash the run
    instead of letting it stop cleanly as ``interrupted``.
    """
    for name in (*STOP_SIGNALS, "SIGINT"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
