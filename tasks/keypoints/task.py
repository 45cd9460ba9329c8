"""``KeypointsTask``: ultralytics YOLO-pose plugged into vsynth's common loop.

What is ultralytics' and what is vsynth's:

* ultralytics: the model (``PoseModel``), the loss (``v8PoseLoss`` through ``model.loss``, gains
  from ``task.loss``), the training augmentation (``YOLODataset(augment=True)``: mosaic, HSV,
  random affine, flips that swap points with ``flip_idx``; ``task.augment``), letterboxing and NMS;
* vsynth: the data mix (arm sources, real subset x8), the loop (optimizer, warmup + cosine, EMA,
  clipping, AMP, checkpoints, resume), the evaluator (OKS-mAP, OKS-mAP@50, PCK@alpha and box AP
  from ``vsynth.eval``), the run folder.

Preprocessing is the ultralytics trainer's (``img.float() / 255``); mosaic is switched off for the
last ``task.close_mosaic`` epochs in :meth:`on_epoch_start`, as ultralytics' trainer does.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from vsynth.data.mixed_dataset import preview_items
from vsynth.errors import ConfigError, DataError
from vsynth.task import Task
from vsynth.train.distributed import unwrap

from tasks.keypoints import draw
from tasks.keypoints.data import KeypointData, Schema
from tasks.keypoints.flip import check_flip
from tasks.keypoints.hyp import build_hyp
from tasks.keypoints.model import build_pose_model, ultralytics_allow_list, ultralytics_fit_rule
from tasks.keypoints.evaluation import KeypointSplitEvaluator
from tasks.keypoints.predict import truth_from_label

log = logging.getLogger("vsynth.keypoints")

class KeypointsTask(Task):
    name = "keypoints"
    default_metric = "val/oks_map"
    model_kind = "ultralytics"

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        self.task_cfg = cfg.task
        self.imgsz = int(self.task_cfg.imgsz)
        if self.imgsz % 32:
            raise ConfigError(f"task.imgsz must be a multiple of 32 (the model stride), got {self.imgsz}")
        self.data = KeypointData(cfg, Path(str(cfg.paths.cache)), run.dir)
        self.eval_domain = str(cfg.arm.get("eval_domain") or "real")
        if self.eval_domain not in ("real", "synthetic"):
            raise ConfigError(f"arm.eval_domain must be real or synthetic, got '{self.eval_domain}'")
        self._schema: Schema | None = None
        self._hyp = None
        self._train: dict[str, Any] = {}
        self._eval: dict[str, Any] = {}
        self._mosaic_closed = False

    # ---- schema and hyperparameters ------------------------------------------------------------
    def used_sources(self) -> list[str]:
        """The sources this run reads: the arm's and the evaluation domain (only the latter for mode=eval)."""
        names = [] if self.cfg.mode == "eval" else [str(n) for n in self.cfg.arm.sources]
        if self.eval_domain not in names:
            names.append(self.eval_domain)
        return names

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            self._schema = self.data.schema(self.used_sources())
            s = self._schema
            log.info("Keypoint schema: %d points (%s), OKS sigmas %s", s.k, s.origin, s.sigmas)
            for line in check_flip(s, self.hyp, bool(self.task_cfg.get("allow_symmetric_flip", False))):
                (log.warning if line.startswith("WARNING") else log.info)(line)
        return self._schema

    @property
    def hyp(self):
        if self._hyp is None:
            self._hyp = build_hyp(self.task_cfg, self.imgsz)
        return self._hyp

    def data_dict(self) -> dict[str, Any]:
        """The ``data`` mapping ultralytics' datasets read (one class, the run's keypoint schema)."""
        s = self.schema
        d = {"names": {0: s.class_name}, "nc": 1, "channels": 3, "kpt_shape": s.kpt_shape}
        if s.flip_idx is not None:
            d["flip_idx"] = list(s.flip_idx)
        if s.names:
            d["kpt_names"] = {0: list(s.names)}
        d["kpt_oks_sigmas"] = list(s.sigmas)
        return d

    # ---- datasets ------------------------------------------------------------------------------
    def _dataset(self, path: str, augment: bool, key: str):
        from tasks.keypoints.dataset import PoseDataset

        try:
            return PoseDataset(img_path=path, imgsz=self.imgsz, batch_size=int(self.cfg.trainer.batch_size),
                               augment=augment, hyp=copy.copy(self.hyp), rect=False, cache=False, single_cls=True,
                               stride=32, pad=0.0 if augment else 0.5, prefix=f"{key}: ", task="pose",
                               classes=None, data=self.data_dict(), fraction=1.0,
                               label_cache_dir=self.data.cache / "labels")
        except (FileNotFoundError, RuntimeError, ValueError, AssertionError) as e:
            lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip() and "docs.ultralytics" not in ln]
            msg = "; ".join(lines[:2])[:300] if lines else type(e).__name__
            raise DataError(f"{key}: {path}: no usable images/labels ({msg})") from e

    @staticmethod
    def _source_key(name: str) -> str:
        return "data.real" if name == "real" else "data.synthetic" if name == "synthetic" else f"arm.sources.{name}"

    def source_items(self, name: str) -> list[str]:
        _ = self.schema  # resolve and validate the schema (flip map) before anything is built
        return self.data.train_items(name)

    def train_dataset(self, name: str, items) -> Any:
        key = self._source_key(name)
        path = self.data.train_path(name, items)
        ds = self._dataset(path, augment=True, key=f"{key} (train)")
        if len(ds) == 0:
            raise DataError(f"{key}: the train split {path} has no images (empty source)")
        self._train[name] = ds
        log.info("source %s: %d training images (%s)", name, len(ds), path)
        return ds

    def write_source_samples(self, sources: Mapping[str, Any], per_batch) -> None:
        self._write_source_grids(sources)

    def collate(self, samples: list) -> Any:
        from ultralytics.data.dataset import YOLODataset

        return YOLODataset.collate_fn(samples)

    # ---- model ---------------------------------------------------------------------------------
    def fresh_model(self) -> nn.Module:
        s = self.schema
        return build_pose_model(str(self.cfg.model.cfg), s.kpt_shape, self.hyp, s.sigmas, s.names,
                                seed=int(self.cfg.seed), class_name=s.class_name)

    def checkpoint_allow_list(self):
        return (ultralytics_allow_list,)

    def fit_rule(self):
        return ultralytics_fit_rule()

    def preflight(self) -> None:
        super().preflight()
        if not self.cfg.get("init"):
            self._demo_init()  # reads data.demo.init, so a bad file fails before the demo world is built

    def build_model(self) -> nn.Module:
        model = self.fresh_model()
        if self.cfg.get("init"):
            self.load_weights(model, self.cfg.init, key="init")
        elif (demo_init := self._demo_init()) is not None:
            self.load_weights(model, demo_init, key="data.demo.init")
            log.info("data.demo.init is the demo world's pretrained model (data.demo.init=null for fresh weights)")
        else:
            log.info("init: fresh weights for %s (no init checkpoint)", self.cfg.model.cfg)
        return model

    def _demo_init(self) -> str | None:
        """The demo world's pretrained checkpoint, when the demo data and its model are in use.

        It stands in for the COCO-pretrained checkpoint users fine-tune (offline, no download);
        a different ``model.cfg`` trains from fresh weights instead of half-loading it.
        """
        demo = self.cfg.data.get("demo") or {}
        if not demo.get("enabled") or not demo.get("init"):
            return None
        path = Path(str(demo.init)).expanduser()
        made_for = Path(str(self.read_weights(path, key="data.demo.init").meta.get("model", ""))).name
        if made_for and made_for != Path(str(self.cfg.model.cfg)).name:
            log.warning("data.demo.init was pretrained for %s, not model.cfg=%s: training from fresh weights",
                        made_for, self.cfg.model.cfg)
            return None
        return str(path)

    def checkpoint_meta(self) -> dict[str, Any]:
        s = self.schema
        return {"task": self.name, "model": str(self.cfg.model.cfg), "kpt_shape": list(s.kpt_shape),
                "schema": {"class_name": s.class_name, "keypoint_names": list(s.names or []),
                           "flip_idx": list(s.flip_idx) if s.flip_idx is not None else None,
                           "oks_sigmas": list(s.sigmas or []), "imgsz": self.imgsz}}

    # ---- training ------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any):
        dev = self.device
        batch["img"] = batch["img"].to(dev, non_blocking=True).float() / 255
        for k in ("batch_idx", "cls", "bboxes", "keypoints"):
            batch[k] = batch[k].to(dev, non_blocking=True)
        preds = model(batch["img"])  # through DDP when wrapped
        loss, items = unwrap(model).loss(batch, preds)
        return loss.sum(), dict(items)  # detached tensors: read back at the log interval, no sync per step

    def fixed_train_shapes(self) -> bool:
        return True  # mosaic and letterbox always give imgsz x imgsz (rect=False)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> bool:
        # True every epoch: ultralytics' mosaic draws partners from a buffer of the images this process
        # loaded before, so loader workers start fresh each epoch (exact resume), persistent or not.
        n = int(self.task_cfg.get("close_mosaic", 0) or 0)
        if n <= 0 or self._mosaic_closed or epoch < num_epochs - n:
            return True
        for name, ds in self._train.items():
            ds.close_mosaic(hyp=copy.copy(self.hyp))
        self._mosaic_closed = True
        log.info("epoch %d/%d: mosaic closed for the last %d epoch(s) (task.close_mosaic)", epoch + 1, num_epochs, n)
        return True

    # ---- evaluation ----------------------------------------------------------------------------
    def eval_splits(self):
        return ("val", "test")

    def _eval_set(self, split: str) -> dict[str, Any]:
        if split not in self._eval:
            src = self.data.source(self.eval_domain)
            if split not in src.splits:
                raise ConfigError(f"eval.split={split}: the {self.eval_domain} data has no '{split}' split")
            key = f"data.{self.eval_domain} ({split})"
            ds = self._dataset(src.splits[split], augment=False, key=key)
            if len(ds) == 0:
                raise DataError(f"{key}: {src.splits[split]} has no images")
            truths = [truth_from_label(lb, self.schema.k) for lb in ds.labels]
            self._eval[split] = {"dataset": ds, "truths": truths, "path": src.splits[split]}
        return self._eval[split]

    def eval_dataset(self, split: str):
        return self._eval_set(split)["dataset"]

    def eval_collate(self, samples: list) -> Any:
        from ultralytics.data.dataset import YOLODataset

        return YOLODataset.collate_fn(samples)

    def predict_step(self, model: nn.Module, batch: Any):
        from tasks.keypoints.predict import predict_batch

        e = self.cfg.eval
        return predict_batch(model, batch, self.device, tuple(self.schema.kpt_shape), float(e.conf), float(e.nms),
                             int(e.max_det))

    def evaluator(self, split: str) -> KeypointSplitEvaluator:
        return KeypointSplitEvaluator(self, split)

    # ---- pictures ------------------------------------------------------------------------------
    def _sides(self) -> list[str]:
        s = self.schema
        return draw.sides(s.names, s.flip_idx, s.k)

    def _batch_tiles(self, batch: dict[str, Any], labels: list[str], limit: int) -> list[np.ndarray]:
        imgs = batch["img"]
        if imgs.dtype != torch.uint8:
            imgs = (imgs.detach().float().clamp(0, 1) * 255).to(torch.uint8)
        bidx = batch["batch_idx"].cpu().numpy().astype(int)
        kpts, boxes = batch["keypoints"].cpu().numpy(), batch["bboxes"].cpu().numpy()
        tiles = []
        for i in range(min(limit, imgs.shape[0])):
            m = bidx == i
            tiles.append(draw.training_tile(imgs[i].cpu().numpy(), kpts[m], boxes[m], self._sides(),
                                            self.schema.flip_idx, labels[i]))
        return tiles

    def write_batch_samples(self, batch: Any, sources, out: Path) -> None:
        draw.write_grid(out, self._batch_tiles(batch, list(sources), 16), 256, self._legend)

    def _write_source_grids(self, sources: Mapping[str, Any]) -> None:
        """``samples/train_<source>.png``: augmented training images of each source with their labels."""
        n = int((self.task_cfg.get("samples") or {}).get("per_source", 8))
        if n <= 0:
            return
        for name, ds in sources.items():
            items = preview_items(ds, n)
            batch = self.collate(items)
            tiles = self._batch_tiles(batch, [f"{name} #{j}" for j in range(len(items))], n)
            draw.write_grid(self.run.samples / f"train_{name}.png", tiles, 256, self._legend)
            _reset_mosaic_buffer(ds)

    def write_prediction_samples(self, model: nn.Module, split: str, out_dir: Path) -> None:
        """``samples/pred_<split>.png``: predictions (coloured, score >= task.samples.score) over ground truth (grey)."""
        from torch.utils.data import DataLoader
        from ultralytics.data.dataset import YOLODataset

        from tasks.keypoints.predict import predict_batch

        scfg = self.task_cfg.get("samples") or {}
        n, thr = int(scfg.get("predictions", 8)), float(scfg.get("score", 0.25))
        if n <= 0:
            return
        es = self._eval_set(split)
        ds = es["dataset"]
        idx = list(range(min(n, len(ds))))
        loader = DataLoader(torch.utils.data.Subset(ds, idx), batch_size=len(idx), collate_fn=YOLODataset.collate_fn)
        model.eval()
        s = self.schema
        preds = predict_batch(model, next(iter(loader)), self.device, tuple(s.kpt_shape), thr, float(self.cfg.eval.nms),
                              int(self.cfg.eval.max_det))
        tiles = []
        for i, p in zip(idx, preds):
            t = es["truths"][i]
            img = cv2_imread(t.file)
            for b, kp in zip(t.boxes, t.keypoints):
                draw.draw_keypoints(img, kp, self._sides(), s.flip_idx, radius=2, min_vis=0.5, box=b,
                                    colour_override=draw.GT_COLOUR)
            for b, sc, kp in zip(p.boxes, p.scores, p.keypoints):
                draw.draw_keypoints(img, kp, self._sides(), s.flip_idx, radius=3, min_vis=0.5, box=b)
            draw.caption(img, f"{Path(t.file).name}: {len(p.scores)} pred, {len(t.boxes)} gt (grey)")
            tiles.append(img)
        draw.write_grid(Path(out_dir) / f"pred_{split}.png", tiles, 320, self._legend)

    def _legend(self, width: int) -> np.ndarray:
        return draw.legend(width, self.schema.names, self._sides(), self.schema.class_name)


def cv2_imread(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path)
    if img is None:
        raise DataError(f"{path}: cannot read image")
    return img


def _reset_mosaic_buffer(ds) -> None:
    """Forget images loaded for the sample grid, so training starts with an empty mosaic buffer."""
    for i in list(getattr(ds, "buffer", [])):
        ds.ims[i], ds.im_hw0[i], ds.im_hw[i] = None, None, None
    if hasattr(ds, "buffer"):
        ds.buffer.clear()
