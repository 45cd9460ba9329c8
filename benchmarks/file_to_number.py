"""File to number: the evaluator CLI against pycocotools, and detection start-up at 135k images.

    .venv/bin/python benchmarks/file_to_number.py [--images 12761] [--detection-images 135000]
                                                  [--rounds 2] [--baseline COMMIT] [--keep DIR]

Everything is measured side by side in one run, each command in a fresh process (start-up and
imports count), rounds alternating, the best round reported:

1. File to printed numbers, keypoints (14 points) and boxes (7 classes) on synthetic COCO files the
   size of the users' keypoint test set (12,761 images; ground truth and results files written by
   `benchmarks/eval_speed.make_dataset`): ``python -m vsynth.eval keypoints|detection --gt --pred``
   of this tree and of ``--baseline`` (the tree before this work), against pycocotools' load +
   evaluate as users run it (``COCO(gt)``, ``loadRes(pred)``, ``evaluate``, ``accumulate``,
   ``summarize``). The numbers each prints are compared.
2. Detection start-up: a COCO boxes file of 135k images (7.3 boxes per image, 80 classes, COCO's
   fields, one polygon per box) for ``train`` and a 5k-image file that ``val`` and ``test`` share;
   the detection task's data reading before the first batch (``DetectionData.classes`` over the
   three splits, as the task does, and ``YoloxBoxes`` of the train split), for this tree and the
   baseline: wall and CPU seconds and the peak of resident memory above the process's memory
   before reading (transient), plus what stays (retained). The data read are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from eval_speed import SIGMAS, make_dataset  # noqa: E402

from vsynth.run.envinfo import cpu_model  # noqa: E402

BASELINE = "a304c5d2df5b8faa7cc8f709ffb9501ef31f2857"  # the tree before the file-to-number work

PYCOCOTOOLS = """
import contextlib, io, json, sys
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
task, gt, pred = sys.argv[1:4]
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(gt)
    ev = COCOeval(coco, coco.loadRes(pred), "keypoints" if task == "keypoints" else "bbox")
    if task == "keypoints":
        ev.params.kpt_oks_sigmas = np.array(json.loads(sys.argv[4]))
    ev.evaluate(); ev.accumulate(); ev.summarize()
print(json.dumps([float(v) for v in ev.stats[[0, 1] if task == "keypoints" else [0, 1, 2, 8]]]))
"""

STARTUP = """
import json, os, resource, sys, time
from pathlib import Path
import numpy as np
from tasks.detection.data import DetectionData, YoloxBoxes
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
root = Path(sys.argv[1])
entry = lambda name: {"coco": str(root / name), "images": str(root / "images")}
cfg = {"demo": {"enabled": False}, "real": {"train": entry("train.json"), "val": entry("val.json"), "test": entry("val.json")}}
before, wall, cpu = rss(), time.perf_counter(), time.process_time()
data = DetectionData(cfg, root / "cache")
classes = data.classes([("real", "train"), ("real", "val"), ("real", "test")])
train = YoloxBoxes(data.get("real", "train"), (640, 640))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
sets = [data.get("real", s) for s in ("train", "val", "test")]
check = [len(classes), *[(len(s), s.num_boxes, s.dropped, s.clipped) for s in sets],
         float(sum(float(b.sum()) for b in sets[0].boxes)), float(sum(float(a.sum()) for a in sets[0].areas)),
         int(sum(int(c.sum()) for c in sets[0].crowd)), float(sum(float(lb.sum()) for lb in train._labels))]
print(json.dumps({"wall": wall, "cpu": cpu, "transient": peak - before, "retained": rss() - before, "check": check}))
"""


def write_json(path: Path, doc: object) -> Path:
    path.write_bytes(msgspec.json.encode(doc))
    return path


def eval_files(folder: Path, n_images: int, seed: int) -> dict[str, tuple[Path, Path]]:
    out = {}
    for task in ("keypoints", "detection"):
        gt, results = make_dataset(n_images, seed, keypoints=task == "keypoints")
        out[task] = (write_json(folder / f"{task}_gt.json", gt), write_json(folder / f"{task}_pred.json", results))
    return out


def detection_files(folder: Path, n_images: int, seed: int) -> None:
    """COCO boxes like instances_train2017 (fields, 7.3 boxes per image, a polygon per box) + a val file."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    n_val = 5000
    for name, first, count in (("train.json", 1, n_images), ("val.json", n_images + 1, n_val)):
        ids = np.arange(first, first + count)
        images = [{"license": 1, "file_name": f"{i:012d}.jpg", "coco_url": "", "height": 480, "width": 640,
                   "date_captured": "2013-11-14 17:02:52", "flickr_url": "", "id": int(i)} for i in ids]
        for image in images:
            (folder / "images" / image["file_name"]).touch()
        per = rng.poisson(7.3, size=count)
        image_of = np.repeat(ids, per)
        m = image_of.size
        wh = np.round(rng.uniform(2, 300, (m, 2)), 2)
        xy = np.round(rng.uniform(0, 1, (m, 2)) * (np.array([640, 480]) - wh * 0.8), 2)
        cat = rng.integers(1, 81, m)
        crowd = rng.random(m) < 0.01
        anns = [{"segmentation": [[float(xy[j, 0]), float(xy[j, 1]), float(xy[j, 0] + wh[j, 0]), float(xy[j, 1]),
                                   float(xy[j, 0] + wh[j, 0]), float(xy[j, 1] + wh[j, 1])]],
                 "area": round(float(wh[j, 0] * wh[j, 1] * 0.6), 3), "iscrowd": int(crowd[j]),
                 "image_id": int(image_of[j]), "bbox": [float(v) for v in (*xy[j], *wh[j])],
                 "category_id": int(cat[j]), "id": int(first * 10 + j)} for j in range(m)]
        cats = [{"supercategory": "thing", "id": c, "name": f"class{c}"} for c in range(1, 81)]
        write_json(folder / name, {"info": {}, "licenses": [], "images": images, "annotations": anns,
                                   "categories": cats})


def baseline_tree(commit: str, folder: Path) -> Path:
    """The ``vsynth`` and ``tasks`` packages as they were at ``commit``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "vsynth", "tasks"], capture_output=True,
                             check=True).stdout
    tar = folder / "baseline.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(folder / "baseline")
    return folder / "baseline"


def timed(argv: list[str], tree: Path | None, cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, its stdout) for one command run with ``tree`` first on the path."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def numbers(task: str, stdout: str) -> list[float]:
    out = json.loads(stdout)
    if isinstance(out, list):  # pycocotools' stats
        return out
    keys = ["oks_map", "oks_map50"] if task == "keypoints" else ["ap", "ap50", "ap75", "ar100"]
    return [out[k] for k in keys]


def best(rows: list[tuple[float, float, str]]) -> tuple[float, float, str]:
    return min(rows, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12761, help="images of the evaluation test sets")
    parser.add_argument("--detection-images", type=int, default=135000, help="images of the detection train file")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default=BASELINE, help="commit whose tree is 'before'")
    parser.add_argument("--keep", help="write the generated files here (default: a temporary folder)")
    args = parser.parse_args()

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "vsynth", "tasks"], capture_output=True,
                           text=True).stdout.strip()
    from importlib.metadata import version

    print(f"machine: {os.cpu_count()} CPU cores ({cpu_model()}), {platform.system()} {platform.release()}")
    print(f"commit {commit}{' (with uncommitted changes)' if dirty else ''}, baseline {args.baseline[:7]}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, pycocotools {version('pycocotools')}, "
          f"pysimdjson {version('pysimdjson')}, msgspec {version('msgspec')}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = baseline_tree(args.baseline, Path(tmp))
        t0 = time.perf_counter()
        files = eval_files(work, args.images, args.seed)
        print(f"\nevaluation files: {args.images} images ({time.perf_counter() - t0:.0f} s to generate)")
        sigmas = json.dumps(SIGMAS.tolist())
        for task, (gt, pred) in files.items():
            cli = [sys.executable, "-m", "vsynth.eval", task, "--gt", str(gt), "--pred", str(pred)]
            runs: dict[str, list] = {"vsynth.eval (this tree)": [], "vsynth.eval (baseline)": [], "pycocotools": []}
            for _ in range(args.rounds):
                runs["vsynth.eval (this tree)"].append(timed(cli, REPO, work))
                runs["vsynth.eval (baseline)"].append(timed(cli, base, work))
                runs["pycocotools"].append(timed([sys.executable, "-c", PYCOCOTOOLS, task, str(gt), str(pred), sigmas],
                                                 None, work))
            size = (gt.stat().st_size + pred.stat().st_size) / 2**20
            print(f"\n[{task}] {size:.0f} MB of JSON; best of {args.rounds} rounds, each a fresh process")
            ref = best(runs["pycocotools"])
            print(f"{'command':28s} {'wall s':>7s} {'CPU s':>7s} {'pycocotools / it (CPU)':>23s}  numbers")
            for name, rows in runs.items():
                wall, cpu, out = best(rows)
                print(f"{name:28s} {wall:7.2f} {cpu:7.2f} {ref[1] / cpu:22.1f}x  {numbers(task, out)}")
            ours, theirs = numbers(task, best(runs["vsynth.eval (this tree)"])[2]), numbers(task, ref[2])
            diff = max(abs(a - b) for a, b in zip(ours, theirs))
            print(f"numbers vs pycocotools: max |difference| = {diff:.1e} ({'identical' if diff == 0 else 'DIFFERENT'})")

        t0 = time.perf_counter()
        detection_files(work / "det", args.detection_images, args.seed)
        train = work / "det" / "train.json"
        print(f"\n[detection start-up] train {args.detection_images} images ({train.stat().st_size / 2**20:.0f} MB), "
              f"val = test: 5000 images, one file ({time.perf_counter() - t0:.0f} s to generate)")
        results: dict[str, list] = {"this tree": [], "baseline": []}
        for _ in range(args.rounds):
            for name, tree in (("this tree", REPO), ("baseline", base)):
                _, _, out = timed([sys.executable, "-c", STARTUP, str(work / "det")], tree, work)
                results[name].append(json.loads(out))
        print(f"{'reader':12s} {'wall s':>7s} {'CPU s':>7s} {'transient MiB':>14s} {'retained MiB':>13s}")
        for name, rows in results.items():
            r = min(rows, key=lambda r: r["cpu"])
            print(f"{name:12s} {r['wall']:7.2f} {r['cpu']:7.2f} {r['transient'] / 2**20:14.0f} {r['retained'] / 2**20:13.0f}")
        same = results["this tree"][0]["check"] == results["baseline"][0]["check"]
        print(f"data read: {'identical' if same else 'DIFFERENT'} (class count, images/boxes/dropped/clipped per split, "
              "sums of boxes, areas, crowd flags, YOLOX labels)")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
