"""Pixel losses for the segmentation heads: class-weighted cross entropy with hard pixel mining.

Why not mmseg's ``CrossEntropyLoss(class_weight=...)``: its mean reduction computes the average
factor as ``class_weight[label[label != ignore]]`` (a 1-D tensor) and then, with
``avg_non_ignore=True``, indexes it with the full (N, H, W) ignore mask, which raises
``IndexError: too many indices for tensor of dimension 1`` whenever a class weight is set; called
without ``ignore_index`` (default -100) it fails on label 255; and losses weighted by a pixel
sampler (OHEM) are divided by the class weights of all valid pixels (without class weights: by all
pixels, ignored ones included) instead of the kept ones. :class:`VsynthSegLoss` is registered in
mmseg's ``MODELS`` registry so heads build it from config
(``loss_decode=dict(type='VsynthSegLoss', ...)``).

For every valid pixel ``i`` (label ``y_i`` not ``ignore_index``) with class weight ``w(y_i)``
and cross entropy ``ce_i``:

* ``mining='none'``: ``sum_i w(y_i) ce_i / sum_i w(y_i)`` (PyTorch's weighted mean);
* ``mining='ohem'`` (mmseg's ``OHEMPixelSampler`` selection): keep pixels whose predicted
  probability of their true class is below ``max(thresh, p[k])``, where ``p`` are these
  probabilities sorted ascending (0-based, clipped to the last) and ``k = min_kept * batch``; without ``thresh``, keep the ``k``
  pixels of largest weighted loss. The loss is the weighted mean over the kept pixels (mmseg
  divides by all pixels instead);
* ``mining='topk'`` (DeepLab's ``top_k_percent_pixels``): keep the ``ceil(top_k * n_valid)``
  largest weighted pixel losses ``w(y_i) ce_i`` and average them. ``top_k=1.0`` is the plain
  mean of weighted pixel losses over valid pixels (Detectron2's ``DeepLabCE`` averages over all
  pixels, ignored ones included).

A sample weight map (``weight``, e.g. from an mmseg pixel sampler) multiplies the pixel weights.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

MINING = ("none", "ohem", "topk")


def pixel_ce(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted per-pixel cross entropy (N, H, W) in float32 and the valid mask."""
    valid = labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels)).long()
    ce = F.cross_entropy(logits.float(), safe, reduction="none")
    return ce * valid, valid


def class_weight_map(labels: torch.Tensor, valid: torch.Tensor, class_weight: torch.Tensor | None) -> torch.Tensor:
    """w(y_i) per pixel, 0 on ignored pixels."""
    if class_weight is None:
        return valid.float()
    safe = torch.where(valid, labels, torch.zeros_like(labels)).long()
    return class_weight.to(labels.device, torch.float32)[safe] * valid


@torch.no_grad()
def ohem_mask(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, pixel_loss: torch.Tensor,
              thresh: float | None, min_kept: int) -> torch.Tensor:
    """Hard pixels as in mmseg's ``OHEMPixelSampler.sample`` (a float 0/1 map, (N, H, W))."""
    keep = torch.zeros_like(pixel_loss)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return keep
    batch_kept = int(min_kept) * labels.shape[0]
    if thresh is not None:
        prob = F.softmax(logits.float(), dim=1)
        safe = torch.where(valid, labels, torch.zeros_like(labels)).long()
        p_true = prob.gather(1, safe.unsqueeze(1)).squeeze(1)
        sorted_p, _ = p_true[valid].sort()
        min_threshold = sorted_p[min(batch_kept, n_valid - 1)]
        threshold = max(float(min_threshold), float(thresh))
        keep[valid] = (p_true[valid] < threshold).float()
    else:
        _, order = pixel_loss[valid].sort(descending=True)
        sel = torch.zeros(n_valid, device=keep.device)
        sel[order[:batch_kept]] = 1.0
        keep[valid] = sel
    return keep


@torch.no_grad()
def topk_mask(pixel_loss: torch.Tensor, valid: torch.Tensor, top_k: float) -> torch.Tensor:
    """The ``ceil(top_k * n_valid)`` largest pixel losses among valid pixels (a 0/1 map)."""
    keep = torch.zeros_like(pixel_loss)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return keep
    k = max(1, min(n_valid, int(math.ceil(float(top_k) * n_valid - 1e-9))))
    flat = pixel_loss[valid]
    _, idx = flat.topk(k)
    sel = torch.zeros_like(flat)
    sel[idx] = 1.0
    keep[valid] = sel
    return keep


def seg_loss(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = 255,
             class_weight: torch.Tensor | None = None, mining: str = "none", ohem_thresh: float | None = 0.7,
             ohem_min_kept: int = 100000, top_k: float = 1.0, weight: torch.Tensor | None = None,
             reduction: str = "mean") -> torch.Tensor:
    """The loss described in the module docstring; ``reduction='none'`` gives weighted pixel losses."""
    if mining not in MINING:
        raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    ce, valid = pixel_ce(logits, labels, ignore_index)
    w = class_weight_map(labels, valid, class_weight)
    if weight is not None:
        w = w * weight.float()
    pixel_loss = ce * w
    if reduction == "none":
        return pixel_loss
    if mining == "ohem":
        w = w * ohem_mask(logits, labels, valid, pixel_loss.detach(), ohem_thresh, ohem_min_kept)
    elif mining == "topk":
        keep = topk_mask(pixel_loss.detach(), valid, top_k)
        kept = (pixel_loss * keep).sum()
        return kept / keep.sum().clamp(min=1.0) if reduction == "mean" else kept
    total = (ce * w).sum()
    if reduction == "sum":
        return total
    return total / w.sum().clamp(min=1e-12)  # all pixels ignored: 0 (with a graph)


def _register() -> type:
    from mmseg.registry import MODELS

    existing = MODELS.get("VsynthSegLoss")
    if existing is not None:
        return existing

    @MODELS.register_module(name="VsynthSegLoss")
    class VsynthSegLoss(nn.Module):
        """Class-weighted CE with optional OHEM / top-k pixel mining (see the module docstring)."""

        def __init__(self, class_weight: Sequence[float] | None = None, mining: str = "none",
                     ohem_thresh: float | None = 0.7, ohem_min_kept: int = 100000, top_k: float = 1.0,
                     loss_weight: float = 1.0, loss_name: str = "loss_ce") -> None:
            super().__init__()
            if mining not in MINING:
                raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
            self.class_weight = None if class_weight is None else [float(v) for v in class_weight]
            self.mining = mining
            self.ohem_thresh = None if ohem_thresh is None else float(ohem_thresh)
            self.ohem_min_kept = int(ohem_min_kept)
            self.top_k = float(top_k)
            self.loss_weight = float(loss_weight)
            self._loss_name = loss_name

        @property
        def loss_name(self) -> str:
            return self._loss_name

        def extra_repr(self) -> str:
            return f"class_weight={self.class_weight}, mining={self.mining}"

        def forward(self, cls_score, label, weight=None, avg_factor=None, reduction_override=None,
                    ignore_index=255, **kwargs):  # noqa: ARG002  (mmseg's loss signature)
            cw = None if self.class_weight is None else cls_score.new_tensor(self.class_weight, dtype=torch.float32)
            reduction = reduction_override or "mean"
            loss = seg_loss(cls_score, label, ignore_index=ignore_index, class_weight=cw, mining=self.mining,
                            ohem_thresh=self.ohem_thresh, ohem_min_kept=self.ohem_min_kept, top_k=self.top_k,
                            weight=weight, reduction=reduction)
            return self.loss_weight * loss

    return VsynthSegLoss


def register() -> None:
    """Register ``VsynthSegLoss`` in mmseg's MODELS registry (idempotent)."""
    _register()
