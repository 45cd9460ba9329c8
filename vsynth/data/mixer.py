"""Batch samplers that mix named sources with an exact, reproducible composition.

Two ways users mix data:

* ``ratio`` mode (segmentation ablations): every batch holds exactly ``n_real`` samples from
  ``real`` and the rest from the other sources, ``n_real = floor(ratio * batch + 0.5)`` (round
  half up, so batch 8 gives 8/6/4/2/1/0 real for ratios 1.0/0.75/0.5/0.25/0.12/0.0). Other sources
  share the rest by their ``factor`` as weights, largest remainder first, ties in source order.
  Each source is an endless stream of seeded permutations, so a small source simply cycles.
* ``oversample`` mode (the kill-switch arms): an epoch is every source repeated ``factor`` times
  (a fractional factor adds a seeded partial copy), shuffled together and cut into batches.

Everything derives from ``(seed, epoch)``, so the sampler's state is just ``(epoch, batch)``: a
resumed run regenerates the epoch and skips the batches already seen. Each index comes with a
per-sample seed so augmentation randomness is also reproducible wherever the sample is loaded.
Under DDP, rank ``r`` of ``W`` takes batches ``r, r+W, ...``: disjoint, each with the exact
composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from vsynth.errors import ConfigError

REAL = "real"


def real_count(ratio: float, batch_size: int) -> int:
    """Number of ``real`` samples per batch for ``ratio`` (round half up)."""
    return int(math.floor(ratio * batch_size + 0.5))


def split_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` slots over sources proportionally to ``weights`` (largest remainder)."""
    names = [n for n, w in weights.items() if w > 0]
    if total == 0 or not names:
        return {n: 0 for n in weights}
    wsum = sum(weights[n] for n in names)
    exact = {n: total * weights[n] / wsum for n in names}
    counts = {n: int(math.floor(exact[n])) for n in names}
    left = total - sum(counts.values())
    order = sorted(names, key=lambda n: (-(exact[n] - counts[n]), names.index(n)))
    for n in order[:left]:
        counts[n] += 1
    return {n: counts.get(n, 0) for n in weights}


@dataclass(frozen=True)
class Source:
    """One named source as the sampler sees it: a size and an oversampling factor/weight."""

    name: str
    size: int
    factor: float = 1.0


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([abs(int(k)) for k in key]))


class MixBatchSampler:
    """Yields batches as lists of ``(global_index, sample_seed)``; see the module docstring.

    ``global_index`` addresses the sources concatenated in the order given (see
    :class:`vsynth.data.mixed_dataset.MixedDataset`).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        batch_size: int,
        *,
        ratio: float | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batches_per_epoch: int | None = None,
        drop_last: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"trainer.batch_size must be >= 1, got {batch_size}")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"data sources must have distinct names, got {names}")
        for s in sources:
            if s.factor < 0:
                raise ConfigError(f"arm.sources.{s.name}.factor must be >= 0, got {s.factor}")
        if ratio is not None and not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"data.ratio must be in [0, 1], got {ratio}")
        self.sources = list(sources)
        self.batch_size = batch_size
        self.ratio = ratio
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.offsets: dict[str, int] = {}
        off = 0
        for s in self.sources:
            self.offsets[s.name] = off
            off += s.size
        self.epoch = 0
        self.start_batch = 0
        self.per_batch = self._per_batch_counts() if ratio is not None else None
        for s in self.sources:
            if self._uses(s) and s.size == 0:
                raise ConfigError(f"data source '{s.name}' is empty but the mix draws from it")
        if not any(self._uses(s) for s in self.sources):
            raise ConfigError("the data mix draws from no source (all factors are 0 or no source has data)")
        self._global_batches = batches_per_epoch or self._default_batches()
        if self._global_batches < world_size:
            raise ConfigError(
                f"an epoch has {self._global_batches} batches of {batch_size}, fewer than the "
                f"{world_size} processes; lower trainer.batch_size or add data"
            )

    # ---- composition -------------------------------------------------------------------
    def _per_batch_counts(self) -> dict[str, int]:
        names = [s.name for s in self.sources]
        assert self.ratio is not None
        if REAL not in names:
            raise ConfigError(f"data.ratio needs a source named '{REAL}'; sources are {names}")
        n_real = real_count(self.ratio, self.batch_size)
        others = {s.name: s.factor for s in self.sources if s.name != REAL}
        counts = {REAL: n_real, **split_remainder(self.batch_size - n_real, others)}
        if sum(counts.values()) != self.batch_size:
            raise ConfigError(
                f"data.ratio={self.ratio} leaves {self.batch_size - n_real} non-real slots per batch "
                "but no other source with factor > 0 to fill them"
            )
        return {s.name: counts.get(s.name, 0) for s in self.sources}

    def _uses(self, s: Source) -> bool:
        if self.per_batch is not None:
            return self.per_batch[s.name] > 0
        return s.factor > 0

    def _epoch_pool_size(self) -> int:
        return sum(self._repeats(s) for s in self.sources)

    def _repeats(self, s: Source) -> int:
        return int(math.floor(s.factor * s.size)) if s.factor > 0 else 0

    def _default_batches(self) -> int:
        if self.per_batch is not None:
            used = sum(s.size for s in self.sources if self._uses(s))
            return max(1, math.ceil(used / self.batch_size))
        n = self._epoch_pool_size()
        full = n // self.batch_size
        return full if (self.drop_last and full > 0) else max(1, math.ceil(n / self.batch_size))

    def composition(self) -> dict[str, int] | None:
        """Per-batch counts in ratio mode (``None`` in oversample mode, where batches vary)."""
        return dict(self.per_batch) if self.per_batch is not None else None

    def describe(self) -> str:
        """One line for ``run.log``, e.g. ``Batch composition: 2 real + 6 generated = 8 total``."""
        if self.per_batch is not None:
            parts = " + ".join(f"{n} {name}" for name, n in self.per_batch.items())
            return f"Batch composition: {parts} = {self.batch_size} total (ratio {self.ratio})"
        parts = " + ".join(
            f"{s.name} {s.size} x{s.factor:g} = {self._repeats(s)}" for s in self.sources
        )
        return (
            f"Epoch composition: {parts}; {self._epoch_pool_size()} samples in "
            f"{self._global_batches} batches of {self.batch_size}"
        )

    # ---- state -------------------------------------------------------------------------
    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch and the first batch (this rank's count) to yield, for resume."""
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return self._global_batches // self.world_size

    # ---- generation --------------------------------------------------------------------
    def _epoch_batches(self) -> list[np.ndarray]:
        """All global batches of the current epoch as arrays of global indices."""
        B = self.batch_size
        if self.per_batch is None:
            pool = []
            for si, s in enumerate(self.sources):
                reps = self._repeats(s)
                if reps == 0:
                    continue
                full, part = divmod(reps, s.size)
                idx = np.concatenate(
                    [np.tile(np.arange(s.size), full), _rng(self.seed, self.epoch, si, 7).permutation(s.size)[:part]]
                )
                pool.append(idx + self.offsets[s.name])
            allidx = _rng(self.seed, self.epoch, 1).permutation(np.concatenate(pool))
            n = self._global_batches
            out = [allidx[i * B : (i + 1) * B] for i in range(n)]
            return [b for b in out if len(b) > 0]
        # ratio mode: endless per-source streams
        need = {s.name: self._global_batches * self.per_batch[s.name] for s in self.sources}
        streams = {}
        for si, s in enumerate(self.sources):
            k = need[s.name]
            if k == 0:
                continue
            cycles = math.ceil(k / s.size)
            perm = np.concatenate([_rng(self.seed, self.epoch, si, c).permutation(s.size) for c in range(cycles)])
            streams[s.name] = perm[:k] + self.offsets[s.name]
        batches = []
        for b in range(self._global_batches):
            parts = [
                streams[s.name][b * self.per_batch[s.name] : (b + 1) * self.per_batch[s.name]]
                for s in self.sources
                if self.per_batch[s.name] > 0
            ]
            # shuffle within the batch so position does not reveal the source
            batches.append(_rng(self.seed, self.epoch, 2, b).permutation(np.concatenate(parts)))
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = self._epoch_batches()
        usable = (len(batches) // self.world_size) * self.world_size
        mine = list(range(self.rank, usable, self.world_size))
        for local_b, global_b in enumerate(mine):
            if local_b < self.start_batch:
                continue
            seeds = _rng(self.seed, self.epoch, 3, global_b).integers(0, 2**31 - 1, size=len(batches[global_b]))
            yield [(int(i), int(sd)) for i, sd in zip(batches[global_b], seeds)]
        self.start_batch = 0

    def source_of(self, global_index: int) -> str:
        for s in reversed(self.sources):
            if global_index >= self.offsets[s.name]:
                return s.name
        raise IndexError(global_index)
