"""The dataset side of the mixer: named sources behind one index space.

Items are requested as ``(global_index, sample_seed)`` (what :class:`MixBatchSampler` yields).
Before loading, ``random`` and ``numpy.random`` are seeded from ``sample_seed``: the backends'
augmentation pipelines (ultralytics, YOLOX, mmcv) draw from those, so a sample's augmentation
depends only on (seed, epoch, batch, position), not on which worker loads it or on a resume.
Every item comes back tagged with its source name, so the loop can verify the composition of
the batches it actually trained on rather than trusting the sampler.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Mapping

import numpy as np


class MixedDataset:
    """Concatenation of named datasets, addressed by the mixer's global index."""

    def __init__(self, sources: Mapping[str, Any]) -> None:
        self.names = list(sources)
        self.datasets = [sources[n] for n in self.names]
        self.offsets = []
        off = 0
        for ds in self.datasets:
            self.offsets.append(off)
            off += len(ds)
        self.total = off

    def __len__(self) -> int:
        return self.total

    def locate(self, global_index: int) -> tuple[int, int]:
        """(source position, local index) of a global index."""
        for si in range(len(self.datasets) - 1, -1, -1):
            if global_index >= self.offsets[si]:
                return si, global_index - self.offsets[si]
        raise IndexError(global_index)

    def __getitem__(self, item: tuple[int, int] | int) -> tuple[str, Any]:
        if isinstance(item, tuple):
            gidx, sample_seed = item
            random.seed(sample_seed)
            np.random.seed(sample_seed % (2**32))
        else:
            gidx = item
        si, local = self.locate(int(gidx))
        return self.names[si], self.datasets[si][local]


class TaggedCollate:
    """Collate ``(source, sample)`` pairs: the task's collate for samples, a list for sources."""

    def __init__(self, collate: Callable[[list], Any]) -> None:
        self.collate = collate

    def __call__(self, items: list[tuple[str, Any]]) -> tuple[Any, list[str]]:
        return self.collate([s for _, s in items]), [name for name, _ in items]


def preview_items(dataset: Any, n: int, seed: int = 10_000) -> list:
    """Up to ``n`` evenly spaced items for sample pictures, each augmented from its own fixed seed.

    The global ``random``/``numpy.random`` state is restored afterwards, so drawing pictures before
    training never changes what the training run does.
    """
    k = min(n, len(dataset))
    state = (random.getstate(), np.random.get_state())
    try:
        items = []
        for j in range(k):
            random.seed(seed + j)
            np.random.seed(seed + j)
            items.append(dataset[int(j * len(dataset) / k)])
        return items
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
