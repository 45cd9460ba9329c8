"""Keypoint evaluation: OKS-mAP, OKS-mAP@50, PCK@alpha, and a per-keypoint breakdown.

``protocol="coco"`` (default) gives exactly ``pycocotools`` ``COCOeval(iouType="keypoints")``
stats[0] and stats[1] for the same sigmas, areas and maxDets (20). ``protocol="ultralytics"``
gives what an ultralytics pose validator prints (OKS with area = box w*h*0.53, its matching and
its 101-point trapezoid AP), so a vsynth number can be put next to an ultralytics log.

Sigmas are always explicit: the COCO-17 person sigmas are meaningless for, e.g., 14 vehicle
keypoints, and silently using them is how evaluations go wrong without anyone noticing.

PCK@alpha: a visible ground-truth keypoint (v > 0) of a counted (non-ignored) ground truth is
correct if the prediction matched to that ground truth at OKS 0.5 (the protocol's own greedy
matching) lies within ``alpha * max(box width, box height)`` (distance <= the radius); unmatched
ground truths count as misses. The per-keypoint OKS is the mean per-keypoint similarity
``exp(-d^2 / (2 s^2 k^2))`` over the same visible keypoints (0 for an unmatched ground truth).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.eval import coco_io
from vsynth.eval.arrays import boxes_to_xywh, check_box_format, check_sigmas, float_array, int_array, require, to_numpy
from vsynth.eval.coco_style import (
    InstanceBlock,
    InstanceEvaluator,
    InstanceState,
    gt_ignore_flags,
    per_image_source,
    sum_per_image,
    unique_names,
    weighted_total,
)
from vsynth.eval.matching import mean_valid, ultralytics_ap

# ultralytics' kpt_iou adds this to the area and to the visible-keypoint count.
_ULTRALYTICS_EPS = 1e-7
# ultralytics' pose validator scales the box area by this (from xtcocotools) to get the OKS scale.
ULTRALYTICS_AREA_FACTOR = 0.53
# max detections per image: COCOeval keypoints' maxDets=[20]; ultralytics' validator max_det=300.
DEFAULT_MAX_DETS = {"coco": 20, "ultralytics": 300}


def coco_oks(
    det_xy: np.ndarray, gt_kpts: np.ndarray, gt_boxes: np.ndarray, gt_areas: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """COCOeval.computeOks for (P, D, K, 2) detections vs (P, G, K, 3) ground truths -> (P, D, G).

    A ground truth without labelled keypoints is scored by the distance of the detection to a
    box twice its size (COCO's rule; such ground truths are ignored but can absorb detections).
    """
    variances = (sigmas * 2) ** 2
    xd = det_xy[:, :, None, :, 0]
    yd = det_xy[:, :, None, :, 1]
    visible = gt_kpts[:, None, :, :, 2] > 0
    n_visible = visible.sum(axis=-1)
    dx = xd - gt_kpts[:, None, :, :, 0]
    dy = yd - gt_kpts[:, None, :, :, 1]
    unlabelled = n_visible == 0
    if unlabelled.any():
        labelled = ~unlabelled[..., None]
        bx, by, bw, bh = (gt_boxes[:, None, :, None, i] for i in range(4))
        x0, x1 = bx - bw, bx + bw * 2
        y0, y1 = by - bh, by + bh * 2
        dx = np.where(labelled, dx, np.maximum(0, x0 - xd) + np.maximum(0, xd - x1))
        dy = np.where(labelled, dy, np.maximum(0, y0 - yd) + np.maximum(0, yd - y1))
        visible = visible | ~labelled
    # e = (dx**2 + dy**2) / variances / (area + eps) / 2, then exp(-e): same operations in place
    e = np.square(dx, out=dx if dx.base is None else None)
    e += np.square(dy)
    e /= variances
    e /= gt_areas[:, None, :, None] + np.spacing(1)
    e /= 2
    np.negative(e, out=e)
    np.exp(e, out=e)
    e *= visible  # exp(-e) is finite, so masking by multiplication is exact
    total = e.sum(axis=-1)
    return total / np.where(n_visible > 0, n_visible, sigmas.size)


def ultralytics_oks(det_xy: np.ndarray, gt_kpts: np.ndarray, gt_scale: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """ultralytics.utils.metrics.kpt_iou for (P, D, K, 2) vs (P, G, K, 3) -> (P, D, G).

    ``gt_scale`` is ultralytics' area (box w*h*0.53), (P, G).
    """
    d = (gt_kpts[:, None, :, :, 0] - det_xy[:, :, None, :, 0]) ** 2 + (
        gt_kpts[:, None, :, :, 1] - det_xy[:, :, None, :, 1]
    ) ** 2
    e = d / ((2 * sigmas) ** 2 * (gt_scale[:, None, :, None] + _ULTRALYTICS_EPS) * 2)
    mask = gt_kpts[:, None, :, :, 2] != 0
    # torch adds the eps to the integer count in its default float32, where it vanishes for counts >= 2
    count = mask.sum(axis=-1).astype(np.float32) + np.float32(_ULTRALYTICS_EPS)
    return (np.exp(-e) * mask).sum(axis=-1) / count


class KeypointEvaluator(InstanceEvaluator):
    """Streaming OKS-mAP / PCK evaluator (DDP-aware).

    ``update(image_ids, targets, preds)`` takes, per image, one target and one prediction mapping
    (numpy arrays, torch tensors or lists; K = ``len(sigmas)``):

    * target: ``keypoints`` (G, K, 3) x, y, v (v > 0 = labelled); ``boxes`` (G, 4) in
      ``box_format``; ``areas`` (G,) the OKS scale (required for ``protocol="coco"``, COCO uses the
      annotation's ``area``); optional ``iscrowd`` (G,) 0/1, ``labels`` (G,) category ids (default:
      the only category), ``num_keypoints`` (G,) (default: count of v > 0; COCO ignores a ground
      truth whose ``num_keypoints`` is 0).
    * prediction: ``keypoints`` (N, K, 2) or (N, K, 3) (a third column, e.g. confidence, is
      unused), ``scores`` (N,), optional ``labels`` (N,).
    """

    def __init__(
        self,
        sigmas: Sequence[float] | np.ndarray,
        *,
        protocol: str = "coco",
        pck_alpha: float = 0.05,
        max_dets: int | None = None,
        keypoint_names: Sequence[str] | None = None,
        categories: Mapping[int, str] | None = None,
        box_format: str = "xyxy",
    ) -> None:
        self.sigmas = check_sigmas(sigmas)
        self.num_keypoints = self.sigmas.size
        if isinstance(pck_alpha, bool) or not isinstance(pck_alpha, numbers.Real) or not 0 < pck_alpha < math.inf:
            raise ConfigError(f"pck_alpha: expected a positive number, got {pck_alpha!r}")
        self.pck_alpha = float(pck_alpha)
        if keypoint_names is not None and len(keypoint_names) != self.num_keypoints:
            raise ConfigError(
                f"keypoint_names: {len(keypoint_names)} names for {self.num_keypoints} keypoints (one sigma each)"
            )
        self.keypoint_names = [str(n) for n in keypoint_names] if keypoint_names is not None else None
        self.box_format = check_box_format(box_format)
        if protocol not in DEFAULT_MAX_DETS:
            raise ConfigError(f"protocol: expected one of {tuple(DEFAULT_MAX_DETS)}, got {protocol!r}")
        super().__init__(
            categories or {1: "object"}, protocol, DEFAULT_MAX_DETS[protocol] if max_dets is None else max_dets
        )

    @property
    def pck_key(self) -> str:
        """Output key of the PCK value, e.g. ``pck@0.05``."""
        return f"pck@{self.pck_alpha:g}"

    # ---- input -------------------------------------------------------------------------------

    def _image_parts(self, local: int, image_id: Hashable, target: Mapping[str, Any], pred: Mapping[str, Any],
                     src: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Validated ground-truth and detection arrays of one image (``local``: its index in the batch)."""
        k = self.num_keypoints
        kpts = float_array(require(target, "keypoints", src, "target"), src, "target 'keypoints'", (None, k, 3))
        n_gt = kpts.shape[0]
        boxes = float_array(require(target, "boxes", src, "target"), src, "target 'boxes'", (n_gt, 4))
        boxes = boxes_to_xywh(boxes, self.box_format)
        if "areas" in target:
            areas = float_array(target["areas"], src, "target 'areas'", (n_gt,))
        elif self.protocol == "coco":
            raise DataError(
                f"{src}: target 'areas' is required with protocol='coco' (the OKS scale; COCO uses the "
                "annotation area, pass box w*h explicitly if that is what your annotations use)"
            )
        else:
            areas = boxes[:, 2] * boxes[:, 3]
        crowd = int_array(target.get("iscrowd", np.zeros(n_gt)), src, "target 'iscrowd'", n_gt) != 0
        labels = self._labels(target, src, "target", n_gt)
        if "num_keypoints" in target:
            num_kp = int_array(target["num_keypoints"], src, "target 'num_keypoints'", n_gt)
        else:
            num_kp = (kpts[:, :, 2] > 0).sum(axis=1)
        pk = to_numpy(require(pred, "keypoints", src, "pred"))
        if pk.ndim == 3 and pk.shape[1:] == (k, 3):
            pk = pk[:, :, :2]
        elif pk.size and not (pk.ndim == 3 and pk.shape[1:] == (k, 2)):
            raise DataError(
                f"{src}: pred 'keypoints' has shape {tuple(pk.shape)}, expected (N, {k}, 2) or (N, {k}, 3) "
                f"(one point per sigma)"
            )
        pk = float_array(pk, src, "pred 'keypoints'", (None, k, 2))
        n_det = pk.shape[0]
        scores = float_array(require(pred, "scores", src, "pred"), src, "pred 'scores'", (n_det,))
        pred_labels = self._labels(pred, src, "pred", n_det)
        return (
            {
                "image": np.full(n_gt, local, dtype=np.int64),
                "cat": labels,
                "boxes": boxes,
                "areas": areas,
                "crowd": crowd,
                "num_keypoints": num_kp,
                "keypoints": kpts,
            },
            {"image": np.full(n_det, local, dtype=np.int64), "cat": pred_labels, "score": scores, "keypoints": pk},
        )

    def _labels(self, mapping: Mapping[str, Any], src: str, side: str, n: int) -> np.ndarray:
        if "labels" not in mapping:
            if self._cat_ids.size != 1:
                raise DataError(f"{src}: {side} 'labels' is required when there are several categories")
            return np.zeros(n, dtype=np.int64)
        labels = int_array(mapping["labels"], src, f"{side} 'labels'", n)
        return self._category_index(labels, src, f"{side} 'labels'")

    def _add_raw(self, image_ids: np.ndarray, gt: dict[str, np.ndarray], det: dict[str, np.ndarray]) -> None:
        """Add already-validated flat arrays (``cat`` as category index), as ``from_coco_files`` does."""
        gt = dict(gt)
        gt["ignore"] = gt_ignore_flags(gt["crowd"], gt["areas"], gt.pop("num_keypoints") == 0)
        det = dict(det)
        kx, ky = det["keypoints"][:, :, 0], det["keypoints"][:, :, 1]
        if kx.size:  # loadRes' area for keypoint results: extent of the predicted points
            det["area"] = (kx.max(axis=1) - kx.min(axis=1)) * (ky.max(axis=1) - ky.min(axis=1))
        else:
            det["area"] = np.zeros(kx.shape[0])
        self._add_block(InstanceBlock(image_ids=image_ids, gt=gt, det=det))

    @classmethod
    def from_coco_files(
        cls,
        gt_json: str | Path | Mapping[str, Any],
        pred_json: str | Path | Sequence[Mapping[str, Any]],
        *,
        sigmas: Sequence[float] | None = None,
        protocol: str = "coco",
        pck_alpha: float = 0.05,
        max_dets: int | None = None,
        area_from_box: float | None = None,
    ) -> KeypointEvaluator:
        """An evaluator filled from a COCO keypoints GT file and a COCO results file.

        Sigmas default to the GT category's ``kpt_oks_sigmas``/``sigmas``; with neither, the
        COCO protocol is an error (never the COCO-17 defaults) and ultralytics' own default 1/K
        is used for the ultralytics protocol (except K = 17, where ultralytics would use COCO's).
        The COCO protocol needs every ground truth's ``area`` (the OKS scale); ``area_from_box``
        (e.g. 0.53) gives annotations without one the scale box w*h*area_from_box instead.
        """
        gt = coco_io.load_keypoint_gt(gt_json, area_from_box)
        resolved = coco_io.resolve_sigmas(gt, sigmas, protocol)
        evaluator = cls(
            resolved,
            protocol=protocol,
            pck_alpha=pck_alpha,
            max_dets=max_dets,
            keypoint_names=gt.keypoint_names,
            categories=gt.categories,
            box_format="xywh",
        )
        det = coco_io.load_keypoint_results(pred_json, gt)
        evaluator._register_image_ids(gt.image_ids.tolist(), str(gt.path))
        if protocol == "coco" and gt.missing_area is not None:
            raise DataError(
                f"{gt.path}: {gt.missing_area}: 'area' is required for OKS (the COCO keypoints scale); for ground "
                "truth without areas pass --area-from-box F (area_from_box=F) to use box w*h*F, e.g. 0.53"
            )
        evaluator._add_raw(gt.image_ids, gt.arrays, det)
        return evaluator

    # ---- evaluation hooks --------------------------------------------------------------------

    def _similarity(self, block: InstanceBlock, det_idx: np.ndarray, gt_idx: np.ndarray) -> np.ndarray:
        det_xy = block.det["keypoints"][det_idx]
        gt_kpts = block.gt["keypoints"][gt_idx]
        if self.protocol == "coco":
            return coco_oks(det_xy, gt_kpts, block.gt["boxes"][gt_idx], block.gt["areas"][gt_idx], self.sigmas)
        return ultralytics_oks(det_xy, gt_kpts, self._ultralytics_scale(block.gt["boxes"][gt_idx]), self.sigmas)

    @staticmethod
    def _ultralytics_scale(boxes: np.ndarray) -> np.ndarray:
        return boxes[..., 2] * boxes[..., 3] * ULTRALYTICS_AREA_FACTOR

    def _point_similarity(self, block: InstanceBlock, gt_idx: np.ndarray, d2: np.ndarray) -> np.ndarray:
        """(M, K) per-keypoint similarity for squared distances ``d2`` (M, K), in the protocol's form."""
        if self.protocol == "coco":
            variances = (self.sigmas * 2) ** 2
            return np.exp(-(d2 / variances / (block.gt["areas"][gt_idx][:, None] + np.spacing(1)) / 2))
        scale = self._ultralytics_scale(block.gt["boxes"][gt_idx])[:, None]
        return np.exp(-(d2 / ((2 * self.sigmas) ** 2 * (scale + _ULTRALYTICS_EPS) * 2)))

    def _extras(self, block: InstanceBlock, gt_idx: np.ndarray, gt_det: np.ndarray) -> dict[str, np.ndarray]:
        """Per image and keypoint: visible count, PCK hits, summed per-keypoint similarity; and, over
        the visible points of matched ground truths, their count and summed signed offset (dx, dy) of
        the prediction in units of object scale, sqrt(area) (at least 1 px), for the keypoint audit."""
        n_img = block.image_ids.size
        gt_kpts = block.gt["keypoints"][gt_idx]
        visible = gt_kpts[:, :, 2] > 0
        matched = gt_det >= 0
        det_xy = block.det["keypoints"][np.maximum(gt_det, 0)] if matched.any() else np.zeros(gt_kpts[..., :2].shape)
        dx = det_xy[:, :, 0] - gt_kpts[:, :, 0]
        dy = det_xy[:, :, 1] - gt_kpts[:, :, 1]
        d2 = dx**2 + dy**2
        boxes = block.gt["boxes"][gt_idx]
        radius = self.pck_alpha * np.maximum(boxes[:, 2], boxes[:, 3])
        counted = visible & matched[:, None]
        hit = counted & (np.sqrt(d2) <= radius[:, None])
        similarity = np.where(counted, self._point_similarity(block, gt_idx, d2), 0.0)
        image = block.gt["image"][gt_idx]
        scale = np.sqrt(np.maximum(block.gt["areas"][gt_idx], 1.0))[:, None]
        offset = np.where(counted[..., None], np.stack([dx, dy], axis=-1) / scale[..., None], 0.0)
        return {
            "kp_visible": sum_per_image(image, visible.astype(np.int64), n_img),
            "kp_hit": sum_per_image(image, hit.astype(np.int64), n_img),
            "kp_similarity": sum_per_image(image, similarity, n_img),
            "kp_matched": sum_per_image(image, counted.astype(np.int64), n_img),
            "kp_offset": sum_per_image(image, offset, n_img),
        }

    def _summarize(self, state: InstanceState, image_weights: np.ndarray | None) -> dict[str, Any]:
        if state.protocol == "coco":
            precision, _ = state.coco_precision_recall(image_weights)
            oks_map, oks_map50 = mean_valid(precision), mean_valid(precision[0])
        else:
            ap, _ = ultralytics_ap(*state.ultralytics_inputs(image_weights))
            oks_map = float(ap.mean()) if ap.size else float("nan")
            oks_map50 = float(ap[:, 0].mean()) if ap.size else float("nan")
        k = self.num_keypoints
        extras = state.matched.extras
        visible = extras.get("kp_visible", np.zeros((0, k), dtype=np.int64))
        hit = extras.get("kp_hit", np.zeros((0, k), dtype=np.int64))
        similarity = extras.get("kp_similarity", np.zeros((0, k)))
        visible, hit, similarity = (weighted_total(x, image_weights) for x in (visible, hit, similarity))
        names = unique_names(self.keypoint_names, range(k)) if self.keypoint_names else [str(i) for i in range(k)]
        per_keypoint = {
            name: {"oks": _ratio(similarity[i], visible[i]), "pck": _ratio(hit[i], visible[i])}
            for i, name in enumerate(names)
        }
        gt_total = weighted_total(state.matched.gt_count, image_weights).sum()
        return {
            "oks_map": oks_map,
            "oks_map50": oks_map50,
            self.pck_key: _ratio(hit.sum(), visible.sum()),
            "per_keypoint": per_keypoint,
            "num_images": int(state.image_ids.size if image_weights is None else image_weights.sum()),
            "num_gt": int(gt_total),
        }




def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")
