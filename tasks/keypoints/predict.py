"""Inference on an evaluation split: letterbox, forward, NMS, back to original image coordinates.

Exactly ultralytics' validator path (``YOLODataset`` without augmentation = long side resized to
``imgsz`` and letterboxed; ``non_max_suppression``; ``scale_boxes``/``scale_coords`` with the
recorded ``ratio_pad``), so predictions are in the pixel coordinates of the original image, where
the ground truth lives. The results feed vsynth's evaluators and the COCO results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch


@dataclass
class ImagePrediction:
    """Predictions of one image in original pixel coordinates."""

    boxes: np.ndarray  # (N, 4) xyxy
    scores: np.ndarray  # (N,)
    keypoints: np.ndarray  # (N, K, 3): x, y, keypoint confidence


@dataclass
class ImageTruth:
    """Ground truth of one image in original pixel coordinates (from the YOLO-pose label file)."""

    file: str
    shape: tuple[int, int]  # (h, w)
    boxes: np.ndarray  # (G, 4) xyxy
    keypoints: np.ndarray  # (G, K, 3): x, y, v (v > 0 = labelled)
    extra: dict[str, Any] = field(default_factory=dict)


def truth_from_label(label: dict[str, Any], k: int) -> ImageTruth:
    """A ``YOLODataset.labels`` entry (normalised xywh + keypoints) in pixels."""
    h, w = (int(v) for v in label["shape"])
    b = np.asarray(label["bboxes"], dtype=np.float64).reshape(-1, 4)
    boxes = np.stack([(b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                      (b[:, 0] + b[:, 2] / 2) * w, (b[:, 1] + b[:, 3] / 2) * h], axis=1)
    kp = label.get("keypoints")
    if kp is None or len(kp) == 0:
        kpts = np.zeros((len(boxes), k, 3))
    else:
        kpts = np.asarray(kp, dtype=np.float64).reshape(len(boxes), k, -1).copy()
        if kpts.shape[2] == 2:
            kpts = np.concatenate([kpts, np.full(kpts.shape[:2] + (1,), 2.0)], axis=2)
        kpts[:, :, 0] *= w
        kpts[:, :, 1] *= h
        kpts[kpts[:, :, 2] <= 0, :2] = 0.0  # unlabelled points carry no position
    return ImageTruth(file=str(label["im_file"]), shape=(h, w), boxes=boxes, keypoints=kpts)


@torch.no_grad()
def predict_batch(model: torch.nn.Module, batch: dict[str, Any], device: torch.device, kpt_shape: tuple[int, int],
                  conf: float, iou: float, max_det: int) -> list[ImagePrediction]:
    """Predictions for one batch of the evaluation loader, scaled back to the original images."""
    from ultralytics.utils import nms, ops

    imgs = batch["img"].to(device).float() / 255
    out = model(imgs)
    dets = nms.non_max_suppression(out, conf, iou, nc=1, multi_label=False, agnostic=True, max_det=max_det)
    preds = []
    in_hw = imgs.shape[2:]
    for i, d in enumerate(dets):
        ori = tuple(int(v) for v in batch["ori_shape"][i])
        ratio_pad = batch["ratio_pad"][i]
        boxes = ops.scale_boxes(in_hw, d[:, :4].clone(), ori, ratio_pad=ratio_pad)
        kpts = d[:, 6:].view(-1, *kpt_shape)
        kpts = ops.scale_coords(in_hw, kpts.clone(), ori, ratio_pad=ratio_pad)
        if kpt_shape[1] == 2:
            kpts = torch.cat([kpts, torch.ones_like(kpts[..., :1])], -1)
        preds.append(ImagePrediction(boxes=boxes.cpu().double().numpy(), scores=d[:, 4].cpu().double().numpy(),
                                     keypoints=kpts.cpu().double().numpy()))
    return preds


def iterate_predictions(model, loader, device, kpt_shape, conf, iou, max_det) -> Iterator[tuple[list[int], list[ImagePrediction]]]:
    """(dataset indices, predictions) per batch of an evaluation loader over a ``YOLODataset``."""
    start = 0
    for batch in loader:
        preds = predict_batch(model, batch, device, kpt_shape, conf, iou, max_det)
        idx = list(range(start, start + len(preds)))
        start += len(preds)
        yield idx, preds


def coco_results(image_id: int, pred: ImagePrediction) -> list[dict[str, Any]]:
    """COCO keypoint results entries (``bbox`` xywh, ``keypoints`` flat x, y, score) for one image."""
    out = []
    for b, s, kp in zip(pred.boxes, pred.scores, pred.keypoints):
        out.append({
            "image_id": int(image_id), "category_id": 1, "score": round(float(s), 5),
            "bbox": [round(float(b[0]), 2), round(float(b[1]), 2), round(float(b[2] - b[0]), 2), round(float(b[3] - b[1]), 2)],
            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
        })
    return out
