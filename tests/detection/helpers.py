"""Shared helpers of the detection tests: tiny COCO files, tiny-run CLI arguments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

CLASSES = ["car", "truck", "bus", "trailer", "pedestrian", "motorcycle", "bicycle"]

# A tiny YOLOX-Nano on tiny demo data: 16 real training images of 320x240 at 64 px, batch 4 -> 4 steps
# per epoch, 1 epoch frozen + 1 epoch unfrozen.
DEMO_DATA = ["data.demo.counts.real.train=16", "data.demo.counts.real.val=4", "data.demo.counts.real.test=4",
             "data.demo.counts.synthetic.train=8", "data.demo.counts.synthetic.val=4", "data.demo.counts.synthetic.test=4"]
TINY = ["task=detection", "task.input_size=[64,64]", "task.test_size=[64,64]", "task.multiscale.range=[64,96]",
        "task.multiscale.interval=2", "task.samples.per_source=2", "task.samples.predictions=2",
        "trainer.batch_size=4", "trainer.length=2", "trainer.workers=0", "trainer.log_interval=1",
        "trainer.schedule.warmup=0.5", "trainer.val.interval=1",
        "trainer.phases=[{name: frozen, length: 1, freeze: [backbone.backbone]}, {name: unfrozen, length: null}]"]


def env(cache: Path) -> dict:
    return {"VSYNTH_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cli(args: list[str], cwd: Path, cache: Path, timeout: int = 300):
    return run_cli(args, cwd, env=env(cache), timeout=timeout)


def run_dir_of(proc) -> Path:
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Run folder: ")]
    assert lines, proc.stdout + proc.stderr
    return Path(lines[-1].split("Run folder: ", 1)[1].split(" (")[0])


def coco(images: list[dict], annotations: list[dict], classes=CLASSES, first_id: int = 1) -> dict:
    cats = [{"id": first_id + i, "name": n, "supercategory": n} for i, n in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": cats}


def write_coco(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def demo_split(root: Path, source: str, split: str) -> tuple[Path, Path]:
    """(images folder, annotation file) of a split of a generated demo world."""
    folder = {"real": "frames", "synthetic": "renders"}[source]
    return root / "detection" / source / folder / split, root / "detection" / source / "annotations" / f"instances_{split}.json"


def user_data_args(paths: dict[str, tuple[Path, Path]]) -> list[str]:
    """``data=coco_detection`` overrides for {"real.train": (images, json), ...}."""
    out = ["data=coco_detection"]
    for key, (images, ann) in paths.items():
        out += [f"data.{key}.coco={ann}", f"data.{key}.images={images}"]
    return out
