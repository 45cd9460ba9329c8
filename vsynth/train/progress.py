"""Progress reporting: a tqdm bar on a terminal, periodic log lines otherwise, TensorBoard scalars."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Mapping

log = logging.getLogger("vsynth.train")


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
        self._t = time.perf_counter()
        self._n = 0

    def step(self, step: int, epoch: int, phase: str, loss: float, lr: float, parts: Mapping[str, float], n_images: int) -> None:
        if not self.enabled:
            return
        self._n += n_images
        now = time.perf_counter()
        rate = self._n / max(now - self._t, 1e-9)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(phase=phase, loss=f"{loss:.4f}", lr=f"{lr:.2e}", ips=f"{rate:.1f}")
        elif step % self.log_interval == 0 or step == self.total:
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
