"""Each backend's own trainer on the same model, data and batch as vsynth's loop in the GPU check.

* keypoints: ultralytics' trainer, ``YOLO(model YAML).train(...)`` on the demo world's data YAML
  (``nbs`` = batch: one optimizer step per batch, as vsynth), stopped after the timed batches (its
  epoch end would validate and write checkpoints);
* detection: YOLOX's own ``yolox.core.Trainer`` (it needs CUDA), driven as its ``train()`` drives it:
  ``before_train``, ``before_epoch``, then ``before_iter`` / ``train_one_iter`` / ``after_iter``;
  fp16 only (its ``args.fp16``; YOLOX has no bf16 mode);
* segmentation: an mmengine ``Runner`` with an ``IterBasedTrainLoop`` on the task's mmseg model and
  the task's training datasets (``AmpOptimWrapper`` fp16 / bf16; plain ``OptimWrapper`` fp32 on a CPU,
  where mmengine refuses AMP).

The same :class:`~benchmarks.gpu.common.Stopwatch` times all of them (and vsynth).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from benchmarks.gpu.common import Skip, Stopwatch, compose, make_task


class _Stop(Exception):
    """Ends a backend's training once the timed steps are done."""


def run(task: str, amp: str, plan: dict[str, Any], device, out: Path) -> dict[str, Any]:
    fn = {"keypoints": ultralytics_trainer, "detection": yolox_trainer, "segmentation": mmengine_runner}[task]
    return fn(amp, plan, device, out)


def ultralytics_trainer(amp: str, plan: dict[str, Any], device, out: Path) -> dict[str, Any]:
    import ultralytics.engine.trainer as engine
    from ultralytics import YOLO

    cuda = device.type == "cuda"
    if not cuda and amp == "fp16":
        raise Skip("ultralytics trains fp16 only on a GPU")
    # Its AMP self-test downloads yolo26n.pt to compare fp32 and AMP predictions: impossible offline.
    engine.check_amp = lambda model: True
    cfg = compose(plan["overrides"])
    t, _ = make_task(cfg, out / "runs" / f"backend-keypoints-{amp}", device)
    data_yaml = t.data.demo()["real_yaml"]
    watch = Stopwatch(device, plan["warmup"], plan["steps"], plan["batch"])
    model = YOLO(str(cfg.model.cfg), task="pose")

    def on_train_start(trainer) -> None:
        watch.start()

    def on_batch_end(trainer) -> None:
        if watch.tick():
            raise _Stop

    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_batch_end", on_batch_end)
    try:
        model.train(data=str(data_yaml), epochs=1, imgsz=plan["size"], batch=plan["batch"], nbs=plan["batch"],
                    device=0 if cuda else "cpu", amp=("bf16" if amp == "bf16" else True) if cuda else False,
                    workers=plan["workers"], optimizer="AdamW", lr0=plan["lr"], warmup_epochs=0, close_mosaic=0,
                    val=False, plots=False, save=False, cache=False, seed=0, deterministic=False, verbose=False,
                    project=str(out / "runs" / "ultralytics"), name=f"pose-{amp}", exist_ok=True)
    except _Stop:
        pass
    r = watch.result()
    r["trainer"] = f"ultralytics {__import__('ultralytics').__version__} PoseTrainer, amp={amp if cuda else 'off'}"
    return r


def yolox_trainer(amp: str, plan: dict[str, Any], device, out: Path) -> dict[str, Any]:
    if device.type != "cuda":
        raise Skip("YOLOX's own Trainer needs CUDA (torch.cuda.set_device, DataPrefetcher, random_resize)")
    if amp == "bf16":
        raise Skip("YOLOX's Trainer has fp16 (args.fp16) or fp32 only")
    from yolox.config import YoloxConfig
    from yolox.core import Trainer

    cfg = compose(plan["overrides"])
    t, _ = make_task(cfg, out / "runs" / "backend-detection", device)
    images, ann = t.data.locate("real", "train")
    val_images, val_ann = t.data.locate("real", "val")
    root = ann.parent.parent
    exp = YoloxConfig.get_named_config(str(cfg.model.name))
    exp.num_classes = t.num_classes
    exp.input_size = exp.test_size = (plan["size"], plan["size"])
    exp.multiscale_range, exp.random_size = 0, None  # fixed size, as vsynth with task.multiscale.range=null
    exp.data_dir, exp.train_ann, exp.val_ann = str(root), ann.name, val_ann.name
    exp.train_img_dir, exp.val_img_dir = str(images.relative_to(root)), str(val_images.relative_to(root))
    exp.data_num_workers, exp.seed, exp.output_dir = plan["workers"], 0, str(out / "runs" / "yolox")
    exp.max_epoch, exp.warmup_epochs, exp.no_aug_epochs = 300, 0, 0  # no epoch-end work in the timed steps
    exp.print_interval, exp.eval_interval = 10**6, 10**6
    aug = cfg.task.augment
    for k in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob", "degrees", "translate", "shear"):
        setattr(exp, k, float(aug[k]))
    exp.mosaic_scale, exp.enable_mixup = tuple(aug.mosaic_scale), float(aug.mixup_prob) > 0
    args = Namespace(fp16=True, batch_size=plan["batch"], name="bench", cache=None, occupy=False, logger="tensorboard",
                     resume=False, ckpt=None, start_epoch=None, experiment_name="bench")
    trainer = Trainer(exp, args)
    trainer.before_train()
    watch = Stopwatch(device, plan["warmup"], plan["steps"], plan["batch"])
    trainer.epoch = 0
    trainer.before_epoch()
    watch.start()
    for trainer.iter in range(plan["warmup"] + plan["steps"]):
        trainer.before_iter()
        trainer.train_one_iter()
        trainer.after_iter()
        watch.tick()
    r = watch.result()
    r["trainer"] = f"yolox.core.Trainer ({exp.__class__.__name__}), fp16 GradScaler, EMA"
    return r


def mmengine_runner(amp: str, plan: dict[str, Any], device, out: Path) -> dict[str, Any]:
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from torch.utils.data import ConcatDataset, DataLoader

    from vsynth.data.arms import build_sources

    cuda = device.type == "cuda"
    if not cuda and amp == "fp16":
        raise Skip("mmengine's AmpOptimWrapper needs a GPU; the CPU run is fp32 (under bf16)")
    cfg = compose(plan["overrides"])
    t, ctx = make_task(cfg, out / "runs" / f"backend-segmentation-{amp}", device)
    sources = build_sources(cfg, t, ctx)
    loader = DataLoader(ConcatDataset(list(sources.values())), batch_size=plan["batch"], shuffle=True, drop_last=True,
                        num_workers=plan["workers"], persistent_workers=plan["workers"] > 0, pin_memory=cuda,
                        collate_fn=pseudo_collate)
    watch = Stopwatch(device, plan["warmup"], plan["steps"], plan["batch"])

    class Timing(Hook):
        priority = "VERY_LOW"

        def before_train(self, runner) -> None:
            watch.start()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            watch.tick()

    tc = cfg.trainer
    optimizer = dict(type="SGD", lr=plan["lr"], momentum=float(tc.optimizer.momentum),
                     weight_decay=float(tc.optimizer.weight_decay))
    wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=dict(max_norm=float(tc.clip_grad_norm)))
    if cuda:
        wrapper.update(type="AmpOptimWrapper", dtype="float16" if amp == "fp16" else "bfloat16")
    torch.manual_seed(0)
    runner = Runner(model=t.fresh_model(), work_dir=str(out / "runs" / f"mmengine-{amp}"), train_dataloader=loader,
                    train_cfg=dict(type="IterBasedTrainLoop", max_iters=plan["warmup"] + plan["steps"],
                                   val_interval=10**9),
                    optim_wrapper=wrapper, default_hooks=dict(checkpoint=None, logger=dict(type="LoggerHook",
                                                                                            interval=10**6)),
                    custom_hooks=[Timing()], default_scope="mmseg", randomness=dict(seed=0),
                    env_cfg=dict(cudnn_benchmark=cuda), log_level="WARNING")
    runner.train()
    r = watch.result()
    r["trainer"] = f"mmengine Runner, IterBasedTrainLoop, {wrapper['type']}" + (f" {wrapper['dtype']}" if cuda else " fp32")
    return r
