"""The segmentation losses on tiny tensors, against straightforward per-pixel references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tasks.segmentation.losses import ohem_mask, register, seg_loss, topk_mask

IGN = 255


def _case(seed=0, n=2, c=3, h=4, w=5, ignore_frac=0.25):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 2
    labels = torch.randint(0, c, (n, h, w), generator=g)
    mask = torch.rand(n, h, w, generator=g) < ignore_frac
    labels[mask] = IGN
    return logits, labels


def _ref_pixels(logits, labels, cw):
    """[(weighted loss, class weight, p(true class))] for every valid pixel, one by one."""
    out = []
    n, c, h, w = logits.shape
    for b in range(n):
        for y in range(h):
            for x in range(w):
                t = int(labels[b, y, x])
                if t == IGN:
                    continue
                z = logits[b, :, y, x].double()
                lse = math.log(sum(math.exp(float(v)) for v in z))
                ce = lse - float(z[t])
                wt = 1.0 if cw is None else cw[t]
                out.append((wt * ce, wt, math.exp(float(z[t]) - lse)))
    return out


@pytest.mark.parametrize("cw", [None, [1.0, 10.0, 0.5]])
def test_weighted_ce_ignores_255(cw):
    logits, labels = _case()
    px = _ref_pixels(logits, labels, cw)
    ref = sum(l for l, _, _ in px) / sum(wt for _, wt, _ in px)
    cwt = None if cw is None else torch.tensor(cw)
    got = seg_loss(logits, labels, ignore_index=IGN, class_weight=cwt)
    assert got.item() == pytest.approx(ref, rel=1e-5)
    # identical to PyTorch's weighted mean
    torch_ref = torch.nn.functional.cross_entropy(logits, labels, weight=cwt, ignore_index=IGN)
    assert got.item() == pytest.approx(torch_ref.item(), rel=1e-5)


def test_two_class_background_1_foreground_10():
    logits, labels = _case(seed=3, c=2)
    cw = [1.0, 10.0]
    px = _ref_pixels(logits, labels, cw)
    ref = sum(l for l, _, _ in px) / sum(wt for _, wt, _ in px)
    got = seg_loss(logits, labels, class_weight=torch.tensor(cw))
    assert (labels == IGN).any() and got.item() == pytest.approx(ref, rel=1e-5)


def test_all_ignored_gives_zero_with_gradient():
    logits, labels = _case()
    labels[:] = IGN
    logits.requires_grad_(True)
    for mining in ("none", "ohem", "topk"):
        loss = seg_loss(logits, labels, class_weight=torch.tensor([1.0, 2.0, 3.0]), mining=mining, ohem_min_kept=2)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("thresh,min_kept", [(0.7, 2), (0.3, 2), (0.99, 3), (0.05, 10)])
def test_ohem_threshold_against_reference_and_mmseg(thresh, min_kept):
    logits, labels = _case(seed=1)
    cw = [1.0, 10.0, 0.5]
    px = _ref_pixels(logits, labels, cw)
    probs = sorted(p for _, _, p in px)
    k = min_kept * logits.shape[0]
    threshold = max(probs[min(k, len(probs) - 1)], thresh)
    kept = [(l, wt) for l, wt, p in px if p < threshold]
    ref = sum(l for l, _ in kept) / sum(wt for _, wt in kept)
    got = seg_loss(logits, labels, class_weight=torch.tensor(cw), mining="ohem", ohem_thresh=thresh, ohem_min_kept=min_kept)
    assert got.item() == pytest.approx(ref, rel=1e-5)

    # the kept pixels are exactly mmseg's OHEMPixelSampler's
    from mmseg.structures.sampler import OHEMPixelSampler

    class Ctx:
        ignore_index = IGN

    want = OHEMPixelSampler(Ctx(), thresh=thresh, min_kept=min_kept).sample(logits, labels.unsqueeze(1))
    valid = labels != IGN
    pixel = seg_loss(logits, labels, reduction="none")
    mine = ohem_mask(logits, labels, valid, pixel, thresh, min_kept)
    assert torch.equal(mine, want)


def test_ohem_without_threshold_keeps_top_losses():
    logits, labels = _case(seed=2)
    cw = [2.0, 1.0, 1.0]
    px = _ref_pixels(logits, labels, cw)
    k = 3 * logits.shape[0]
    top = sorted(px, key=lambda t: -t[0])[:k]
    ref = sum(l for l, _, _ in top) / sum(wt for _, wt, _ in top)
    got = seg_loss(logits, labels, class_weight=torch.tensor(cw), mining="ohem", ohem_thresh=None, ohem_min_kept=3)
    assert got.item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("top_k", [1.0, 0.5, 0.2, 0.01])
def test_topk_percent_against_reference(top_k):
    logits, labels = _case(seed=4)
    cw = [1.0, 10.0, 1.0]
    px = _ref_pixels(logits, labels, cw)
    k = max(1, math.ceil(top_k * len(px) - 1e-9))
    top = sorted((l for l, _, _ in px), reverse=True)[:k]
    ref = sum(top) / k
    got = seg_loss(logits, labels, class_weight=torch.tensor(cw), mining="topk", top_k=top_k)
    assert got.item() == pytest.approx(ref, rel=1e-5)
    if top_k == 1.0:  # plain mean of the weighted pixel losses over valid pixels
        assert got.item() == pytest.approx(sum(l for l, _, _ in px) / len(px), rel=1e-5)


def test_mining_gradient_only_through_kept_pixels():
    logits, labels = _case(seed=5)
    logits.requires_grad_(True)
    loss = seg_loss(logits, labels, mining="topk", top_k=0.25)
    loss.backward()
    valid = labels != IGN
    pixel = seg_loss(logits.detach(), labels, reduction="none")
    keep = topk_mask(pixel, valid, 0.25).bool()
    touched = logits.grad.abs().sum(1) > 0
    assert torch.equal(touched, keep)


def test_registered_loss_in_an_mmseg_head():
    """The loss mmseg's decode head builds from config, with class weights and label 255 (the trap)."""
    from mmseg.models.decode_heads import FCNHead
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData

    register()
    cw = [1.0, 10.0]
    head = FCNHead(in_channels=4, channels=4, num_convs=1, num_classes=2, in_index=0,
                   loss_decode=dict(type="VsynthSegLoss", class_weight=cw, mining="ohem", ohem_thresh=0.7, ohem_min_kept=4))
    feats = [torch.randn(2, 4, 8, 8)]
    labels = torch.randint(0, 2, (2, 16, 16))
    labels[:, :3] = IGN
    samples = []
    for lab in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=lab.unsqueeze(0))
        samples.append(s)
    losses = head.loss(feats, samples, train_cfg={})
    assert np.isfinite(losses["loss_ce"].item()) and losses["loss_ce"].item() > 0
    losses["loss_ce"].backward()
