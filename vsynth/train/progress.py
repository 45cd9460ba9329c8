"""Progress reporting: a tqdm bar on a terminal, periodic log lines otherwise, TensorBoard scalars.

Reading a loss on the host waits for the GPU to finish the step (a device sync), so the trainer
does not read it every step: :meth:`Progress.record` keeps each step's loss and loss parts as they
are (tensors stay on the device) and :meth:`Progress.flush` brings all pending ones to the host in
one transfer, at the log interval and before anything is saved or evaluated. What is logged is the
same as reading every step: the log line of every ``log_interval``-th step, and every step's
TensorBoard scalars; a progress bar counts every step and refreshes its loss at each flush.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

log = logging.getLogger("vsynth.train")


@dataclass
class StepRecord:
    """One step's numbers as the loop had them (``loss`` and ``parts`` may be device tensors)."""

    step: int  # global step count after this step (1-based)
    epoch: int  # 0-based
    phase: str
    loss: Any
    lr: float
    parts: Mapping[str, Any]
    n_images: int


class Progress:
    def __init__(self, total_steps: int, start_step: int, *, enabled: bool, bar: str | bool, log_interval: int,
                 tb_dir: Path | None) -> None:
        self.enabled = enabled
        self.total = total_steps
        self.log_interval = max(1, int(log_interval))
        use_bar = sys.stderr.isatty() if str(bar).lower() == "auto" else bool(bar) and str(bar).lower() != "false"
        self.bar = None
        if enabled and use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, dynamic_ncols=True, desc="train")
        self.tb = None
        if enabled and tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(tb_dir))
        self.pending: list[StepRecord] = []
        self._t = time.perf_counter()
        self._n = 0

    def due(self, step: int) -> bool:
        """Whether ``step`` gets a log line (and so a flush)."""
        return step % self.log_interval == 0 or step == self.total

    def record(self, rec: StepRecord) -> None:
        """Keep one step's numbers without reading them (no device sync)."""
        self.pending.append(rec)
        if self.bar is not None:
            self.bar.update(1)

    def flush(self) -> StepRecord | None:
        """Bring the pending steps' numbers to the host in one transfer and log them in order.

        Returns the first step whose loss is not finite (its numbers as floats), without logging it
        or anything after it; ``None`` when all were finite.
        """
        pending, self.pending = self.pending, []
        if not pending:
            return None
        values = _host_floats([r.loss for r in pending] + [v for r in pending for v in r.parts.values()])
        losses, rest = values[: len(pending)], iter(values[len(pending):])
        now = time.perf_counter()
        for rec, loss in zip(pending, losses):
            parts = {k: next(rest) for k in rec.parts}
            if not math.isfinite(loss):
                return StepRecord(rec.step, rec.epoch, rec.phase, loss, rec.lr, parts, rec.n_images)
            self._emit(rec.step, rec.epoch, rec.phase, loss, rec.lr, parts, rec.n_images, now)
        return None

    def _emit(self, step: int, epoch: int, phase: str, loss: float, lr: float, parts: Mapping[str, float],
              n_images: int, now: float) -> None:
        if not self.enabled:
            return
        self._n += n_images
        rate = self._n / max(now - self._t, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(phase=phase, loss=f"{loss:.4f}", lr=f"{lr:.2e}", ips=f"{rate:.1f}")
        elif self.due(step):
            extra = " ".join(f"{k} {v:.4f}" for k, v in parts.items())
            log.info("step %d/%d epoch %d [%s] loss %.4f %s lr %.3e %.1f img/s", step, self.total, epoch + 1, phase,
                     loss, extra, lr, rate)
        if step % self.log_interval == 0:
            self._t, self._n = now, 0
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)
            for k, v in parts.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def _host_floats(values: list[Any]) -> list[float]:
    """Floats of numbers and one-element tensors, with one device-to-host transfer per device."""
    out: list[float | None] = [None] * len(values)
    on_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        if torch.is_tensor(v) and v.device.type != "cpu":
            on_device.setdefault(v.device, []).append(i)
        else:
            out[i] = float(v)
    for idx in on_device.values():
        host = torch.stack([values[i].detach().float().reshape(()) for i in idx]).tolist()
        for i, x in zip(idx, host):
            out[i] = x
    return out  # type: ignore[return-value]
