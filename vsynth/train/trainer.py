"""The common loop: one trainer for every task (see DESIGN.md, "The common loop").

State that defines a run's future is exactly what ``last.pt`` holds: weights, EMA, optimizer,
grad scaler, global step (from which epoch, position in the epoch, phase and LR all follow), the
best metric so far, the realised composition tally, and the RNG states. Data order and
augmentation are functions of (seed, epoch, batch), so a run killed and continued from
``last.pt`` ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from vsynth.data.mixed_dataset import MixedDataset, TaggedCollate
from vsynth.data.mixer import MixBatchSampler, Source
from vsynth.errors import ConfigError, NonFiniteLossError
from vsynth.eval.distributed import local_only
from vsynth.run.context import RunContext
from vsynth.run.preemption import agree_stop
from vsynth.task import Task
from vsynth.train import checkpoint as ckpt_io
from vsynth.train.amp import autocast, grad_scaler, resolve_amp
from vsynth.train.distributed import barrier, broadcast_object
from vsynth.train.ema import ModelEMA, unwrap
from vsynth.train.optim import build_optimizer
from vsynth.train.phases import Phase, apply_freeze, phase_at, plan_phases, set_train_mode
from vsynth.train.progress import Progress
from vsynth.train.schedule import WarmupCosine

log = logging.getLogger("vsynth.train")


class TrainingInterrupted(Exception):
    """Stopped by a signal or ``trainer.stop_at_step``; ``last.pt`` holds the exact position.

    ``chained`` is the signal handler that was installed before ours (submitit's requeue handler on
    SLURM): the app calls it after marking the run interrupted, so the job is requeued and resumes.
    """

    def __init__(self, message: str, chained=None, signum: int | None = None) -> None:
        super().__init__(message)
        self.chained = chained
        self.signum = signum


STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


def composition_label(counts: Counter) -> str:
    parts = " + ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return f"{parts} = {sum(counts.values())} total"


def build_sampler(cfg, sources: dict[str, Any], run: RunContext) -> MixBatchSampler:
    """The mixer for the arm's sources (``arm.sources``) and ``data.ratio``."""
    arm_sources = cfg.arm.sources
    specs = []
    for name, scfg in arm_sources.items():
        factor = float((scfg or {}).get("factor", 1.0))
        if name not in sources:
            raise ConfigError(f"arm.sources.{name}: the task built no source named '{name}' (it has {sorted(sources)})")
        specs.append(Source(name, len(sources[name]), factor))
    ratio = cfg.data.get("ratio")
    return MixBatchSampler(
        specs,
        int(cfg.trainer.batch_size),
        ratio=None if ratio is None else float(ratio),
        seed=int(cfg.seed),
        rank=run.rank,
        world_size=run.world_size,
        batches_per_epoch=cfg.data.get("batches_per_epoch"),
    )


class Trainer:
    def __init__(self, cfg, task: Task, run: RunContext, device: torch.device) -> None:
        self.cfg = cfg
        self.tc = cfg.trainer
        self.task = task
        self.run = run
        self.device = device
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}

    # ---- setup -------------------------------------------------------------------------
    def _loader(self, sampler: MixBatchSampler, dataset: MixedDataset) -> DataLoader:
        workers = int(self.tc.workers)
        # A private generator: creating a loader iterator must not consume the global torch RNG,
        # otherwise a run resumed mid-epoch would drift from an uninterrupted one.
        gen = torch.Generator().manual_seed(int(self.cfg.seed))
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=TaggedCollate(self.task.collate),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            generator=gen,
            persistent_workers=False,
            worker_init_fn=_ignore_stop_signals if workers > 0 else None,
        )

    def _install_signal_handlers(self) -> None:
        """Preemption (SLURM's USR2/TERM, a user's kill): finish the step, save last.pt, then stop."""

        def handler(signum, frame):  # noqa: ARG001
            self._stop_signal = signum
            if signum == signal.SIGINT:  # Ctrl-C: a second one stops at once (no last.pt)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                log.warning("Ctrl-C: saving last.pt at the next step boundary (press Ctrl-C again to stop now)")
                return
            log.warning("received signal %d: saving last.pt at the next step boundary", signum)

        for name in (*STOP_SIGNALS, "SIGINT"):
            sig = getattr(signal, name)
            try:
                self._previous_handlers[sig] = signal.getsignal(sig)
                signal.signal(sig, handler)
            except ValueError:  # not in the main thread: leave signals alone
                return

    def _restore_signal_handlers(self) -> None:
        for sig, prev in self._previous_handlers.items():
            try:
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
            except ValueError:
                pass

    # ---- checkpoints -------------------------------------------------------------------
    def _payload(self, model, ema, opt, scaler, state, include_optimizer: bool = True) -> dict[str, Any]:
        p = {
            "task": self.task.name,
            "meta": self.task.checkpoint_meta(),
            "model": unwrap(model).state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "step": state["step"],
            "phase": state["phase"],
            "best": state["best"],
            "composition": dict(state["composition"]),
            "batches": state["batches"],
            "config": OmegaConf.to_yaml(self.cfg, resolve=False),
        }
        if include_optimizer:
            p["optimizer"] = opt.state_dict()
            p["scaler"] = scaler.state_dict()
            p["rng"] = ckpt_io.rng_state()
        return p

    def _save(self, name: str, model, ema, opt, scaler, state, include_optimizer: bool = True) -> Path:
        path = self.run.path("checkpoints", name)
        if self.run.is_main:
            ckpt_io.save_checkpoint(path, self._payload(model, ema, opt, scaler, state, include_optimizer))
        return path

    # ---- evaluation --------------------------------------------------------------------
    def eval_model(self, model: nn.Module, ema: ModelEMA | None) -> nn.Module:
        m = ema.module if ema is not None else unwrap(model)
        m.eval()
        return m

    def _evaluate(self, model, ema, split: str) -> dict[str, Any]:
        return self._eval_loaded(self.eval_model(model, ema), split)

    # ---- the loop ----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg, tc, run, task = self.cfg, self.tc, self.run, self.task
        sources = dict(task.train_sources())
        sampler = build_sampler(cfg, sources, run)
        log.info(sampler.describe())
        dataset = MixedDataset({n: sources[n] for n in cfg.arm.sources})
        loader = self._loader(sampler, dataset)
        spe = len(sampler)
        unit = str(tc.unit)
        if unit not in ("epoch", "iter"):
            raise ConfigError(f"trainer.unit must be epoch or iter, got '{unit}'")
        steps_per_unit = spe if unit == "epoch" else 1
        total = int(round(float(tc.length) * steps_per_unit))
        if total < 1:
            raise ConfigError(f"trainer.length={tc.length} {unit}s gives no training step")
        num_epochs = math.ceil(total / spe)
        phases = plan_phases(list(tc.phases or []), total, steps_per_unit)
        eval_every = max(1, int(round(float(tc.eval.interval) * steps_per_unit)))
        every = tc.checkpoint.get("every")
        keep_every = int(round(float(every) * steps_per_unit)) if every else None
        metric_key = tc.eval.metric or task.default_metric
        mode = str(tc.eval.mode)
        if mode not in ("max", "min"):
            raise ConfigError(f"trainer.eval.mode must be max or min, got '{mode}'")

        model = task.build_model().to(self.device)
        amp = resolve_amp(tc.amp, self.device)
        opt = build_optimizer(model, tc.optimizer)
        scaler = grad_scaler(amp, self.device)
        ema = ModelEMA(model, float(tc.ema.decay), float(tc.ema.tau)) if tc.ema.enabled else None
        sched_cfg = tc.schedule
        lr = float(tc.optimizer.lr)
        min_lr = float(sched_cfg.min_lr) if sched_cfg.min_lr is not None else lr * float(sched_cfg.final_lr_ratio)
        sched = WarmupCosine(lr, total, int(round(float(sched_cfg.warmup) * steps_per_unit)),
                             float(sched_cfg.warmup_factor), min_lr)
        state: dict[str, Any] = {"step": 0, "phase": phases[0].name, "best": None, "composition": Counter(),
                                 "batches": {}}

        last = run.path("checkpoints", "last.pt")
        if str(cfg.resume) != "never" and last.is_file():
            ck = ckpt_io.load_checkpoint(last, key="resume")
            task.check_checkpoint_meta(ck.get("meta", {}), last)
            unwrap(model).load_state_dict(ck["model"])
            if ema is not None and ck.get("ema"):
                ema.load_state_dict(ck["ema"])
            opt.load_state_dict(ck["optimizer"])
            scaler.load_state_dict(ck["scaler"])
            state.update(step=int(ck["step"]), phase=ck["phase"], best=ck["best"],
                         composition=Counter(ck["composition"]), batches=dict(ck["batches"]))
            ckpt_io.set_rng_state(ck["rng"])
            log.info("Resumed from %s at step %d/%d (epoch %d, phase %s)", last, state["step"], total,
                     state["step"] // spe + 1, state["phase"])
        if state["step"] >= total:
            log.info("Training already complete (%d/%d steps)", state["step"], total)

        if run.world_size > 1:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=any(p.freeze for p in phases))

        log.info("Training %d steps (%d epochs of %d batches of %d, unit=%s), amp=%s, ema=%s, phases: %s",
                 total, num_epochs, spe, int(tc.batch_size), unit, amp, bool(ema),
                 ", ".join(f"{p.name}[{p.start},{p.end}) freeze={list(p.freeze)}" for p in phases))
        self._install_signal_handlers()
        progress = Progress(total, state["step"], enabled=run.is_main, bar=tc.progress_bar,
                            log_interval=int(tc.log_interval), tb_dir=run.path("tb") if tc.tensorboard else None)
        current: Phase | None = None
        train_mode_stale = True
        step = state["step"]
        expected = sampler.composition()
        try:
            while step < total:
                epoch, in_epoch = divmod(step, spe)
                sampler.set_epoch(epoch, in_epoch)
                loader.generator.manual_seed(int(cfg.seed) * 1000003 + epoch)
                task.on_epoch_start(epoch, num_epochs)
                for batch, srcs in loader:
                    phase = phase_at(phases, step)
                    if current is None or phase.name != current.name:
                        if current is not None and tc.checkpoint.phase_snapshots:
                            self._save(f"{current.name}_end.pt", model, ema, opt, scaler, state, include_optimizer=False)
                        n_frozen = apply_freeze(unwrap(model), phase.freeze)
                        log.info("Phase '%s' (steps %d-%d): %d parameters frozen in %s", phase.name, phase.start,
                                 phase.end, n_frozen, list(phase.freeze) or "nothing")
                        current = phase
                        state["phase"] = phase.name
                        train_mode_stale = True
                    if train_mode_stale:  # after a phase change or an evaluation
                        set_train_mode(unwrap(model), phase.freeze)
                        train_mode_stale = False
                    counts = Counter(srcs)
                    if expected is not None and dict(counts) != {k: v for k, v in expected.items() if v}:
                        raise RuntimeError(f"batch at step {step} has composition {dict(counts)}, expected {expected}")
                    label = composition_label(counts)
                    if step == 0 and run.is_main:
                        log.info("Batch composition: %s", label)
                        self.task.write_batch_samples(batch, srcs, run.samples / "train_batch_0.png")
                    state["composition"].update(counts)
                    state["batches"][label] = state["batches"].get(label, 0) + 1

                    task.global_step = step  # tasks with step-dependent behaviour (multiscale) read it
                    cur_lr = sched(step)
                    for g in opt.param_groups:
                        g["lr"] = cur_lr
                    with autocast(amp, self.device):
                        loss, parts = task.training_step(model, batch)
                    if not torch.isfinite(loss.detach()).all():
                        raise NonFiniteLossError(
                            f"non-finite loss ({loss.item()}) at step {step + 1} (epoch {epoch + 1}); stopped, the last "
                            f"good checkpoint is {last if last.is_file() else 'none (no checkpoint yet)'}; "
                            "lower trainer.optimizer.lr or set trainer.clip_grad_norm")
                    scaler.scale(loss).backward()
                    if tc.clip_grad_norm:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                                       float(tc.clip_grad_norm))
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema.update(model)
                    step += 1
                    in_epoch += 1
                    state["step"] = step
                    progress.step(step, epoch, phase.name, float(loss.detach()), cur_lr,
                                  {k: float(v) for k, v in parts.items()}, len(srcs))

                    if step % eval_every == 0 or step == total:
                        metrics = self._evaluate(model, ema, "val")
                        record = {"step": step, "epoch": step / spe, "phase": phase.name, **metrics}
                        if metric_key not in metrics:
                            raise ConfigError(f"trainer.eval.metric={metric_key} is not among the metrics {sorted(metrics)}")
                        value = float(metrics[metric_key])
                        best = state["best"]
                        improved = best is None or (value > best["value"] if mode == "max" else value < best["value"])
                        if improved:
                            state["best"] = {"metric": metric_key, "value": value, "step": step}
                            self._save("best.pt", model, ema, opt, scaler, state, include_optimizer=False)
                        record["best"] = state["best"]
                        run.append_metrics(record)
                        progress.scalars(metrics, step)
                        log.info("eval @ step %d: %s%s", step, _fmt(metrics), "  (best)" if improved else "")
                        self._save("last.pt", model, ema, opt, scaler, state)
                        train_mode_stale = True
                    elif in_epoch == spe:
                        self._save("last.pt", model, ema, opt, scaler, state)
                    if keep_every and step % keep_every == 0:
                        self._save(f"{unit}_{step // steps_per_unit}.pt", model, ema, opt, scaler, state,
                                   include_optimizer=False)
                    stop_at = tc.get("stop_at_step")
                    stop_signal = agree_stop(self._stop_signal)  # every DDP rank decides on the same value
                    if stop_signal is not None or (stop_at is not None and step == int(stop_at) and step < total):
                        self._save("last.pt", model, ema, opt, scaler, state)
                        why = f"signal {stop_signal}" if stop_signal is not None else f"trainer.stop_at_step={stop_at}"
                        prev = (self._previous_handlers.get(stop_signal)
                                if stop_signal and stop_signal != signal.SIGINT else None)
                        raise TrainingInterrupted(f"stopped at step {step}/{total} ({why}); rerun the same command to resume",
                                                  chained=prev if callable(prev) else None, signum=stop_signal)
                    if step >= total or in_epoch >= spe:
                        break
        finally:
            progress.close()
            self._restore_signal_handlers()
            self.composition = {
                "mode": "ratio" if expected is not None else "oversample",
                "ratio": cfg.data.get("ratio"),
                "expected_per_batch": expected,
                "sampler": sampler.describe(),
                "samples_per_source": dict(state["composition"]),
                "batches_by_composition": state["batches"],
                "steps": step,
            }
            run.write_json("composition.json", self.composition)

        if run.world_size > 1:  # the record covers every rank's batches, not just rank 0's
            self.composition["samples_per_source"] = _sum_counters(state["composition"])
            self.composition["batches_by_composition"] = _sum_counters(Counter(state["batches"]))
            self.composition["world_size"] = run.world_size
            run.write_json("composition.json", self.composition)
        if current is not None and tc.checkpoint.phase_snapshots and run.is_main:
            self._save(f"{current.name}_end.pt", model, ema, opt, scaler, state, include_optimizer=False)
        self.model, self.ema, self.state = model, ema, state
        return self.final_metrics()

    def final_metrics(self) -> dict[str, Any]:
        """Best checkpoint's validation metrics and its score on the test split."""
        out: dict[str, Any] = {}
        best = self.state["best"]
        best_path = self.run.path("checkpoints", "best.pt")
        eval_model = self.eval_model(self.model, self.ema)
        if best is not None and best_path.is_file():
            ck = ckpt_io.load_checkpoint(best_path, key="best.pt")
            weights = ck["ema"]["module"] if ck.get("ema") else ck["model"]
            eval_model.load_state_dict(weights)
            out["best/step"] = best["step"]
            out[f"best/{best['metric']}"] = best["value"]
            out.update(self._val_metrics_at(best["step"]))  # val/* of the evaluation that chose best.pt
            log.info("Best %s = %.4f at step %d", best["metric"], best["value"], best["step"])
        for split in self.task.eval_splits():
            if split == "val":
                continue
            t0 = time.perf_counter()
            out.update(self._evaluate(self.model, self.ema, split) if best is None else self._eval_loaded(eval_model, split))
            log.info("%s metrics (%.1fs): %s", split, time.perf_counter() - t0,
                     _fmt({k: v for k, v in out.items() if k.startswith(split)}))
        if self.run.is_main:
            out["train/steps"] = self.state["step"]
            self.task.write_prediction_samples(eval_model, self.task.eval_splits()[-1], self.run.samples)
        return out

    def _val_metrics_at(self, step: int) -> dict[str, Any]:
        """The ``val/*`` numbers recorded in metrics.jsonl at ``step``."""
        import json

        path = self.run.path("metrics.jsonl")
        if not path.is_file():
            return {}
        for line in path.read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            if rec.get("step") == step:
                return {k: v for k, v in rec.items() if k.startswith("val/")}
        return {}

    def _eval_loaded(self, eval_model: nn.Module, split: str) -> dict[str, Any]:
        """Rank 0 scores the whole split (evaluators told not to gather); the others wait."""
        metrics: dict[str, Any] = {}
        if self.run.is_main:
            eval_model.eval()
            with torch.no_grad(), local_only():
                metrics = {f"{split}/{k}": v for k, v in self.task.evaluate(eval_model, split).items()}
        barrier()
        return broadcast_object(metrics)


def _ignore_stop_signals(worker_id: int) -> None:  # noqa: ARG001
    """DataLoader workers leave stop signals to the main process, which saves last.pt and ends them.

    A scheduler may signal the whole process group; a worker dying on it would crash the run
    instead of letting it stop cleanly as ``interrupted``.
    """
    for name in (*STOP_SIGNALS, "SIGINT"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _sum_counters(counter: Counter) -> dict[str, int]:
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, dict(counter))
    total: Counter = Counter()
    for p in parts:
        total.update(p)
    return dict(total)


def _fmt(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
