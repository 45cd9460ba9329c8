"""Training throughput of vsynth's detection loop vs YOLOX's own training step, same data, same CPU.

    .venv/bin/python benchmarks/detection_speed.py [--steps 20] [--batch 8] [--size 320] [--rounds 2]

Both sides train YOLOX-Nano (7 classes, fresh weights) at a fixed 320 px (multiscale off) on the demo
world's real training split (COCO JSON), with the same augmentation (MosaicDetection + TrainTransform:
mosaic 1.0, mixup 0.0, HSV 1.0, flip 0.5, degrees 10, translate 0.1, shear 2, mosaic scale 0.5-1.5),
SGD with nesterov momentum, EMA, fp32, data loaded in the main process (0 workers), one torch thread:

* vsynth: the real ``Trainer.fit`` with ``task=detection`` (mixer, MixedDataset with per-sample seeding,
  TaggedCollate, composition check, phases, schedule, EMA, progress), timed between calls of the
  task's ``training_step`` so setup, evaluation and checkpoints at the end are excluded;
* YOLOX: its own pieces as ``yolox.core.Trainer.train_one_iter`` runs them (``YoloxConfig`` nano:
  ``get_model``, ``get_optimizer``, ``get_data_loader`` with ``CocoDataset`` + ``MosaicDetection`` +
  ``YoloBatchSampler``, ``preprocess``, forward with loss, backward, step, ``ModelEMA.update``, LR
  update), timed per iteration (its trainer itself needs CUDA).

The first ``--warmup`` iterations are not counted. Images/s is given by wall clock and by this
process's CPU time (steadier when other work shares the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

AUG = {"mosaic_prob": 1.0, "mixup_prob": 0.0, "hsv_prob": 1.0, "flip_prob": 0.5, "degrees": 10.0, "translate": 0.1,
       "shear": 2.0, "mosaic_scale": (0.5, 1.5)}


def demo_real(cache: Path, n: int) -> Path:
    from vsynth.data.demo import ensure_demo

    root = ensure_demo("detection", cache / "demo", 0, {"real": {"train": n, "val": 8, "test": 8}}, (320, 240))
    return root / "detection" / "real"


def rates(stamps: list[tuple[float, float]], warmup: int, batch: int) -> tuple[float, float, int]:
    s = stamps[warmup:]
    n = len(s) - 1
    wall, cpu = s[-1][0] - s[0][0], s[-1][1] - s[0][1]
    return n * batch / wall, n * batch / cpu, n


def bench_vsynth(cache: Path, steps: int, warmup: int, batch: int, size: int, n_images: int) -> tuple[float, float, int]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tasks.detection.task import DetectionTask
    from vsynth.paths import conf_dir
    from vsynth.run.context import RunContext
    from vsynth.run.dirs import register_resolvers
    from vsynth.train.trainer import Trainer

    class TimedTask(DetectionTask):
        stamps: list[tuple[float, float]] = []

        def training_step(self, model, batch):
            self.stamps.append((time.perf_counter(), time.process_time()))
            return super().training_step(model, batch)

        def evaluate(self, model, split):  # not part of the loop being timed
            return {"ap": 0.0}

        def write_prediction_samples(self, model, split, out_dir):
            pass

        def write_batch_samples(self, batch, sources, out):
            pass

        def _write_source_grids(self, sources):
            pass

    register_resolvers()
    GlobalHydra.instance().clear()
    a = AUG
    overrides = [
        "task=detection", "arm=base", "model=yolox_nano", f"paths.cache={cache}",
        f"data.demo.counts.real={{train: {n_images}, val: 8, test: 8}}", "data.demo.counts.synthetic=null",
        f"task.input_size=[{size},{size}]", f"task.test_size=[{size},{size}]", "task.multiscale.range=null",
        "task.no_aug_epochs=0", f"task.augment.mosaic_prob={a['mosaic_prob']}", f"task.augment.mixup_prob={a['mixup_prob']}",
        f"task.augment.hsv_prob={a['hsv_prob']}", f"task.augment.flip_prob={a['flip_prob']}",
        f"task.augment.degrees={a['degrees']}", f"task.augment.translate={a['translate']}", f"task.augment.shear={a['shear']}",
        f"task.augment.mosaic_scale=[{a['mosaic_scale'][0]},{a['mosaic_scale'][1]}]",
        "trainer.unit=iter", f"trainer.length={steps + warmup + 1}", f"trainer.batch_size={batch}", "trainer.workers=0",
        "trainer.phases=[{name: train, length: null}]", "trainer.amp=off", "trainer.progress_bar=false",
        "trainer.tensorboard=false", "trainer.log_interval=1000", "trainer.schedule.warmup=0", "trainer.val.interval=100000",
        "trainer.optimizer.lr=0.000625", "trainer.checkpoint.phase_snapshots=false",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        for sub in ("checkpoints", "samples"):
            (run_dir / sub).mkdir()
        ctx = RunContext(run_dir, cfg)
        task = TimedTask(cfg, ctx)
        TimedTask.stamps = []
        torch.manual_seed(0)
        Trainer(cfg, task, ctx, torch.device("cpu")).fit()
        return rates(TimedTask.stamps, warmup, batch)


def bench_yolox(real_root: Path, steps: int, warmup: int, batch: int, size: int) -> tuple[float, float, int]:
    from yolox.config import YoloxConfig
    from yolox.utils import ModelEMA

    exp = YoloxConfig.get_named_config("yolox_nano")
    exp.num_classes = 7
    exp.input_size = exp.test_size = (size, size)
    exp.data_dir, exp.train_ann, exp.train_img_dir = str(real_root), "instances_train.json", "frames/train"
    exp.data_num_workers, exp.seed = 0, 0
    exp.enable_mixup = AUG["mixup_prob"] > 0
    for k in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob", "degrees", "translate", "shear", "mosaic_scale"):
        setattr(exp, k, AUG[k])
    torch.manual_seed(0)
    model = exp.get_model()
    model.train()
    optimizer = exp.get_optimizer(batch)
    loader = exp.get_data_loader(batch_size=batch, is_distributed=False, no_aug=False)
    scheduler = exp.get_lr_scheduler(exp.basic_lr_per_img * batch, 1000)
    ema = ModelEMA(model, 0.9998)
    it = iter(loader)
    stamps = []
    for i in range(steps + warmup + 1):
        stamps.append((time.perf_counter(), time.process_time()))
        inps, targets, _, _ = next(it)
        inps, targets = inps.to(torch.float32), targets.to(torch.float32)
        targets.requires_grad = False
        inps, targets = exp.preprocess(inps, targets, exp.input_size)
        outputs = model(inps, targets)
        optimizer.zero_grad()
        outputs["total_loss"].backward()
        optimizer.step()
        ema.update(model)
        lr = scheduler.update_lr(i + 1)
        for g in optimizer.param_groups:
            g["lr"] = lr
    return rates(stamps, warmup, batch)


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vsynth-bench-cache")
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_images = args.batch * (args.steps + args.warmup + 2)  # one epoch covers every timed step
    real_root = demo_real(args.cache, n_images)
    from loguru import logger

    logger.remove()  # YOLOX's loguru output
    results: dict[str, list[tuple[float, float, int]]] = {"vsynth": [], "yolox": []}
    for _ in range(args.rounds):
        results["vsynth"].append(bench_vsynth(args.cache, args.steps, args.warmup, args.batch, args.size, n_images))
        results["yolox"].append(bench_yolox(real_root, args.steps, args.warmup, args.batch, args.size))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), python {platform.python_version()}")
    print(f"YOLOX-Nano, {args.size} px, batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.rounds} round(s), median shown")
    print("| loop | images/s (wall) | images/s (CPU time) | per-round wall |\n|---|---|---|---|")
    for name, label in (("vsynth", "vsynth Trainer + DetectionTask"), ("yolox", "YOLOX's own train step")):
        r = results[name]
        print(f"| {label} | {statistics.median(x[0] for x in r):.2f} | {statistics.median(x[1] for x in r):.2f} | "
              f"{', '.join(f'{x[0]:.2f}' for x in r)} |")
    v, y = (statistics.median(x[1] for x in results[k]) for k in ("vsynth", "yolox"))
    print(f"vsynth / YOLOX (CPU-time rate): {v / y:.3f}")


if __name__ == "__main__":
    main()
