"""The loop's features, one small part each (in the spirit of detectron2's hooks).

:class:`~vsynth.train.trainer.Trainer` runs the steps; these parts act around them, in the order the
trainer lists them: the phase in force (:class:`PhaseSwitch`), the realised batch composition
(:class:`CompositionAudit`), validation and ``best.pt`` (:class:`Validation`), ``last.pt`` and
snapshots (:class:`Checkpointing`) and stopping on a signal (:class:`Preemption`). A part sees the
trainer and its :class:`~vsynth.train.state.TrainState`; none of them touches the optimisation step.
"""

from __future__ import annotations

import logging
import signal
from collections import Counter
from typing import Any

from vsynth.errors import ConfigError
from vsynth.train.distributed import unwrap
from vsynth.train.phases import Phase, apply_freeze, phase_at, set_train_mode
from vsynth.train.state import Best

log = logging.getLogger("vsynth.train")

#: the running :class:`vsynth.train.trainer.Trainer` as a part sees it (its state, run, config and helpers)
Trainer = Any

STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


class TrainingInterrupted(Exception):
    """Stopped by a signal or ``trainer.stop_at_step``; ``last.pt`` holds the exact position.

    ``chained`` is the signal handler that was installed before ours (submitit's requeue handler on
    SLURM): the app calls it after marking the run interrupted, so the job is requeued and resumes.
    """

    def __init__(self, message: str, chained=None, signum: int | None = None) -> None:
        super().__init__(message)
        self.chained = chained
        self.signum = signum


class Part:
    """A feature of the loop. Every method is optional."""

    def before_train(self, t: "Trainer") -> None:
        """After setup and resume, before the first step."""

    def before_step(self, t: "Trainer", batch: Any, sources: list[str]) -> None:
        """Before the step that trains on ``batch`` (``sources``: each sample's source name)."""

    def after_step(self, t: "Trainer") -> None:
        """After the optimizer step; ``t.state.step`` counts it."""

    def after_train(self, t: "Trainer", completed: bool) -> None:
        """Always, also when training stops early (``completed`` False)."""


class PhaseSwitch(Part):
    """Applies the freeze rule of the phase a step belongs to; keeps ``<phase>_end.pt`` snapshots."""

    def __init__(self) -> None:
        self.current: Phase | None = None

    def before_step(self, t, batch, sources) -> None:
        phase = phase_at(t.phases, t.state.step)
        if self.current is None or phase.name != self.current.name:
            if self.current is not None and t.trainer_cfg.checkpoint.phase_snapshots:
                t.save(f"{self.current.name}_end.pt", full=False)
            n_frozen = apply_freeze(unwrap(t.model), phase.freeze)
            log.info("Phase '%s' (steps %d-%d): %d parameters frozen in %s", phase.name, phase.start, phase.end,
                     n_frozen, list(phase.freeze) or "nothing")
            self.current = phase
            t.state.phase = phase.name
            t.train_mode_stale = True
        if t.train_mode_stale:  # after a phase change or an evaluation
            set_train_mode(unwrap(t.model), phase.freeze)
            t.train_mode_stale = False

    def after_train(self, t, completed) -> None:
        if completed and self.current is not None and t.trainer_cfg.checkpoint.phase_snapshots:
            t.save(f"{self.current.name}_end.pt", full=False)


def composition_label(counts: Counter) -> str:
    parts = " + ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return f"{parts} = {sum(counts.values())} total"


class CompositionAudit(Part):
    """Verifies every batch has the composition the mixer promised (from the samples actually
    loaded, not from the sampler), tallies it, and writes ``composition.json``."""

    def before_step(self, t, batch, sources) -> None:
        counts = Counter(sources)
        expected = t.expected
        if expected is not None and dict(counts) != {k: v for k, v in expected.items() if v}:
            raise RuntimeError(f"batch at step {t.state.step} has composition {dict(counts)}, expected {expected}")
        label = composition_label(counts)
        if t.state.step == 0 and t.run.is_main:
            log.info("Batch composition: %s", label)
            t.task.write_batch_samples(batch, sources, t.run.samples / "train_batch_0.png")
        t.state.composition.update(counts)
        t.state.batches[label] = t.state.batches.get(label, 0) + 1

    def after_train(self, t, completed) -> None:
        record = {
            "mode": "ratio" if t.expected is not None else "oversample",
            "ratio": t.cfg.data.get("ratio"),
            "expected_per_batch": t.expected,
            "sampler": t.sampler.describe(),
            "samples_per_source": dict(t.state.composition),
            "batches_by_composition": t.state.batches,
            "steps": t.state.step,
        }
        if completed and t.run.world_size > 1:  # the record covers every rank's batches, not just rank 0's
            record["samples_per_source"] = _sum_counters(t.state.composition)
            record["batches_by_composition"] = _sum_counters(Counter(t.state.batches))
            record["world_size"] = t.run.world_size
        t.composition = record
        t.run.write_json("composition.json", record)


def _sum_counters(counter: Counter) -> dict[str, int]:
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, dict(counter))
    total: Counter = Counter()
    for p in parts:
        total.update(p)
    return dict(total)


class Validation(Part):
    """Scores val every ``trainer.val.interval`` units and at the end; keeps ``best.pt`` by
    ``trainer.val.metric`` (``mode`` max or min); one line per evaluation in metrics.jsonl."""

    def __init__(self, every: int, metric: str, mode: str) -> None:
        if mode not in ("max", "min"):
            raise ConfigError(f"trainer.val.mode must be max or min, got '{mode}'")
        self.every, self.metric, self.mode = every, metric, mode

    def after_step(self, t) -> None:
        s = t.state
        if s.step % self.every and s.step != t.total:
            return
        metrics = t.evaluate("val")
        if self.metric not in metrics:
            raise ConfigError(f"trainer.val.metric={self.metric} is not among the metrics {sorted(metrics)}")
        value = float(metrics[self.metric])
        best = s.best
        improved = best is None or (value > best.value if self.mode == "max" else value < best.value)
        if improved:
            s.best = Best(self.metric, value, s.step, {k: v for k, v in metrics.items() if k.startswith("val/")})
            t.save("best.pt", full=False)
        t.run.append_metrics({"step": s.step, "epoch": s.step / t.steps_per_epoch, "phase": s.phase, **metrics,
                              "best": {"metric": s.best.metric, "value": s.best.value, "step": s.best.step}})
        t.progress.scalars(metrics, s.step)
        log.info("eval @ step %d: %s%s", s.step, fmt_metrics(metrics), "  (best)" if improved else "")
        t.evaluated = True
        t.train_mode_stale = True


class Checkpointing(Part):
    """``last.pt`` after every evaluation and at every epoch end; ``epoch_N.pt``/``iter_N.pt`` every
    ``trainer.checkpoint.every`` units."""

    def __init__(self, keep_every: int | None) -> None:
        self.keep_every = keep_every

    def after_step(self, t) -> None:
        if t.evaluated or t.in_epoch == t.steps_per_epoch:
            t.save("last.pt")
        if self.keep_every and t.state.step % self.keep_every == 0:
            t.save(f"{t.unit}_{t.state.step // t.steps_per_unit}.pt", full=False)


class Preemption(Part):
    """SIGTERM/USR1/USR2 (a scheduler's preemption or time limit, a user's kill), a first Ctrl-C, or
    ``trainer.stop_at_step``: finish the step, save ``last.pt`` and stop (the run resumes exactly)."""

    def __init__(self, stop_at_step: int | None) -> None:
        self.stop_at_step = stop_at_step
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        self.signum = signum
        if signum == signal.SIGINT:  # Ctrl-C: a second one stops at once (no last.pt)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            log.warning("Ctrl-C: saving last.pt at the next step boundary (press Ctrl-C again to stop now)")
            return
        log.warning("received signal %d: saving last.pt at the next step boundary", signum)

    def before_train(self, t) -> None:
        for name in (*STOP_SIGNALS, "SIGINT"):
            sig = getattr(signal, name)
            try:
                self.previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
            except ValueError:  # not in the main thread: leave signals alone
                return

    def after_step(self, t) -> None:
        from vsynth.run.preemption import agree_stop

        step = t.state.step
        stop_at = self.stop_at_step is not None and step == self.stop_at_step and step < t.total
        signum = agree_stop(self.signum)  # every DDP rank decides on the same value (a late signal: next step)
        if signum is None and not stop_at:
            return
        t.save("last.pt")
        why = f"signal {signum}" if signum is not None else f"trainer.stop_at_step={self.stop_at_step}"
        prev = self.previous.get(signum) if signum and signum != signal.SIGINT else None
        raise TrainingInterrupted(f"stopped at step {step}/{t.total} ({why}); rerun the same command to resume",
                                  chained=prev if callable(prev) else None, signum=signum)

    def after_train(self, t, completed) -> None:
        for sig, prev in self.previous.items():
            try:
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
            except ValueError:
                pass


def fmt_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
