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
from torch.utils.data import DataLoader

from vsynth.errors import CheckpointError, ConfigError
from vsynth.task import Task
from vsynth.train.ema import unwrap

from tasks.segmentation import draw
from tasks.segmentation.data import (
    Classes,
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
    inference_cfg,
    maybe_sync_bn,
    read_state,
    segmentor_config,
    set_inference,
    transfer,
)
from tasks.segmentation.stats import data_stats, summary_lines

log = logging.getLogger("vsynth.segmentation")


class SegmentationTask(Task):
    name = "segmentation"
    default_metric = "val/miou"

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        self.tc = cfg.task
        self._layout: SegLayout | None = None
        self._classes: Classes | None = None
        self._data: SegData | None = None
        self.test_cfg = inference_cfg(self.tc)  # a bad task.inference / task.slide fails before any work
        crop = list(self.tc.crop_size)
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

    def train_sources(self):
        names = [str(n) for n in self.cfg.arm.sources]
        data = self.data(names)
        c = self.classes
        log.info("Classes (%d, ignore %d): %s", c.num, c.ignore_index, ", ".join(c.names))
        self._write_stats(data)
        return {n: SegPipelineSet(data.train[n], self.tc.train_pipeline, "task.train_pipeline", c) for n in names}

    def _write_stats(self, data: SegData) -> None:
        if not self.run.is_main:
            return
        sc = self.tc.get("stats") or {}
        if not sc.get("enabled", True):
            return
        per_batch = None
        ratio = self.cfg.data.get("ratio")
        if ratio is not None:
            from vsynth.data.mixer import real_count, split_remainder

            bs = int(self.cfg.trainer.batch_size)
            n_real = real_count(float(ratio), bs)
            others = {n: float((self.cfg.arm.sources[n] or {}).get("factor", 1.0)) for n in data.train if n != "real"}
            per_batch = {"real": n_real if "real" in data.train else 0, **split_remainder(bs - n_real, others)}
        per_source = sc.get("per_source", 32)
        stats = data_stats(data.train, data.classes, per_batch, None if per_source is None else int(per_source),
                           int(sc.get("seed", 0)))
        self.run.write_json("data_stats.json", stats)
        for line in summary_lines(stats):
            log.info(line)

    def collate(self, samples: list) -> Any:
        return pseudo_collate(samples)

    # ---- model -----------------------------------------------------------------------------------
    def model_dict(self) -> dict[str, Any]:
        return segmentor_config(self.cfg, self.classes.names)

    def build_model(self, with_init: bool = True) -> nn.Module:
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
        init = self.cfg.get("init")
        if with_init and init:
            self._load_init(model, init)
        return maybe_sync_bn(model, str(self.cfg.model.get("norm", "auto")), self.run.world_size, self.device)

    def _load_init(self, model: nn.Module, init: Any) -> None:
        state, kind, meta = read_state(init, "init")
        if kind == "vsynth" and meta.get("task") not in (None, self.name):
            raise CheckpointError(f"init={init}: a checkpoint of task '{meta.get('task')}', not {self.name}")
        n, total, mismatched, missing = transfer(model, state, init, "init")
        log.info("init: %d/%d tensors from %s checkpoint %s", n, total, kind, Path(str(init)).expanduser().resolve())
        if mismatched:
            log.info("init: skipped %d tensor(s) with another shape: %s", len(mismatched), "; ".join(mismatched))
        if missing:
            log.info("init: %d model tensor(s) not in the checkpoint keep their initialisation: %s", len(missing),
                     ", ".join(missing))

    def checkpoint_meta(self) -> dict[str, Any]:
        m = self.cfg.model
        return {"task": self.name, "model": str(m.get("name")), "depth": int(m.get("depth", 0) or 0),
                "width": int(m.get("width", 0) or 0), "classes": list(self.classes.names)}

    def load_for_eval(self, path: Path) -> nn.Module:
        """A vsynth checkpoint (EMA weights if stored) or an mmseg checkpoint / state dict of this model."""
        state, kind, meta = read_state(path, "ckpt")
        if kind == "vsynth":
            self.check_checkpoint_meta(meta, Path(path))
        model = self.build_model(with_init=False)
        if kind == "vsynth":
            model.load_state_dict(state)
            return model
        # a foreign checkpoint: everything but the auxiliary head (unused at inference) must fit
        needed = [k for k in model.state_dict() if not k.startswith("auxiliary_head.")]
        n, total, mismatched, missing = transfer(model, state, path, "ckpt")
        absent = [k for k in needed if k in missing or any(m.startswith(k + " ") for m in mismatched)]
        if absent:
            raise CheckpointError(f"ckpt={path}: {len(absent)} tensors of this model are missing or of another shape "
                                  f"(e.g. {absent[0]}); check model=..., model.depth/width and the classes")
        log.info("ckpt: %d/%d tensors from %s checkpoint %s", n, total, kind, path)
        return model

    # ---- training --------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any):
        core = unwrap(model)
        data = core.data_preprocessor(batch, training=True)
        losses = model(**data, mode="loss")
        loss = sum(v for k, v in losses.items() if "loss" in k)
        parts = {k: float(v.detach().mean()) for k, v in losses.items()}
        return loss, parts

    # ---- evaluation ------------------------------------------------------------------------------
    def eval_splits(self) -> Sequence[str]:
        return tuple(s for s in ("val", "test") if self.layout.splits.get(s))

    def _eval_items(self, split: str):
        data = self._data if self._data is not None else self.data(())
        if split not in data.eval:
            raise ConfigError(f"eval.split={split}: data.real.splits has no '{split}' folder")
        items = data.eval[split]
        limit = (self.tc.get("eval") or {}).get("max_images")
        return items[: int(limit)] if limit else items

    def _predict(self, model: nn.Module, items, with_images: bool = False):
        """Yield (item, prediction (H, W) int64, BGR image or None) for ``items``."""
        ec = self.tc.get("eval") or {}
        ds = SegPipelineSet(items, self.tc.test_pipeline, "task.test_pipeline", self.classes)
        loader = DataLoader(ds, batch_size=max(1, int(ec.get("batch", 4))), shuffle=False,
                            num_workers=int(ec.get("workers", 0)), collate_fn=pseudo_collate)
        model = unwrap(model)
        set_inference(model, self.test_cfg)
        dev = next(model.parameters()).device
        i0 = 0
        for batch in loader:
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
                with torch.no_grad():
                    out = model.predict(data["inputs"].to(dev), data["data_samples"])
                for j, r in zip(g, out):
                    preds[j] = r.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
            for j in range(n):
                item = items[i0 + j]
                img = batch["inputs"][j].permute(1, 2, 0).numpy().copy() if with_images else None
                yield item, preds[j], img
            i0 += n

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        from vsynth.data.formats.seg_folders import read_mask
        from vsynth.eval.segmentation import SegmentationEvaluator

        c = self.classes
        ev = SegmentationEvaluator(c.num, ignore_index=c.ignore_index, class_names=c.names)
        for item, pred, _ in self._predict(model, self._eval_items(split)):
            gt = read_mask(item.label, c.num, c.ignore_index)
            if pred.shape != gt.shape:  # a test pipeline that resizes: mmseg predicts at ori_shape
                raise ConfigError(f"task.test_pipeline: prediction {pred.shape} differs from the label {item.label} {gt.shape}")
            ev.add_map(pred, gt, source=str(item.image))
        return flatten_metrics(ev.compute())  # the loop scores on rank 0 inside eval.distributed.local_only()

    # ---- pictures --------------------------------------------------------------------------------
    def write_batch_samples(self, batch: Any, sources: Sequence[str], out: Path) -> None:
        images = [t.permute(1, 2, 0).cpu().numpy().astype(np.uint8) for t in batch["inputs"]]
        labels = [ds.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8) for ds in batch["data_samples"]]
        n = int((self.tc.get("samples") or {}).get("per_batch", 16))
        c = self.classes
        draw.write_png(out, draw.batch_grid(images, labels, list(sources), c.palette, c.ignore_index, n))

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        n = int((self.tc.get("samples") or {}).get("predictions", 6))
        if n <= 0:
            return
        c = self.classes
        from vsynth.data.formats.seg_folders import read_mask

        items = self._eval_items(split)[:n]
        imgs, gts, preds = [], [], []
        for item, pred, img in self._predict(model, items, with_images=True):
            gt = read_mask(item.label)
            if img.shape[:2] != gt.shape:
                import cv2

                img = cv2.resize(img, (gt.shape[1], gt.shape[0]))
            imgs.append(img)
            gts.append(gt)
            preds.append(pred.astype(np.uint8))
        draw.write_png(Path(out_dir) / f"pred_{split}.png", draw.prediction_grid(imgs, gts, preds, c.palette, c.ignore_index))


def flatten_metrics(res: Mapping[str, Any]) -> dict[str, Any]:
    """``{"iou": {cls: v}}`` -> ``{"iou/cls": v}``; scalars kept (miou, macc, aacc, num_images)."""
    out: dict[str, Any] = {}
    for k, v in res.items():
        if isinstance(v, Mapping):
            for name, x in v.items():
                out[f"{k}/{name}"] = float(x)
        else:
            out[k] = v
    return out
