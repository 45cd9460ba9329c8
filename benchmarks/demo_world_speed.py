"""How fast the demo world is generated: images per second, per task and domain, on one core.

Two figures per (task, domain), as images per second of this process's CPU time (= per core;
unaffected by other processes sharing the machine), plus the wall-clock rate of the write path:
  render  in-memory sample (scene sampling, rasterisation, domain finishing and label degradation)
  write   the product path, `write_demo`, files included (JPEG/PNG encoding, labels, COCO JSON,
          manifest); for `generated` it is the extra time of a real+generated world over the
          real-only one (generated images are made from the written real JPEGs)

    .venv/bin/python benchmarks/demo_world_speed.py [--images 200] [--size 320 240] [--tasks ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from vsynth.data.demo.world import TASKS, render_sample
from vsynth.data.demo.writer import write_demo
from vsynth.run.envinfo import cpu_model


def _timed_write(task: str, counts: dict, size: tuple[int, int]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one `write_demo` call."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        write_demo(Path(tmp) / "w", [task], seed=0, counts=counts, size=size)
        return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images per measurement")
    parser.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    size = (args.size[0], args.size[1])
    n = args.images
    cv2.setNumThreads(1)  # one core: the figure is per core
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores visible; cv2 threads 1)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}; {n} images of {size[0]}x{size[1]} per figure\n")
    print(f"{'task':<13} {'domain':<10} {'render img/s/core':>18} {'write img/s/core':>17} {'write img/s wall':>17}")
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        real = _timed_write(task, {"real": {"train": n}}, size)
        syn = _timed_write(task, {"synthetic": {"train": n}}, size)
        both = _timed_write(task, {"real": {"train": n}, "generated": {"train": n}}, size)
        gen = (max(both[0] - real[0], 1e-9), max(both[1] - real[1], 1e-9))
        for domain, (cpu, wall) in (("real", real), ("synthetic", syn), ("generated", gen)):
            render = "-"
            if domain != "generated":
                start = time.process_time()
                for i in range(n):
                    render_sample(task, domain, 0, "train", i, size)
                render = f"{n / (time.process_time() - start):.0f}"
            print(f"{task:<13} {domain:<10} {render:>18} {n / cpu:>17.0f} {n / wall:>17.0f}")


if __name__ == "__main__":
    main()
