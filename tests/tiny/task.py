"""A test-only task: a tiny classifier on procedural vectors, to exercise the loop and the contract.

Two sources with a domain gap (``synthetic`` is shifted), a "backbone" with BatchNorm and a
"head", dropout, and numpy-random augmentation, so freezing, BN handling, RNG restoration and
per-sample seeding all matter for the resume-equality test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from vsynth.errors import ConfigError, DataError
from vsynth.task import SplitEvaluator, Task

DIM, CLASSES = 8, 3


class VectorSet(Dataset):
    def __init__(self, n: int, seed: int, shift: float, augment: bool) -> None:
        rng = np.random.default_rng(seed)
        self.y = rng.integers(0, CLASSES, n)
        centers = np.eye(CLASSES, DIM) * 3.0
        self.x = (centers[self.y] + rng.normal(0, 1.0, (n, DIM)) + shift).astype(np.float32)
        self.augment = augment
        self.tag = 0  # set by the task's on_epoch_start (tests of persistent loader workers)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = self.x[i].copy()
        if self.augment:  # drawn from numpy's global RNG, as backends' pipelines do
            x += np.random.normal(0, 0.1, DIM).astype(np.float32)
        return {"x": torch.from_numpy(x), "y": int(self.y[i]), "tag": self.tag, "pid": os.getpid()}


class TinyEvaluator(SplitEvaluator):
    """Accuracy and cross-entropy over the split."""

    def __init__(self) -> None:
        self.logits, self.labels = [], []

    def process(self, indices, batch, outputs) -> None:
        self.logits.append(outputs.cpu())
        self.labels.append(batch["y"])

    def compute(self):
        logits, y = torch.cat(self.logits), torch.cat(self.labels)
        return {"acc": float((logits.argmax(1) == y).float().mean()), "loss": float(nn.functional.cross_entropy(logits, y))}


class TinyNet(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(DIM, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class TinyTask(Task):
    name = "tiny"
    default_metric = "val/acc"

    def _sizes(self) -> Mapping[str, int]:
        return self.cfg.data.sizes

    def _source(self, name: str) -> VectorSet:
        data = self.cfg.data
        if data.get("root") is not None and not Path(data.root).exists():
            raise DataError(f"data.root={data.root}: folder not found")
        if name not in self._sizes():
            raise ConfigError(f"arm.sources.{name}: data.sizes has no source '{name}'")
        si = list(self.cfg.arm.sources).index(name)
        return VectorSet(int(self._sizes()[name]), 100 + si, 0.0 if name == "real" else 0.7, augment=True)

    def source_items(self, name):
        return [f"{i:06d}" for i in range(len(self._source(name)))]

    def train_dataset(self, name, items):
        ds = self._source(name)
        self.__dict__.setdefault("_train", {})[name] = ds
        if len(items) == len(ds):
            return ds
        return torch.utils.data.Subset(ds, [int(k) for k in items])

    def fresh_model(self) -> nn.Module:
        torch.manual_seed(int(self.cfg.seed))
        return TinyNet(int(self.cfg.model.width))

    def checkpoint_meta(self):
        return {"task": self.name, "width": int(self.cfg.model.width)}

    def training_step(self, model, batch):
        x, y = batch["x"].to(self.device), batch["y"].to(self.device)
        logits = model(x)
        self._n = getattr(self, "_n", 0) + 1
        if self.cfg.task.get("poison_step") is not None and self._n >= int(self.cfg.task.poison_step):
            logits = logits * float("nan")
        if self.cfg.task.get("crash_step") is not None and self._n >= int(self.cfg.task.crash_step):
            raise RuntimeError(f"tiny task: crash_step={self.cfg.task.crash_step}")
        loss = nn.functional.cross_entropy(logits.float(), y)
        return loss, {"ce": float(loss.detach())}

    def on_epoch_start(self, epoch, num_epochs):
        hook = self.cfg.task.get("epoch_hook")  # what the hook tells the loop: changed | unchanged | silent
        if hook is None:
            return False
        for ds in self.__dict__.get("_train", {}).values():
            ds.tag = epoch
        return {"changed": True, "unchanged": False, "silent": None}[hook]

    def eval_dataset(self, split):
        return VectorSet(60, {"val": 7, "test": 8}[split], 0.0, augment=False)

    def predict_step(self, model, batch):
        return model(batch["x"].to(self.device)).float()

    def evaluator(self, split):
        return TinyEvaluator()

    def write_batch_samples(self, batch, sources, out: Path) -> None:
        out.write_bytes(_png_1x1())


def _png_1x1() -> bytes:
    import zlib, struct  # noqa: E401

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    raw = zlib.compress(b"\x00\x80\x80\x80")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
