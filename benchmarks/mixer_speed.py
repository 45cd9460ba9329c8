"""How long the mixer takes to lay out an epoch (it runs at every epoch start and on resume).

Sizes mirror the users' data: a 12,761-frame real set, 40,000 generated/synthetic frames, batch 8
(ratio mode, segmentation) and batch 16 with real x8 oversampling (keypoints).
"""

from __future__ import annotations

import platform
import time

from vsynth.data.mixer import MixBatchSampler, Source


def bench(name: str, sampler: MixBatchSampler, repeat: int = 3) -> None:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        n = sum(1 for _ in sampler)
        best = min(best, time.perf_counter() - t)
    print(f"| {name} | {n} batches | {best * 1e3:.0f} ms | {n / best:,.0f} batches/s |")


if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| case | epoch | time per epoch | rate |\n|---|---|---|---|")
    real, gen = Source("real", 12761), Source("generated", 40000)
    for r in (1.0, 0.5, 0.12, 0.0):
        bench(f"ratio {r}, batch 8", MixBatchSampler([real, gen], 8, ratio=r, seed=0))
    bench("oversample real 100 x8 + synthetic 40,000, batch 16",
          MixBatchSampler([Source("real", 100, 8), Source("synthetic", 40000, 1)], 16, seed=0))
    s = MixBatchSampler([real, gen], 8, ratio=0.5, seed=0)
    s.set_epoch(3, start_batch=5000)
    bench("resume at batch 5000 (ratio 0.5)", s, repeat=1)
