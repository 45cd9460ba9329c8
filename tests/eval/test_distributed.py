"""compute() under torch.distributed (gloo, 2 CPU ranks) equals one process on all images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vsynth.eval.keypoints import KeypointEvaluator
from vsynth.eval.segmentation import SegmentationEvaluator

from .coco_synth import make_coco

pytest.importorskip("torch.distributed")
REPO = Path(__file__).resolve().parents[2]
SIGMAS = [0.05, 0.06, 0.07, 0.08]

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from vsynth.eval.keypoints import KeypointEvaluator
    from vsynth.eval.segmentation import SegmentationEvaluator

    def run(rank, folder):
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
        data = json.load(open(f"{folder}/data.json"))
        gt, results = data["gt"], data["results"]
        ids = [img["id"] for img in gt["images"]]
        ids = ids + ids[:1]  # DistributedSampler pads with repeated samples
        mine = ids[rank::2]
        evaluator = KeypointEvaluator(data["sigmas"], box_format="xywh", keypoint_names=[f"kp{i}" for i in range(4)])
        evaluator.flush_images = 3
        for image_id in mine:
            anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
            dets = [r for r in results if r["image_id"] == image_id]
            target = {
                "keypoints": np.array([a["keypoints"] for a in anns], float).reshape(-1, 4, 3),
                "boxes": np.array([a["bbox"] for a in anns], float).reshape(-1, 4),
                "areas": [a["area"] for a in anns],
                "iscrowd": [a["iscrowd"] for a in anns],
            }
            pred = {"keypoints": np.array([r["keypoints"] for r in dets], float).reshape(-1, 4, 3),
                    "scores": [r["score"] for r in dets]}
            evaluator.update([image_id], [target], [pred])
        seg = SegmentationEvaluator(3)
        maps = np.array(data["maps"])
        for i in range(rank, len(maps), 2):
            seg.update(maps[i, 0], maps[i, 1])
        padded = SegmentationEvaluator(3, keep_per_image=True)
        order = list(range(len(maps))) + [0]  # padded to an even count with a repeated image
        for i in order[rank::2]:
            padded.update(maps[i, 0], maps[i, 1], image_ids=[i])
        out = {"keypoints": evaluator.compute(), "segmentation": seg.compute(), "padded": padded.compute()}
        if rank == 0:
            json.dump(out, open(f"{folder}/result.json", "w"))
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(run, args=(sys.argv[1],), nprocs=2)
    """
)


def test_two_ranks_gather_to_the_single_process_result(tmp_path: Path) -> None:
    gt, results = make_coco(4, n_images=25, n_keypoints=4)
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 3, size=(7, 2, 5, 6))
    (tmp_path / "data.json").write_text(json.dumps({"gt": gt, "results": results, "sigmas": SIGMAS, "maps": maps.tolist()}))
    (tmp_path / "worker.py").write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "worker.py"), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "result.json").read_text())

    expected = KeypointEvaluator.from_coco_files(gt, results, sigmas=SIGMAS).compute()
    for key in ("oks_map", "oks_map50", "pck@0.05", "num_images", "num_gt"):
        assert got["keypoints"][key] == pytest.approx(expected[key], abs=1e-12), key
    seg = SegmentationEvaluator(3)
    for pred, gt_map in maps:
        seg.update(pred, gt_map)
    assert got["segmentation"]["miou"] == pytest.approx(seg.compute()["miou"], abs=1e-15)
    assert got["segmentation"]["num_images"] == 7
    assert got["padded"] == got["segmentation"]  # the repeated image counted once
