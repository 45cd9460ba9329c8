"""``SegmentationTask``: MMSegmentation plugged into vsynth's common loop.

What is mmseg's and what is vsynth's:

* mmseg: the model (``EncoderDecoder`` with PSPNet / DeepLabV3 / DeepLabV3+ heads on ResNetV1c,
  built from ``model.mmseg`` with its ``MODELS`` registry), the training transforms
  (``task.train_pipeline`` built with its ``TRANSFORMS`` registry: RandomResize, RandomCrop with
  ``cat_max_ratio``, RandomFlip, PhotoMetricDistortion, PackSegInputs), ``SegDataPreProcessor``
  (mean/std, BGR->RGB, padding with ``seg_pad_val`` 255), the heads' forward/loss plumbing and
  whole-image / sliding-window inference (``test_cfg``);
* vsynth: sources and the per-batch real:generated ratio (the mixer), the loss
  (:mod:`tasks.segmentation.losses`: class weights that work with ignore 255, OHEM, top-k),
  the loop (SGD, warmup + cosine, clipping, checkpoints, resume, DDP), the IoU evaluator
  (:class:`vsynth.eval.segmentation.SegmentationEvaluator`, numbers identical to mmseg's
  ``IoUMetric``), data checks, ``data_stats.json`` and the pictures in ``samples/``.

``training_step`` is mmseg's ``train_step`` without its optimizer wrapper:
``model.data_preprocessor(batch, training=True)``, ``model(**data, mode='loss')`` and the sum of
the entries whose name contains ``loss`` (mmseg's ``parse_losses``); the parts are logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from vsynth.errors import ConfigError
from vsynth.task import Task
from vsynth.train.distributed import unwrap

from tasks.segmentation import draw
from tasks.segmentation.data import (
    Classes,
    check_labels,
    check_sizes,
    SegData,
    SegLayout,
    SegPipelineSet,
    load_data,
    pseudo_collate,
    read_classes,
    resolve_layout,
)
from tasks.segmentation.model import (
    build_segmentor,
    fit_rule,
    inference_cfg,
    maybe_sync_bn,
    mmengine_allow_list,
    segmentor_config,
    set_inference,
)
from tasks.segmentation.evaluation import SegmentationSplitEvaluator
from tasks.segmentation.stats import data_stats, summary_lines

log = logging.getLogger("vsynth.segmentation")


class SegmentationTask(Task):
    name = "segmentation"
    default_metric = "val/miou"
    model_kind = "mmseg"

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        self.task_cfg = cfg.task
        self._layout: SegLayout | None = None
        self._classes: Classes | None = None
        self._data: SegData | None = None
        self.test_cfg = inference_cfg(self.task_cfg)  # a bad task.inference / task.slide fails before any work
        crop = list(self.task_cfg.crop_size)
        if len(crop) != 2 or min(int(v) for v in crop) < 1:
            raise ConfigError(f"task.crop_size must be [h, w] > 0, got {crop}")

    # ---- data ------------------------------------------------------------------------------------
    @property
    def layout(self) -> SegLayout:
        if self._layout is None:
            self._layout = resolve_layout(self.cfg, Path(str(self.cfg.paths.cache)))
        return self._layout

    @property
    def classes(self) -> Classes:
        if self._classes is None:
            self._classes = read_classes(self.layout.classes_json)
        return self._classes

    def data(self, sources: Sequence[str] = ()) -> SegData:
        if self._data is None or any(s not in self._data.train for s in sources):
            self._data = load_data(self.cfg, self.layout, list(sources))
            self._classes = self._data.classes
        return self._data

    def source_items(self, name: str) -> list[str]:
        data = self.data([str(n) for n in self.cfg.arm.sources])
        return [str(it.image) for it in data.train[name]]

    def train_dataset(self, name: str, items) -> SegPipelineSet:
        c = self.classes
        by_image = {str(it.image): it for it in self.data().train[name]}
        chosen = [by_image[k] for k in items]
        if len(chosen) < len(by_image):
            chosen.sort(key=lambda it: str(it.image))
        if chosen:
            check_sizes(chosen, name)
            n = check_labels(chosen, c, self.cfg.data.get("check_labels", "all"))
            log.info("Source '%s': %d training images (%d label files checked)", name, len(chosen), n)
        return SegPipelineSet(chosen, self.task_cfg.train_pipeline, "task.train_pipeline", c)

    def write_source_samples(self, sources: Mapping[str, Any], per_batch) -> None:
        c = self.classes
        log.info("Classes (%d, ignore %d): %s", c.num, c.ignore_index, ", ".join(c.names))
        self._write_stats({n: ds.items for n, ds in sources.items()}, per_batch)

    def _write_stats(self, train: Mapping[str, Sequence[Any]], per_batch: Mapping[str, int] | None) -> None:
        """``data_stats.json``: per source RGB statistics and label frequencies, and the mixer's per-batch counts."""
        sc = self.task_cfg.get("stats") or {}
        if not sc.get("enabled", True):
            return
        per_source = sc.get("per_source", 32)
        stats = data_stats(train, self.classes, per_batch, None if per_source is None else int(per_source),
                           int(sc.get("seed", 0)))
        self.run.write_json("data_stats.json", stats)
        for line in summary_lines(stats):
            log.info(line)

    def collate(self, samples: list) -> Any:
        return pseudo_collate(samples)

    # ---- model -----------------------------------------------------------------------------------
    def model_dict(self) -> dict[str, Any]:
        return segmentor_config(self.cfg, self.classes.names)

    def fresh_model(self) -> nn.Module:
        d = self.model_dict()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.cfg.seed))
            model = build_segmentor(d)
        head = d["decode_head"]
        bb = d["backbone"]
        log.info("Model %s: %s + %s (depth %s, width %s), %d classes, %.2fM parameters, loss %s, inference %s",
                 self.cfg.model.get("name"), bb.get("type"), head.get("type"), bb.get("depth"), bb.get("base_channels"),
                 head["num_classes"], sum(p.numel() for p in model.parameters()) / 1e6,
                 {k: v for k, v in head["loss_decode"].items() if k not in ("type", "loss_name")}, d["test_cfg"])
        return model

    def checkpoint_allow_list(self):
        return (mmengine_allow_list,)

    def fit_rule(self):
        return fit_rule()

    def build_model(self) -> nn.Module:
        return maybe_sync_bn(super().build_model(), str(self.cfg.model.get("norm", "auto")), self.run.world_size,
                             self.device)

    def checkpoint_meta(self) -> dict[str, Any]:
        m = self.cfg.model
        return {"task": self.name, "model": str(m.get("name")), "depth": int(m.get("depth", 0) or 0),
                "width": int(m.get("width", 0) or 0), "classes": list(self.classes.names)}

    # ---- training --------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any):
        core = unwrap(model)
        data = core.data_preprocessor(batch, training=True)
        losses = model(**data, mode="loss")
        loss = sum(v for k, v in losses.items() if "loss" in k)
        parts = {k: v.detach().mean() for k, v in losses.items()}  # read back at the log interval, no sync per step
        return loss, parts

    def fixed_train_shapes(self) -> bool:
        return self.model_dict()["data_preprocessor"].get("size") is not None  # every batch padded to one size

    # ---- evaluation ------------------------------------------------------------------------------
    def eval_splits(self) -> Sequence[str]:
        return tuple(s for s in ("val", "test") if self.layout.splits.get(s))

    def _eval_items(self, split: str):
        data = self._data if self._data is not None else self.data(())
        if split not in data.eval:
            raise ConfigError(f"eval.split={split}: data.real.splits has no '{split}' folder")
        return data.eval[split]

    def eval_dataset(self, split: str) -> SegPipelineSet:
        return SegPipelineSet(self._eval_items(split), self.task_cfg.test_pipeline, "task.test_pipeline", self.classes)

    def eval_collate(self, samples: list) -> Any:
        return pseudo_collate(samples)

    def predict_step(self, model: nn.Module, batch: Any) -> list[np.ndarray]:
        """Label maps (H, W) at the original size, one per image of ``batch`` (mmseg's ``predict``)."""
        model = unwrap(model)
        set_inference(model, self.test_cfg)
        dev = next(model.parameters()).device
        n = len(batch["inputs"])
        groups: list[list[int]] = []
        for j in range(n):  # the preprocessor stacks only equal sizes at test time
            if groups and batch["inputs"][groups[-1][0]].shape == batch["inputs"][j].shape:
                groups[-1].append(j)
            else:
                groups.append([j])
        preds: dict[int, np.ndarray] = {}
        for g in groups:
            sub = {"inputs": [batch["inputs"][j] for j in g], "data_samples": [batch["data_samples"][j] for j in g]}
            data = model.data_preprocessor(sub, training=False)
            out = model.predict(data["inputs"].to(dev), data["data_samples"])
            for j, r in zip(g, out):
                preds[j] = r.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
        return [preds[j] for j in range(n)]

    def evaluator(self, split: str) -> SegmentationSplitEvaluator:
        return SegmentationSplitEvaluator(self._eval_items(split), self.classes)

    def consistency(self, model: nn.Module) -> dict[str, Any]:
        """``mode=consistency``: the generated images against their source labels (tasks/segmentation/consistency.py)."""
        from tasks.segmentation.consistency import score_consistency

        return score_consistency(self, model)

    # ---- pictures --------------------------------------------------------------------------------
    def write_batch_samples(self, batch: Any, sources: Sequence[str], out: Path) -> None:
        images = [t.permute(1, 2, 0).cpu().numpy().astype(np.uint8) for t in batch["inputs"]]
        labels = [ds.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8) for ds in batch["data_samples"]]
        n = int((self.task_cfg.get("samples") or {}).get("per_batch", 16))
        c = self.classes
        draw.write_png(out, draw.batch_grid(images, labels, list(sources), c.palette, c.ignore_index, n))

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        n = int((self.task_cfg.get("samples") or {}).get("predictions", 6))
        if n <= 0:
            return
        c = self.classes
        from vsynth.data.formats.seg_folders import read_mask

        items = self._eval_items(split)[:n]
        batch = pseudo_collate([SegPipelineSet(items, self.task_cfg.test_pipeline, "task.test_pipeline", c)[i]
                                for i in range(len(items))])
        model.eval()
        with torch.no_grad():
            predictions = self.predict_step(model, batch)
        imgs, gts, preds = [], [], []
        for item, pred, x in zip(items, predictions, batch["inputs"]):
            img = x.permute(1, 2, 0).numpy().copy()
            gt = read_mask(item.label)
            if img.shape[:2] != gt.shape:
                import cv2

                img = cv2.resize(img, (gt.shape[1], gt.shape[0]))
            imgs.append(img)
            gts.append(gt)
            preds.append(pred.astype(np.uint8))
        draw.write_png(Path(out_dir) / f"pred_{split}.png", draw.prediction_grid(imgs, gts, preds, c.palette, c.ignore_index))
