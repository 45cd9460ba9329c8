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
from vsynth.train.ema import unwrap

from tasks.keypoints import draw
from tasks.keypoints.data import KeypointData, Schema
from tasks.keypoints.flip import check_flip
from tasks.keypoints.hyp import build_hyp
from tasks.keypoints.model import attach_training_attributes, build_pose_model, init_from, read_weights, transfer
from tasks.keypoints.predict import ImageTruth, coco_results, iterate_predictions, truth_from_label

log = logging.getLogger("vsynth.keypoints")

CATEGORY_ID = 1


class KeypointsTask(Task):
    name = "keypoints"
    default_metric = "val/oks_map"

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        self.tc = cfg.task
        self.imgsz = int(self.tc.imgsz)
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
        names = [str(n) for n in self.cfg.arm.sources]
        if self.eval_domain not in names:
            names.append(self.eval_domain)
        return names

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            self._schema = self.data.schema(self.used_sources())
            s = self._schema
            log.info("Keypoint schema: %d points (%s), OKS sigmas %s", s.k, s.origin, s.sigmas)
            for line in check_flip(s, self.hyp, bool(self.tc.get("allow_symmetric_flip", False))):
                (log.warning if line.startswith("WARNING") else log.info)(line)
        return self._schema

    @property
    def hyp(self):
        if self._hyp is None:
            self._hyp = build_hyp(self.tc, self.imgsz)
        return self._hyp

    def data_dict(self) -> dict[str, Any]:
        """The ``data`` mapping ultralytics' datasets read (one class, the run's keypoint schema)."""
        s = self.schema
        d = {"names": {0: "vehicle"}, "nc": 1, "channels": 3, "kpt_shape": s.kpt_shape}
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

    def train_sources(self) -> Mapping[str, Any]:
        _ = self.schema  # resolve and validate the schema (flip map) before anything is built
        out = {}
        for name, scfg in self.cfg.arm.sources.items():
            subset = (scfg or {}).get("subset")
            key = "data.real" if name == "real" else "data.synthetic" if name == "synthetic" else f"arm.sources.{name}"
            path = self.data.train_list(str(name), None if subset is None else int(subset))
            ds = self._dataset(path, augment=True, key=f"{key} (train)")
            if len(ds) == 0:
                raise DataError(f"{key}: the train split {path} has no images (empty source)")
            out[str(name)] = ds
            log.info("source %s: %d training images (%s)", name, len(ds), path)
        self._train = out
        if self.run.is_main:
            self._write_source_grids(out)
        return out

    def collate(self, samples: list) -> Any:
        from ultralytics.data.dataset import YOLODataset

        return YOLODataset.collate_fn(samples)

    # ---- model ---------------------------------------------------------------------------------
    def _fresh_model(self) -> nn.Module:
        s = self.schema
        return build_pose_model(str(self.cfg.model.cfg), s.kpt_shape, self.hyp, s.sigmas, s.names,
                                seed=int(self.cfg.seed))

    def build_model(self) -> nn.Module:
        model = self._fresh_model()
        if self.cfg.get("init"):
            log.info(init_from(model, str(self.cfg.init)))
        elif (demo_init := self._demo_init()) is not None:
            log.info("%s (data.demo.init: the demo world's pretrained model; data.demo.init=null for fresh weights)",
                     init_from(model, demo_init, key="data.demo.init"))
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
        meta = read_weights(path, key="data.demo.init", task_name=self.name).get("meta", {})
        made_for = Path(str(meta.get("model", ""))).name
        if made_for and made_for != Path(str(self.cfg.model.cfg)).name:
            log.warning("data.demo.init was pretrained for %s, not model.cfg=%s: training from fresh weights",
                        made_for, self.cfg.model.cfg)
            return None
        return str(path)

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": self.name, "model": str(self.cfg.model.cfg), "kpt_shape": list(self.schema.kpt_shape)}

    def load_for_eval(self, path: Path) -> nn.Module:
        """A vsynth checkpoint (EMA weights) or an ultralytics one, for ``mode=eval ckpt=PATH``."""
        w = read_weights(path, key="ckpt", task_name=self.name)
        if w["kind"] == "vsynth":
            self.check_checkpoint_meta(w.get("meta", {}), Path(path))
        model = self._fresh_model()
        transfer(model, w["state"], path, key="ckpt", strict=True)
        return model

    # ---- training ------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any):
        dev = self.device
        batch["img"] = batch["img"].to(dev, non_blocking=True).float() / 255
        for k in ("batch_idx", "cls", "bboxes", "keypoints"):
            batch[k] = batch[k].to(dev, non_blocking=True)
        preds = model(batch["img"])  # through DDP when wrapped
        loss, items = unwrap(model).loss(batch, preds)
        return loss.sum(), {k: float(v) for k, v in items.items()}

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        n = int(self.tc.get("close_mosaic", 0) or 0)
        if n <= 0 or self._mosaic_closed or epoch < num_epochs - n:
            return
        for name, ds in self._train.items():
            ds.close_mosaic(hyp=copy.copy(self.hyp))
        self._mosaic_closed = True
        log.info("epoch %d/%d: mosaic closed for the last %d epoch(s) (task.close_mosaic)", epoch + 1, num_epochs, n)

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

    def _loader(self, ds):
        from torch.utils.data import DataLoader
        from ultralytics.data.dataset import YOLODataset

        ev = self.tc.get("eval") or {}
        return DataLoader(ds, batch_size=int(ev.get("batch", 16)), shuffle=False, num_workers=int(ev.get("workers", 0)),
                          collate_fn=YOLODataset.collate_fn)

    def _targets(self, t: ImageTruth) -> dict[str, np.ndarray]:
        b = t.boxes
        area_factor = float((self.tc.get("eval") or {}).get("area_factor", 0.53))
        return {"keypoints": t.keypoints, "boxes": b,
                "areas": (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) * area_factor}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        from vsynth.eval.detection import DetectionEvaluator
        from vsynth.eval.keypoints import KeypointEvaluator

        es = self._eval_set(split)
        s = self.schema
        ev_cfg = self.tc.get("eval") or {}
        protocol = str(ev_cfg.get("protocol", "coco"))
        alpha = float(ev_cfg.get("pck_alpha", 0.05))
        kev = KeypointEvaluator(s.sigmas, protocol=protocol, pck_alpha=alpha, keypoint_names=s.names,
                                categories={CATEGORY_ID: "vehicle"})
        dev = DetectionEvaluator({CATEGORY_ID: "vehicle"})
        keep = kev.max_dets  # what the keypoint protocol scores (COCO: top 20 per image)
        results: list[dict[str, Any]] = []
        was_training = model.training
        model.eval()
        for idx, preds in iterate_predictions(model, self._loader(es["dataset"]), self.device, tuple(s.kpt_shape),
                                              float(self.cfg.eval.conf), float(self.cfg.eval.nms),
                                              int(self.cfg.eval.max_det)):
            targets, kp_preds, box_targets, box_preds = [], [], [], []
            for i, p in zip(idx, preds):
                order = np.argsort(-p.scores, kind="stable")
                p.boxes, p.scores, p.keypoints = p.boxes[order], p.scores[order], p.keypoints[order]
                entries = coco_results(i, p)  # rounded as written to predictions_<split>.json
                results.extend(entries[:keep])
                kp = np.array([e["keypoints"] for e in entries], dtype=np.float64).reshape(-1, s.k, 3)
                sc = np.array([e["score"] for e in entries], dtype=np.float64)
                bx = np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4)
                bx[:, 2:] += bx[:, :2]
                t = es["truths"][i]
                targets.append(self._targets(t))
                kp_preds.append({"keypoints": kp, "scores": sc})
                box_targets.append({"boxes": t.boxes, "labels": np.full(len(t.boxes), CATEGORY_ID)})
                box_preds.append({"boxes": bx, "scores": sc, "labels": np.full(len(sc), CATEGORY_ID)})
            kev.update(idx, targets, kp_preds)
            dev.update(idx, box_targets, box_preds)
        if was_training:
            model.train()
        km, bm = kev.compute(), dev.compute()
        out = {"oks_map": km["oks_map"], "oks_map50": km["oks_map50"], kev.pck_key: km[kev.pck_key],
               "box_map": bm["ap"], "box_map50": bm["ap50"], "num_images": km["num_images"], "num_gt": km["num_gt"]}
        if split != "val":  # the final test: per-keypoint breakdown and the per-image files for the bootstrap
            out["per_keypoint"] = km["per_keypoint"]
            if self.run.is_main:
                self._write_coco(split, es, results)
        return out

    def _write_coco(self, split: str, es: dict[str, Any], results: list[dict[str, Any]]) -> None:
        from vsynth.run.atomic import write_json

        s = self.schema
        area_factor = float((self.tc.get("eval") or {}).get("area_factor", 0.53))
        images, anns = [], []
        for i, t in enumerate(es["truths"]):
            images.append({"id": i, "file_name": t.file, "height": t.shape[0], "width": t.shape[1]})
            for b, kp in zip(t.boxes, t.keypoints):
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": CATEGORY_ID, "iscrowd": 0,
                             "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h * area_factor,
                             "keypoints": [float(v) for v in kp.reshape(-1)],
                             "num_keypoints": int((kp[:, 2] > 0).sum())})
        gt = {"info": {"description": f"vsynth keypoints {self.eval_domain} {split} ({es['path']})",
                       "area": f"box w*h*{area_factor}"},
              "images": images, "annotations": anns,
              "categories": [{"id": CATEGORY_ID, "name": "vehicle", "supercategory": "vehicle",
                              "keypoints": list(s.names or [str(i) for i in range(s.k)]), "skeleton": [],
                              "kpt_oks_sigmas": list(s.sigmas), "flip_idx": s.flip_idx}]}
        write_json(self.run.path(f"gt_{split}.json"), gt)
        write_json(self.run.path(f"predictions_{split}.json"), results)

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
        n = int((self.tc.get("samples") or {}).get("per_source", 8))
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

        scfg = self.tc.get("samples") or {}
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
        return draw.legend(width, self.schema.names, self._sides())


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
