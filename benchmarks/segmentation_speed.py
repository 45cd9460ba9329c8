"""Training and inference speed of the segmentation task's demo model on this machine.

    .venv/bin/python benchmarks/segmentation_speed.py [--iters 10] [--threads 1] [--model pspnet_r50_demo]
                                                      [--batch 8] [--images 12] [--overrides k=v ...]

Composes ``task=segmentation arm=ratio`` (the CPU demo: PSPNet on a ResNet-18-V1c of width 16, crops
128x128, batch 8, demo world 320x240) and times, after two warm-up iterations:

* training: the task's own ``training_step`` + backward + SGD step on batches loaded through the real
  mmseg pipeline (loading timed separately), as iterations/s and images/s;
* inference on real validation images (320x240): ``task.inference=whole`` against ``slide``
  (windows = ``task.slide.crop_size``, step ``task.slide.stride``), seconds per image, both through
  the task's evaluation path (preprocessor, ``model.predict``, resize back to the label size).

Wall-clock and CPU seconds are both reported: CPU seconds stay meaningful when other work shares
the machine. Writes nothing but stdout (a Markdown table) and, with ``--json PATH``, a JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vsynth.run.envinfo import cpu_model  # noqa: E402


class Clock:
    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.cpu = time.process_time() - self.c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10, help="timed training iterations (after 2 warm-up ones)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--model", default="pspnet_r50_demo")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--images", type=int, default=12, help="validation images timed per inference mode")
    ap.add_argument("--cache", default=os.environ.get("VSYNTH_CACHE", str(Path.home() / ".cache" / "vsynth")))
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    ap.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides, e.g. task.crop_size=[256,256]")
    args = ap.parse_args()

    import numpy as np
    import torch
    from hydra import compose, initialize_config_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    from vsynth.run.context import RunContext
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=["task=segmentation", "arm=ratio", f"model={args.model}",
                                           f"trainer.batch_size={args.batch}", f"paths.cache={args.cache}",
                                           "task.stats.enabled=false", *args.overrides])
    from tasks.segmentation.task import SegmentationTask

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "vsynth-seg-bench"
    tmp.mkdir(parents=True, exist_ok=True)
    task = SegmentationTask(cfg, RunContext(tmp, cfg))
    sources = task.train_sources()
    model = task.build_model()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    rng = np.random.default_rng(0)
    real, gen = sources["real"], sources["generated"]

    def load_batch():
        items = []
        for k in range(args.batch):
            ds = real if k % 2 == 0 else gen  # ratio 0.5
            np.random.seed(int(rng.integers(2**31)))
            items.append(ds[int(rng.integers(len(ds)))])
        return task.collate(items)

    model.train()
    load_t = step_t = step_c = 0.0
    for i in range(args.iters + 2):
        with Clock() as lc:
            batch = load_batch()
        with Clock() as sc:
            loss, _ = task.training_step(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if i >= 2:
            load_t += lc.wall
            step_t += sc.wall
            step_c += sc.cpu
    it_s = args.iters / step_t
    it_s_loaded = args.iters / (step_t + load_t)

    model.eval()
    from vsynth.train.evaluation import eval_loader

    cfg.eval.max_images = args.images
    infer = {}
    for mode in ("whole", "slide"):
        from tasks.segmentation.model import inference_cfg

        cfg.task.inference = mode
        task.test_cfg = inference_cfg(cfg.task)
        with torch.no_grad():
            task.predict_step(model, next(iter(eval_loader(task, "val")))[1])  # warm-up
            with Clock() as c:
                n = sum(len(task.predict_step(model, batch)) for _, batch in eval_loader(task, "val"))
        infer[mode] = {"s_per_image": c.wall / n, "cpu_s_per_image": c.cpu / n, "images": n}
    slide = task.test_cfg

    record = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1m": os.getloadavg()[0], "python": platform.python_version(), "torch": torch.__version__},
        "model": args.model, "parameters_m": round(n_params / 1e6, 3), "batch": args.batch,
        "crop": list(cfg.task.crop_size), "iters": args.iters,
        "train": {"iters_per_s": it_s, "images_per_s": it_s * args.batch, "iters_per_s_with_loading": it_s_loaded,
                  "images_per_s_with_loading": it_s_loaded * args.batch, "cpu_s_per_iter": step_c / args.iters,
                  "load_s_per_batch": load_t / args.iters},
        "inference": infer, "slide": {"crop_size": list(slide["crop_size"]), "stride": list(slide["stride"])},
    }
    m = record["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} thread(s), "
          f"load average {m['load_average_1m']:.1f} at the end")
    print(f"Model: {args.model} ({record['parameters_m']}M parameters), batch {args.batch}, crop {record['crop']}\n")
    t = record["train"]
    print("| measure | value |\n|---|---|")
    print(f"| training iterations/s (step only) | {t['iters_per_s']:.2f} |")
    print(f"| training images/s (step only) | {t['images_per_s']:.1f} |")
    print(f"| training images/s (with loading + augmentation) | {t['images_per_s_with_loading']:.1f} |")
    print(f"| CPU seconds per iteration | {t['cpu_s_per_iter']:.2f} |")
    print(f"| loading + augmentation per batch | {t['load_s_per_batch'] * 1000:.0f} ms |")
    for mode, r in infer.items():
        extra = f" (windows {record['slide']['crop_size']}, stride {record['slide']['stride']})" if mode == "slide" else ""
        print(f"| {mode} inference, 320x240 image{extra} | {r['s_per_image'] * 1000:.0f} ms/image "
              f"({r['cpu_s_per_image'] * 1000:.0f} ms CPU) |")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
