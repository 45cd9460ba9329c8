"""Speed of vsynth.eval against pycocotools and faster-coco-eval, with identical numbers checked.

    .venv/bin/python benchmarks/eval_speed.py [--images 12761] [--seed 0] [--skip-pycocotools]

Builds a synthetic test set the size of the users' keypoint test set (12,761 images; 14 keypoints,
1-3 objects per image, up to 20 detections per image) and a box test set of the same size with 7
classes, then times each evaluator from the same in-memory COCO dicts (ground truth + results
list) to the final numbers: index building, result loading, matching, accumulation. pycocotools
is timed twice: as users run it (all area ranges; maxDets 1/10/100 for boxes) and restricted to
what vsynth computes (area 'all', the last maxDets), so the ratio is not flattered by skipped work.
Both wall-clock and CPU seconds are reported; ratios use CPU seconds, which stay meaningful when
other work shares the machine (all three evaluators run single-threaded here).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsynth.run.envinfo import cpu_model  # noqa: E402

N_KEYPOINTS = 14
N_CLASSES = 7
SIGMAS = np.linspace(0.025, 0.107, N_KEYPOINTS)  # arbitrary explicit sigmas, one per keypoint


def make_dataset(n_images: int, seed: int, keypoints: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth with 1-3 objects per image and up to 20 scored detections per image."""
    rng = np.random.default_rng(seed)
    n_cats = 1 if keypoints else N_CLASSES
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    if keypoints:
        cats[0]["keypoints"] = [f"kp{i}" for i in range(N_KEYPOINTS)]
        cats[0]["kpt_oks_sigmas"] = SIGMAS.tolist()
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_images)]
    n_obj = rng.integers(1, 4, size=n_images)
    obj_image = np.repeat(np.arange(n_images), n_obj)
    m = obj_image.size
    wh = rng.uniform(16, 220, size=(m, 2))
    xy = rng.uniform(0, 400, size=(m, 2))
    obj_cat = rng.integers(1, n_cats + 1, size=m)
    crowd = rng.random(m) < 0.02
    area = wh[:, 0] * wh[:, 1] * rng.uniform(0.5, 0.9, size=m)
    kx = xy[:, :1] + rng.uniform(0, 1, (m, N_KEYPOINTS)) * wh[:, :1]
    ky = xy[:, 1:] + rng.uniform(0, 1, (m, N_KEYPOINTS)) * wh[:, 1:]
    vis = rng.choice([0, 1, 2], size=(m, N_KEYPOINTS), p=[0.2, 0.3, 0.5])
    anns = []
    for j in range(m):
        ann = {
            "id": j + 1,
            "image_id": int(obj_image[j] + 1),
            "category_id": int(obj_cat[j]),
            "bbox": [float(xy[j, 0]), float(xy[j, 1]), float(wh[j, 0]), float(wh[j, 1])],
            "area": float(area[j]),
            "iscrowd": int(crowd[j]),
        }
        if keypoints:
            v = vis[j]
            ann["keypoints"] = np.stack([kx[j] * (v > 0), ky[j] * (v > 0), v], 1).reshape(-1).tolist()
            ann["num_keypoints"] = int((v > 0).sum())
        anns.append(ann)
    # detections: noisy copies of ground truth (true and near misses) plus background false positives
    n_det = rng.integers(1, 21, size=n_images)
    det_image = np.repeat(np.arange(n_images), n_det)
    n = det_image.size
    first_obj = np.concatenate(([0], np.cumsum(n_obj)[:-1]))
    src = first_obj[det_image] + (rng.random(n) * n_obj[det_image]).astype(int)
    is_copy = rng.random(n) < 0.55
    noise = rng.uniform(0, 0.25, size=n)[:, None]
    box_xy = np.where(is_copy[:, None], xy[src] + rng.normal(0, 1, (n, 2)) * noise * wh[src] / 3, rng.uniform(0, 400, (n, 2)))
    box_wh = np.where(is_copy[:, None], wh[src] * np.abs(1 + rng.normal(0, 1, (n, 2)) * noise / 3), rng.uniform(16, 220, (n, 2)))
    det_cat = np.where(is_copy & (rng.random(n) < 0.9), obj_cat[src], rng.integers(1, n_cats + 1, size=n))
    scores = np.round(np.where(is_copy, rng.uniform(0.3, 1.0, n), rng.uniform(0.0, 0.7, n)), 4)
    scale = np.sqrt(area[src])[:, None] * rng.uniform(0, 0.15, size=(n, 1))
    px = np.where(is_copy[:, None], kx[src] + rng.normal(0, 1, (n, N_KEYPOINTS)) * scale, box_xy[:, :1] + rng.random((n, N_KEYPOINTS)) * box_wh[:, :1])
    py = np.where(is_copy[:, None], ky[src] + rng.normal(0, 1, (n, N_KEYPOINTS)) * scale, box_xy[:, 1:] + rng.random((n, N_KEYPOINTS)) * box_wh[:, 1:])
    results = []
    for i in range(n):
        res = {"image_id": int(det_image[i] + 1), "category_id": int(det_cat[i]), "score": float(scores[i])}
        if keypoints:
            res["keypoints"] = np.stack([px[i], py[i], np.ones(N_KEYPOINTS)], 1).reshape(-1).tolist()
        else:
            res["bbox"] = [float(box_xy[i, 0]), float(box_xy[i, 1]), float(box_wh[i, 0]), float(box_wh[i, 1])]
        results.append(res)
    return {"images": images, "annotations": anns, "categories": cats}, results


class Timer:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_cocoeval(module: str, gt: dict, results: list, iou_type: str, restricted: bool) -> tuple[Timer, np.ndarray]:
    """(timer, stats) for pycocotools or faster-coco-eval from in-memory dicts."""
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)  # both libraries mutate their inputs
    with contextlib.redirect_stdout(io.StringIO()), Timer() as timer:
        if module == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            coco_gt = COCO()
            coco_gt.dataset = gt
            coco_gt.createIndex()
            evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        else:
            from faster_coco_eval import COCO, COCOeval_faster

            coco_gt = COCO(gt)
            evaluator = COCOeval_faster(coco_gt, coco_gt.loadRes(results), iou_type, print_function=lambda *a: None)
        if iou_type == "keypoints":
            evaluator.params.kpt_oks_sigmas = SIGMAS.copy()
        if restricted:
            evaluator.params.areaRng = [[0**2, 1e5**2]]
            evaluator.params.areaRngLbl = ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
        if restricted:  # summarize() assumes the default area ranges: read the two/four numbers directly
            stats = _stats_all_area(evaluator, iou_type)
        else:
            evaluator.summarize()
            stats = np.asarray(evaluator.stats)[[0, 1] if iou_type == "keypoints" else [0, 1, 2, 8]]
    return timer, stats


def _stats_all_area(evaluator: Any, iou_type: str) -> np.ndarray:
    p = evaluator.eval["precision"][:, :, :, 0, -1]
    r = evaluator.eval["recall"][:, :, 0, -1]

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x[x > -1])) if (x > -1).any() else -1.0

    if iou_type == "keypoints":
        return np.array([mean(p), mean(p[0])])
    return np.array([mean(p), mean(p[0]), mean(p[5]), mean(r)])


def run_vsynth(gt: dict, results: list, task: str) -> tuple[Timer, np.ndarray]:
    from vsynth.eval.detection import DetectionEvaluator
    from vsynth.eval.keypoints import KeypointEvaluator

    with Timer() as timer:
        if task == "keypoints":
            out = KeypointEvaluator.from_coco_files(gt, results).compute()
            stats = np.array([out["oks_map"], out["oks_map50"]])
        else:
            out = DetectionEvaluator.from_coco_files(gt, results).compute()
            stats = np.array([out["ap"], out["ap50"], out["ap75"], out["ar100"]])
    return timer, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12761)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-pycocotools", action="store_true", help="pycocotools takes minutes at full size")
    args = parser.parse_args()

    from importlib.metadata import version

    print(f"machine: {os.cpu_count()} CPU cores ({cpu_model()}), {platform.system()} {platform.release()}")
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share the cores)")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pycocotools {version('pycocotools')}, "
        f"faster-coco-eval {version('faster-coco-eval')}"
    )
    for task, iou_type, keys in (
        ("keypoints", "keypoints", ["oks_map", "oks_map50"]),
        ("detection", "bbox", ["ap", "ap50", "ap75", "ar100"]),
    ):
        t0 = time.perf_counter()
        gt, results = make_dataset(args.images, args.seed, keypoints=task == "keypoints")
        print(
            f"\n[{task}] {len(gt['images'])} images, {len(gt['annotations'])} ground truths, "
            f"{len(results)} detections (generated in {time.perf_counter() - t0:.1f} s)"
        )
        rows = [("vsynth.eval", *run_vsynth(gt, results, task))]
        rows.append(("faster-coco-eval", *run_cocoeval("faster_coco_eval", gt, results, iou_type, restricted=False)))
        if not args.skip_pycocotools:
            rows.append(("pycocotools", *run_cocoeval("pycocotools", gt, results, iou_type, restricted=False)))
            rows.append(("pycocotools (area all only)", *run_cocoeval("pycocotools", gt, results, iou_type, restricted=True)))
        ours = rows[0][2]
        print(f"{'evaluator':30s} {'wall s':>8s} {'CPU s':>8s} {'CPU vs vsynth':>14s}  " + "  ".join(f"{k:>9s}" for k in keys))
        for name, timer, stats in rows:
            ratio = timer.cpu / rows[0][1].cpu
            print(
                f"{name:30s} {timer.wall:8.2f} {timer.cpu:8.2f} {ratio:13.1f}x  " + "  ".join(f"{v:9.6f}" for v in stats)
            )
        for name, _, stats in rows[1:]:
            diff = np.abs(np.asarray(stats) - ours).max()
            status = "identical" if diff <= 1e-12 else ("agree to 1e-9" if diff <= 1e-9 else "DIFFERENT")
            print(f"numbers vs {name}: max |difference| = {diff:.1e} ({status})")
    print(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
