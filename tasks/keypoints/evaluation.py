"""Scoring one split: YOLO-pose predictions into vsynth's keypoint and box evaluators.

The evaluation loop is vsynth's (:mod:`vsynth.train.evaluation`); this is the glue it feeds:
predictions are sorted by score and rounded exactly as they are written to
``predictions_<split>.json``, so a number in ``metrics.json`` can be recomputed from the files with
``python -m vsynth.eval keypoints`` (or pycocotools). OKS needs an object scale that YOLO labels do
not carry: the ground-truth box area x ``task.evaluator.area_factor`` (ultralytics' 0.53).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vsynth.task import SplitEvaluator

from tasks.keypoints.predict import ImagePrediction, ImageTruth, coco_results

CATEGORY_ID = 1


class KeypointSplitEvaluator(SplitEvaluator):
    """OKS-mAP, OKS-mAP@50, PCK and box mAP of one split; the COCO files for re-scoring elsewhere."""

    def __init__(self, task, split: str) -> None:
        from vsynth.eval.detection import DetectionEvaluator
        from vsynth.eval.keypoints import KeypointEvaluator

        self.task, self.split = task, split
        self.eval_set = task._eval_set(split)
        s = self.schema = task.schema
        ev = task.task_cfg.get("evaluator") or {}
        self.area_factor = float(ev.get("area_factor", 0.53))
        self.category = s.class_name  # from the data (the demo's schema on the demo)
        self.kev = KeypointEvaluator(s.sigmas, protocol=str(ev.get("protocol", "coco")),
                                     pck_alpha=float(ev.get("pck_alpha", 0.05)), keypoint_names=s.names,
                                     categories={CATEGORY_ID: self.category})
        self.dev = DetectionEvaluator({CATEGORY_ID: self.category})
        self.keep = self.kev.max_dets  # what the keypoint protocol scores (COCO: top 20 per image)
        self.results: list[dict[str, Any]] = []
        self.seen: list[int] = []

    def _targets(self, t: ImageTruth) -> dict[str, np.ndarray]:
        b = t.boxes
        return {"keypoints": t.keypoints, "boxes": b, "areas": (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) * self.area_factor}

    def process(self, indices: Sequence[int], batch: Any, outputs: list[ImagePrediction]) -> None:
        k = self.schema.k
        targets, kp_preds, box_targets, box_preds = [], [], [], []
        for i, p in zip(indices, outputs):
            order = np.argsort(-p.scores, kind="stable")
            p.boxes, p.scores, p.keypoints = p.boxes[order], p.scores[order], p.keypoints[order]
            entries = coco_results(i, p)  # rounded as written to predictions_<split>.json
            self.results.extend(entries[: self.keep])
            kp = np.array([e["keypoints"] for e in entries], dtype=np.float64).reshape(-1, k, 3)
            sc = np.array([e["score"] for e in entries], dtype=np.float64)
            bx = np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4)
            bx[:, 2:] += bx[:, :2]
            t = self.eval_set["truths"][i]
            targets.append(self._targets(t))
            kp_preds.append({"keypoints": kp, "scores": sc})
            box_targets.append({"boxes": t.boxes, "labels": np.full(len(t.boxes), CATEGORY_ID)})
            box_preds.append({"boxes": bx, "scores": sc, "labels": np.full(len(sc), CATEGORY_ID)})
        self.kev.update(list(indices), targets, kp_preds)
        self.dev.update(list(indices), box_targets, box_preds)
        self.seen.extend(int(i) for i in indices)

    def compute(self) -> dict[str, Any]:
        km, bm = self.kev.compute(), self.dev.compute()
        out = {"oks_map": km["oks_map"], "oks_map50": km["oks_map50"], self.kev.pck_key: km[self.kev.pck_key],
               "box_map": bm["ap"], "box_map50": bm["ap50"], "num_images": km["num_images"], "num_gt": km["num_gt"]}
        if self.split != "val":  # the final test: the per-keypoint breakdown
            out["per_keypoint"] = km["per_keypoint"]
        return out

    def write(self, folder: Path, split: str) -> list[Path]:
        """``gt_<split>.json`` (COCO keypoints ground truth with the sigmas) and ``predictions_<split>.json``."""
        from vsynth.run.atomic import write_json

        s, es = self.schema, self.eval_set
        images, anns = [], []
        for i in sorted(self.seen):
            t = es["truths"][i]
            images.append({"id": i, "file_name": t.file, "height": t.shape[0], "width": t.shape[1]})
            for b, kp in zip(t.boxes, t.keypoints):
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": CATEGORY_ID, "iscrowd": 0,
                             "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h * self.area_factor,
                             "keypoints": [float(v) for v in kp.reshape(-1)],
                             "num_keypoints": int((kp[:, 2] > 0).sum())})
        gt = {"info": {"description": f"vsynth keypoints {self.task.eval_domain} {split} ({es['path']})",
                       "area": f"box w*h*{self.area_factor}"},
              "images": images, "annotations": anns,
              "categories": [{"id": CATEGORY_ID, "name": self.category, "supercategory": self.category,
                              "keypoints": list(s.names or [str(i) for i in range(s.k)]), "skeleton": [],
                              "kpt_oks_sigmas": list(s.sigmas), "flip_idx": s.flip_idx}]}
        paths = [Path(folder) / f"gt_{split}.json", Path(folder) / f"predictions_{split}.json"]
        write_json(paths[0], gt)
        write_json(paths[1], self.results)
        return paths
