"""``DetectionTask``: YOLOX plugged into vsynth's common loop.

What is YOLOX's and what is vsynth's:

* YOLOX: the model (``YoloxModule`` at any size, ``tasks.detection.model``), the loss (the head's
  SimOTA assignment with IoU, objectness, class and, in the last ``task.no_aug_epochs`` epochs,
  L1 terms: ``model(imgs, targets)`` in train mode), the training augmentation (``MosaicDetection``:
  mosaic, mixup, random affine; ``TrainTransform``: HSV and horizontal flip; all ``task.augment``),
  multiscale training (``task.multiscale``, deterministic from the step), letterboxing and NMS;
* vsynth: the data mix (arm sources, real subset, ratio), the loop (two phases, frozen CSPDarknet
  first, one warmup + cosine LR across both, AMP, EMA, clipping, checkpoints, resume, DDP), the
  evaluator (COCO AP, AP50, AP75, AR@100, per-class AP, ``vsynth.eval.detection``), the run folder.

Mosaic is switched off and the extra L1 loss switched on for the last ``task.no_aug_epochs``
epochs in :meth:`on_epoch_start`, as YOLOX's trainer does in ``before_epoch``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from vsynth.data.mixed_dataset import preview_items
from vsynth.errors import ConfigError, DataError
from vsynth.task import Task
from vsynth.train.distributed import unwrap

from tasks.detection import draw
from tasks.detection.data import BoxSet, DetectionData, EvalImages, YoloxBoxes, collate_eval, collate_train, read_image
from tasks.detection.evaluation import DetectionSplitEvaluator
from tasks.detection.model import build_yolox, fit_rule, model_spec
from tasks.detection.multiscale import Multiscale, resize_batch
from tasks.detection.predict import Detections, predict

log = logging.getLogger("vsynth.detection")

LOSS_PARTS = ("iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg")


def _size(value: Any, key: str) -> tuple[int, int]:
    """An input size as (height, width), from an int or [h, w]; multiples of 32."""
    if value is None:
        raise ConfigError(f"{key} is not set")
    hw = (int(value), int(value)) if isinstance(value, (int, float)) else tuple(int(v) for v in value)
    if len(hw) != 2 or hw[0] < 32 or hw[1] < 32 or hw[0] % 32 or hw[1] % 32:
        raise ConfigError(f"{key} must be [height, width] (or one number), multiples of 32 (the model stride), got {value}")
    return hw  # type: ignore[return-value]


def _prob(aug: Mapping[str, Any], name: str) -> float:
    v = float(aug.get(name, 0.0))
    if not 0.0 <= v <= 1.0:
        raise ConfigError(f"task.augment.{name} must be a probability in [0, 1], got {v}")
    return v


def _pair(aug: Mapping[str, Any], name: str) -> tuple[float, float]:
    v = aug.get(name)
    try:
        lo, hi = (float(x) for x in v)
    except (TypeError, ValueError):
        raise ConfigError(f"task.augment.{name} must be [low, high], got {v}") from None
    if not 0 < lo <= hi:
        raise ConfigError(f"task.augment.{name} must be [low, high] with 0 < low <= high, got {list(v)}")
    return lo, hi


class DetectionTask(Task):
    name = "detection"
    default_metric = "val/ap"
    model_kind = "yolox"

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        route_yolox_logs()
        self.task_cfg = cfg.task
        self.spec = model_spec(cfg.model)
        self.input_size = _size(self.task_cfg.input_size, "task.input_size")
        self.test_size = _size(self.task_cfg.get("test_size") or self.task_cfg.input_size, "task.test_size")
        self.data = DetectionData(cfg.data, Path(str(cfg.paths.cache)))
        self.eval_domain = str(cfg.arm.get("eval_domain") or "real")
        if self.eval_domain not in ("real", "synthetic"):
            raise ConfigError(f"arm.eval_domain must be real or synthetic, got '{self.eval_domain}'")
        aug = self.task_cfg.get("augment") or {}
        self.aug = {
            "mosaic_prob": _prob(aug, "mosaic_prob"),
            "mixup_prob": _prob(aug, "mixup_prob"),
            "hsv_prob": _prob(aug, "hsv_prob"),
            "flip_prob": _prob(aug, "flip_prob"),
            "degrees": float(aug.get("degrees", 0.0)),
            "translate": float(aug.get("translate", 0.0)),
            "shear": float(aug.get("shear", 0.0)),
            "mosaic_scale": _pair(aug, "mosaic_scale"),
            "mixup_scale": _pair(aug, "mixup_scale"),
        }
        ms = self.task_cfg.get("multiscale") or {}
        self.multiscale = Multiscale(self.input_size, ms.get("range"), int(ms.get("interval", 10)), int(cfg.seed))
        self.no_aug_epochs = int(self.task_cfg.get("no_aug_epochs", 0) or 0)
        if self.no_aug_epochs < 0:
            raise ConfigError(f"task.no_aug_epochs must be >= 0, got {self.no_aug_epochs}")
        self.max_labels = int(self.task_cfg.get("max_labels", 120))
        self._classes: list[str] | None = None
        self._train: dict[str, Any] = {}
        self._no_aug = False
        self._check_lr()

    # ---- configuration -------------------------------------------------------------------------
    def _check_lr(self) -> None:
        """YOLOX scales its LR with the batch (``basic_lr_per_img x batch``); say so if they disagree."""
        per_img = self.task_cfg.get("basic_lr_per_img")
        if per_img is None or self.cfg.mode != "train":
            return
        batch = int(self.cfg.trainer.batch_size) * int(self.run.world_size)
        expected = float(per_img) * batch
        lr = float(self.cfg.trainer.optimizer.lr)
        msg = (f"trainer.optimizer.lr={lr:.6g}; task.basic_lr_per_img={float(per_img):.6g} x total batch {batch} "
               f"= {expected:.6g}")
        if not math.isclose(lr, expected, rel_tol=1e-3):
            log.warning("%s: they differ, the loop uses trainer.optimizer.lr (set it to %.6g for YOLOX's rule)", msg, expected)
        else:
            log.info("%s (YOLOX's LR rule)", msg)

    def _used_files(self) -> list[tuple[str, str]]:
        if self.cfg.mode == "eval":
            return [(self.eval_domain, str(self.cfg.eval.split))]
        used = [(str(n), "train") for n in self.cfg.arm.sources]
        used += [(self.eval_domain, s) for s in self.eval_splits()]
        return used

    @property
    def classes(self) -> list[str]:
        """Class names (in YOLOX's order: by category id), the same in every source used."""
        if self._classes is None:
            self._classes = self.data.classes(self._used_files())
            log.info("Classes (%d): %s", len(self._classes), ", ".join(self._classes))
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ---- datasets ------------------------------------------------------------------------------
    def _mosaic(self, boxes: BoxSet):
        from yolox.data import MosaicDetection, TrainTransform

        a = self.aug
        return MosaicDetection(
            dataset=YoloxBoxes(boxes, self.input_size),
            img_size=self.input_size,
            mosaic=a["mosaic_prob"] > 0,
            preproc=TrainTransform(max_labels=self.max_labels, flip_prob=a["flip_prob"], hsv_prob=a["hsv_prob"]),
            degrees=a["degrees"],
            translate=a["translate"],
            mosaic_scale=a["mosaic_scale"],
            mixup_scale=a["mixup_scale"],
            shear=a["shear"],
            enable_mixup=a["mixup_prob"] > 0,
            mosaic_prob=a["mosaic_prob"],
            mixup_prob=a["mixup_prob"],
        )

    def source_items(self, name: str) -> list[str]:
        _ = self.classes  # every source read and its class list checked before anything is built
        return [str(f) for f in self.data.get(name, "train").files]

    def train_dataset(self, name: str, items) -> Any:
        boxes = self.data.get(name, "train")
        if len(items) != len(boxes):
            where: dict[str, list[int]] = {}
            for i, f in enumerate(boxes.files):
                where.setdefault(str(f), []).append(i)
            boxes = boxes.subset([i for f in items for i in where[f]])
            if not any((~c).any() for c in boxes.crowd):  # YOLOX's mixup would search forever for a box
                from vsynth.data.arms import subset_key

                raise DataError(f"{subset_key(name)}={len(items)}: the {len(boxes)} images drawn from {boxes.path} have "
                                "no (non-crowd) boxes; use a larger subset or another data.subset_seed")
        ds = self._mosaic(boxes)
        self._train[name] = ds
        log.info("source %s: %d training images, %d boxes (%s)", name, len(boxes), boxes.num_boxes, boxes.path)
        return ds

    def write_source_samples(self, sources: Mapping[str, Any], per_batch) -> None:
        self._write_source_grids(sources)

    def collate(self, samples: list) -> Any:
        return collate_train(samples)

    # ---- model ---------------------------------------------------------------------------------
    def fresh_model(self) -> nn.Module:
        return build_yolox(self.spec, self.num_classes, seed=int(self.cfg.seed))

    def fit_rule(self):
        return fit_rule(self.spec["name"], self.num_classes)

    def build_model(self) -> nn.Module:
        model = super().build_model()
        if not self.cfg.get("init"):
            log.info("init: fresh weights for %s (no init checkpoint; set init=PATH to a local YOLOX .pth)", self.spec["name"])
        return model

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": self.name, "model": self.spec["name"], "num_classes": self.num_classes,
                "classes": list(self.classes)}

    # ---- training ------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any):
        dev = self.device
        imgs = batch["img"].to(dev, non_blocking=True)
        targets = batch["targets"].to(dev, non_blocking=True)
        size = self.multiscale.size_at(self.global_step)  # set by the loop: resume-exact
        imgs, targets = resize_batch(imgs, targets, self.input_size, size)
        unwrap(model).head.use_l1 = self._no_aug
        out = model(imgs, targets)  # through DDP when wrapped; YOLOX's loss dict in train mode
        keys = [k for k in LOSS_PARTS if k in out]
        vals = [out[k].detach().float().reshape(()) if torch.is_tensor(out[k]) else torch.tensor(float(out[k]), device=imgs.device)
                for k in keys]
        parts = dict(zip(keys, torch.stack(vals)))  # read back at the log interval: no device sync per step
        parts["size"] = float(size[0])
        return out["total_loss"], parts

    def fixed_train_shapes(self) -> bool:
        return not self.multiscale.enabled

    def on_epoch_start(self, epoch: int, num_epochs: int) -> bool:
        no_aug = self.no_aug_epochs > 0 and epoch >= num_epochs - self.no_aug_epochs
        changed = no_aug != self._no_aug  # mosaic switched: loader workers restart with the change
        for ds in self._train.values():
            ds.enable_mosaic = (not no_aug) and self.aug["mosaic_prob"] > 0
        if no_aug and not self._no_aug:
            log.info("epoch %d/%d: mosaic (and mixup) off, extra L1 loss on for the last %d epoch(s) (task.no_aug_epochs)",
                     epoch + 1, num_epochs, self.no_aug_epochs)
        self._no_aug = no_aug
        return changed

    # ---- evaluation ----------------------------------------------------------------------------
    def eval_splits(self):
        return ("val", "test")

    def _eval_set(self, split: str) -> BoxSet:
        boxes = self.data.get(self.eval_domain, split)
        if boxes.class_names != self.classes:
            raise DataError(f"{boxes.path}: classes {boxes.class_names} differ from the run's {self.classes}")
        return boxes

    def _eval_loader(self, boxes: BoxSet, indices: list[int]):
        from torch.utils.data import DataLoader, Subset

        return DataLoader(Subset(EvalImages(boxes, self.test_size), indices), batch_size=int(self.cfg.eval.batch),
                          shuffle=False, num_workers=0, collate_fn=collate_eval)

    def _predict(self, model: nn.Module, imgs: torch.Tensor, ratios: list[float], conf: float | None = None) -> list[Detections]:
        e = self.cfg.eval
        return predict(model, imgs.to(self.device), ratios, self.num_classes, float(e.conf if conf is None else conf),
                       float(e.nms), int(e.max_det))

    def eval_dataset(self, split: str):
        return EvalImages(self._eval_set(split), self.test_size)

    def eval_collate(self, samples: list) -> Any:
        return collate_eval(samples)

    def predict_step(self, model: nn.Module, batch: Any) -> list[Detections]:
        imgs, ratios, _ = batch
        return self._predict(model, imgs, ratios)

    def evaluator(self, split: str) -> DetectionSplitEvaluator:
        return DetectionSplitEvaluator(self._eval_set(split))

    # ---- pictures ------------------------------------------------------------------------------
    def _batch_tiles(self, batch: Mapping[str, Any], labels: list[str], limit: int) -> list[np.ndarray]:
        imgs, targets = batch["img"].cpu().numpy(), batch["targets"].cpu().numpy()
        return [draw.training_tile(imgs[i], targets[i], self.classes, labels[i]) for i in range(min(limit, len(imgs)))]

    def write_batch_samples(self, batch: Any, sources, out: Path) -> None:
        draw.write_grid(out, self._batch_tiles(batch, list(sources), 16), 256, self._legend)

    def _write_source_grids(self, sources: Mapping[str, Any]) -> None:
        """``samples/train_<source>.png``: augmented training images of each source with their boxes."""
        n = int((self.task_cfg.get("samples") or {}).get("per_source", 8))
        if n <= 0:
            return
        for name, ds in sources.items():
            items = preview_items(ds, n)
            tiles = self._batch_tiles(self.collate(items), [f"{name} #{j}" for j in range(len(items))], len(items))
            draw.write_grid(self.run.samples / f"train_{name}.png", tiles, 256, self._legend)

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        """``samples/pred_<split>.png``: predictions (coloured, score >= task.samples.score) over ground truth (grey)."""
        scfg = self.task_cfg.get("samples") or {}
        n, thr = int(scfg.get("predictions", 8)), float(scfg.get("score", 0.3))
        if n <= 0:
            return
        boxes = self._eval_set(split)
        idx = list(range(min(n, len(boxes))))
        model.eval()
        tiles = []
        for imgs, ratios, ids in self._eval_loader(boxes, idx):
            for i, d in zip(ids, self._predict(model, imgs, ratios, conf=thr)):
                img = read_image(boxes.files[i])
                for b in boxes.boxes[i]:
                    draw.draw_box(img, b, draw.GT_COLOUR)
                for b, s, k in zip(d.boxes, d.scores, d.classes):
                    draw.draw_box(img, b, draw.class_colour(int(k)), f"{self.classes[int(k)]} {s:.2f}")
                draw.caption(img, f"{boxes.files[i].name}: {len(d.scores)} pred, {len(boxes.boxes[i])} gt (grey)")
                tiles.append(img)
        draw.write_grid(Path(out_dir) / f"pred_{split}.png", tiles, 320, self._legend)

    def _legend(self, width: int) -> np.ndarray:
        return draw.legend(width, self.classes)


_ROUTED = [False]


def route_yolox_logs() -> None:
    """YOLOX logs through loguru (to stderr); send its records to the ``yolox`` logger, i.e. run.log."""
    if _ROUTED[0]:
        return
    from loguru import logger

    def sink(message) -> None:
        rec = message.record
        logging.getLogger("yolox").log(rec["level"].no, "%s", rec["message"])

    logger.remove()
    logger.add(sink, level="INFO", format="{message}")
    _ROUTED[0] = True
