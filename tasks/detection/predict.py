"""Inference: YOLOX's decoded outputs -> NMS (YOLOX's ``postprocess``) -> boxes in image pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Detections:
    """One image's detections: ``boxes`` (N, 4) xyxy in original-image pixels, ``scores`` (N,)
    (objectness x class confidence, YOLOX's score), ``classes`` (N,) class indices; best first."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@torch.no_grad()
def predict(model: torch.nn.Module, imgs: torch.Tensor, ratios: list[float], num_classes: int, conf: float,
            nms: float, max_det: int) -> list[Detections]:
    """Detections for a batch of letterboxed images (``ratios``: letterbox scale per image)."""
    from yolox.utils import postprocess

    out = model(imgs)
    dets = postprocess(out.float(), num_classes, conf, nms)
    result = []
    for d, r in zip(dets, ratios):
        if d is None or d.shape[0] == 0:
            result.append(Detections.empty())
            continue
        d = d.cpu().double().numpy()
        d = d[np.isfinite(d).all(axis=1)]  # an untrained head can overflow exp() into inf boxes
        scores = d[:, 4] * d[:, 5]
        order = np.argsort(-scores, kind="stable")[: int(max_det)]
        result.append(Detections(d[order, :4] / r, scores[order], d[order, 6].astype(np.int64)))
    return result
