"""Reference numbers for the evaluator tests: pycocotools itself, and plain-loop PCK."""

from __future__ import annotations

import contextlib
import copy
import io
import math
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def run_cocoeval(gt: dict, results: list, iou_type: str, sigmas: Any = None, max_dets: int | None = None) -> COCOeval:
    """A finished pycocotools COCOeval (evaluate, accumulate, summarize) on copies of the inputs."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=float)
        if max_dets is not None:
            evaluator.params.maxDets = [max_dets] if iou_type == "keypoints" else [1, 10, max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def coco_value(x: float) -> float:
    """pycocotools prints -1 for undefined metrics; vsynth returns NaN."""
    return float("nan") if x == -1 else float(x)


def headline(evaluator: COCOeval) -> tuple[float, float]:
    """(AP, AP50) at area 'all' and the last maxDets, read from eval['precision'] directly.

    COCOeval.summarize hard-codes maxDets=20 for keypoints, so with other maxDets its stats are -1.
    """
    precision = evaluator.eval["precision"][:, :, :, 0, -1]

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x[x > -1])) if (x > -1).any() else float("nan")

    return mean(precision), mean(precision[0])


def per_class_ap(evaluator: COCOeval) -> list[float]:
    """Per-class AP as detectron2/YOLOX compute it from eval['precision'] (area all, last maxDets)."""
    precision = evaluator.eval["precision"]
    out = []
    for k in range(precision.shape[2]):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out.append(float(np.mean(p)) if p.size else float("nan"))
    return out


def reference_pck(evaluator: COCOeval, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visible, hits, summed per-keypoint similarity) per keypoint, from COCOeval's own matches.

    Straight loops: for every non-ignored ground truth, take the detection COCOeval matched to it
    at OKS 0.5 (area 'all'), and test each labelled keypoint against alpha * max(box w, h).
    """
    sigmas = np.asarray(evaluator.params.kpt_oks_sigmas, dtype=float)
    k = sigmas.size
    visible = np.zeros(k, dtype=np.int64)
    hits = np.zeros(k, dtype=np.int64)
    similarity = np.zeros(k)
    for e in evaluator.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        for g_pos, gt_id in enumerate(e["gtIds"]):
            if e["gtIgnore"][g_pos]:
                continue
            gt = evaluator.cocoGt.anns[gt_id]
            det_id = int(e["gtMatches"][0][g_pos])
            det = evaluator.cocoDt.anns[det_id] if det_id > 0 else None
            x, y, w, h = gt["bbox"]
            radius = alpha * max(w, h)
            for j in range(k):
                gx, gy, v = gt["keypoints"][3 * j : 3 * j + 3]
                if v <= 0:
                    continue
                visible[j] += 1
                if det is None:
                    continue
                dx = det["keypoints"][3 * j] - gx
                dy = det["keypoints"][3 * j + 1] - gy
                if math.sqrt(dx * dx + dy * dy) <= radius:
                    hits[j] += 1
                similarity[j] += math.exp(-(dx * dx + dy * dy) / (2 * sigmas[j]) ** 2 / (gt["area"] + np.spacing(1)) / 2)
    return visible, hits, similarity
