"""A catalogue of bad inputs across the three tasks, through the real entry point.

Each case must end with exit code 2, exactly one ``vsynth: error:`` line naming the key or file, no
traceback on the console, and ``status.json`` = failed in its run folder (composition errors, which
Hydra raises before any run folder exists, create none). Afterwards the user's files and an earlier
finished run folder are byte-identical. The commands run through ``tests/trust/zygote.py`` (imports
once, one forked process per command), so the whole catalogue takes about a minute.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_CONF, cli_env

SEG_CONF = REPO / "tests" / "segmentation" / "conf"
KP = ["task=keypoints", "data.demo.counts.real={train: 8, val: 4, test: 4}",
      "data.demo.counts.synthetic={train: 6, val: 2, test: 2}", "data.demo.image_size=[160,128]", "task.imgsz=64",
      "data.real_subset=4", "trainer.length=1", "trainer.batch_size=4", "trainer.workers=0", "trainer.threads=1",
      "trainer.progress_bar=false", "trainer.tensorboard=false", "task.samples.per_source=0", "task.samples.predictions=0"]
DET = ["task=detection", "data.demo.counts.real={train: 8, val: 4, test: 4}",
       "data.demo.counts.synthetic={train: 4, val: 2, test: 2}", "data.demo.image_size=[160,128]",
       "task.input_size=[64,64]", "task.test_size=[64,64]", "task.multiscale.range=null", "arm=base",
       "trainer.length=1", "trainer.batch_size=4", "trainer.workers=0", "trainer.threads=1",
       "trainer.progress_bar=false", "trainer.tensorboard=false", "task.samples.per_source=0",
       "task.samples.predictions=0", "trainer.phases=[{name: frozen, length: 0.5, freeze: [backbone.backbone]}, "
       "{name: unfrozen, length: null}]"]
SEG = [f"hydra.searchpath=[file://{SEG_CONF}]", "experiment=seg_tiny", "trainer.threads=1"]
TINY = [f"hydra.searchpath=[file://{TINY_CONF}]", "task=tiny"]

# (id, base args, extra args, needle in the error line, composition error: no run folder)
CASES = [
    # ---- types, keys and group options (Hydra's composition, through the schema) ----
    ("kp-ratio-type", KP, ["data.ratio=abc"], "data.ratio", True),
    ("det-lr-type", DET, ["trainer.optimizer.lr=abc"], "trainer.optimizer.lr", True),
    ("seg-unknown-key", SEG, ["trainer.foo=1"], "trainer.foo: not a config key", True),
    ("kp-unknown-arm", KP, ["arm=X"], "arm=X: no such option", True),
    ("unknown-task", [], ["task=nope"], "task=nope: no such option", True),
    ("det-batch-float", DET, ["trainer.batch_size=2.5"], "trainer.batch_size", True),
    ("kp-demo-counts-type", KP, ["data.demo.counts.real=abc"], "data.demo.counts.real", False),
    ("seg-override-grammar", SEG, ["task.crop_size=[64,"], "cannot parse the override", True),
    ("det-unknown-task-key", DET, ["task.mosaic=1.0"], "task.mosaic: not a config key", True),
    # ---- ranges and stray keys (vsynth.config.checks, before any work) ----
    ("kp-added-key", KP, ["+data.bogus=1"], "data.bogus: not a config key", False),
    ("seg-batch-zero", SEG, ["trainer.batch_size=0"], "trainer.batch_size must be >= 1", False),
    ("det-conf-range", DET, ["eval.conf=2"], "eval.conf must be in [0, 1]", False),
    ("kp-amp", KP, ["trainer.amp=fp8"], "trainer.amp must be", False),
    ("seg-optimizer", SEG, ["trainer.optimizer.name=rmsprop"], "trainer.optimizer.name must be", False),
    ("kp-resume", KP, ["resume=maybe"], "resume must be", False),
    ("det-mode", DET, ["mode=predict"], "mode must be", False),
    ("seg-ratio-range", SEG, ["data.ratio=1.5"], "data.ratio must be in [0, 1]", False),
    ("kp-factor", KP, ["arm.sources.real.factor=-2"], "arm.sources.real.factor must be >= 0", False),
    ("det-ema-decay", DET, ["trainer.ema.decay=1.5"], "trainer.ema.decay must be in [0, 1)", False),
    ("kp-killswitch-margin", KP, ["experiment=kill_switch", "killswitch.margin=-1"], "killswitch.margin must be >= 0",
     False),
    # ---- the machine ----
    ("kp-device", KP, ["device=cuda"], "device=cuda but CUDA is not available", False),
    ("det-threads", DET, ["trainer.threads=0"], "trainer.threads must be a positive integer", False),
    # ---- models and checkpoints ----
    ("kp-model-kind", KP, ["model=yolox_nano"], "model=yolox_nano: not a model of task=keypoints", False),
    ("det-model-kind", DET, ["model=pspnet_r50"], "model=pspnet_r50: not a model of task=detection", False),
    ("kp-model-cfg", KP, ["model.cfg=/nonexistent/pose.yaml", "data.demo.init=null"], "model.cfg=/nonexistent/pose.yaml",
     False),
    ("det-init-missing", DET, ["init=/nonexistent/yolox.pth"], "init=/nonexistent/yolox.pth: file not found", False),
    ("seg-eval-no-ckpt", SEG, ["mode=eval"], "mode=eval needs ckpt=PATH", False),
    ("kp-ckpt-garbage", KP, ["mode=eval", "ckpt={user}/garbage.pt"], "garbage.pt: not a readable checkpoint", False),
    ("kp-ckpt-other-task", KP, ["mode=eval", "ckpt={user}/tiny.pt"], "a checkpoint of task 'tiny'", False),
    ("det-model-depth", DET, ["model.depth=-1"], "model.depth and model.width must be > 0", False),
    ("seg-remote-weights", SEG, ["model.mmseg.pretrained=open-mmlab://resnet50_v1c"], "never downloads", False),
    # ---- data: files and folders ----
    ("kp-yaml-missing", KP, ["data=keypoints_yolo", "data.real.yaml=/nonexistent/data.yaml", "arm=base"],
     "data.real.yaml=/nonexistent/data.yaml: file not found", False),
    ("kp-no-sigmas", KP, ["data=keypoints_yolo", "data.real.yaml={user}/nosigma.yaml", "arm=base"],
     "oks_sigmas", False),
    ("kp-synthetic-half", KP, ["data.synthetic.images={user}/world/keypoints/synthetic/images/train"],
     "data.synthetic.coco: not set, but data.synthetic.images is", False),
    ("kp-keypoint-map", KP, ["data.synthetic.keypoint_map=[0,1,2]"], "data.synthetic.keypoint_map", False),
    ("kp-subset-large", KP, ["arm=B", "data.real_subset=500"], "data.real_subset=500 is larger than", False),
    ("kp-identity-flip", KP, ["arm=B", "data.keypoints.flip_idx=[0,1,2,3,4,5,6,7,8,9,10,11,12,13]"],
     "data.keypoints.flip_idx", False),
    ("kp-imgsz", KP, ["task.imgsz=100"], "task.imgsz must be a multiple of 32", False),
    ("det-half-source", DET, ["data.real.train.images={user}/world/detection/real/frames/train"],
     "data.real.train.coco: not set, but data.real.train.images is", False),
    ("det-coco-missing", DET, ["data=coco_detection", "data.real.train.coco=/nonexistent/train.json",
                               "data.real.train.images={user}/world/detection/real/frames/train"],
     "/nonexistent/train.json", False),
    ("det-coco-malformed", DET, ["data=coco_detection", "data.real.train.coco={user}/malformed.json",
                                 "data.real.train.images={user}/world/detection/real/frames/train",
                                 "data.real.val.coco={user}/malformed.json",
                                 "data.real.val.images={user}/world/detection/real/frames/val",
                                 "data.real.test.coco={user}/malformed.json",
                                 "data.real.test.images={user}/world/detection/real/frames/test"],
     "malformed.json", False),
    ("det-input-size", DET, ["task.input_size=[100,100]"], "task.input_size must be", False),
    ("det-mosaic-prob", DET, ["task.augment.mosaic_prob=1.5"], "task.augment.mosaic_prob must be a probability", False),
    ("det-freeze-prefix", DET, ["trainer.phases=[{name: frozen, length: 0.5, freeze: [nope.backbone]}, "
                                "{name: unfrozen, length: null}]"], "freeze prefix 'nope.backbone'", False),
    ("det-phases-cover", DET, ["trainer.phases=[{name: a, length: 0.5}]"], "trainer.phases cover", False),
    ("det-subset-large", DET, ["arm=B", "data.real_subset=1000"], "data.real_subset=1000 is larger than", False),
    ("seg-root-missing", SEG, ["data.real.root=/nonexistent/seg"], "data.real.root=/nonexistent/seg: folder not found",
     False),
    ("seg-mining", SEG, ["task.loss.mining=focal"], "task.loss.mining", False),
    ("seg-class-weight", SEG, ["task.loss.class_weight=[1,2,3]"], "task.loss.class_weight: 3 weights", False),
    ("seg-inference", SEG, ["task.inference=tiled"], "task.inference", False),
    ("seg-manifest-missing", SEG, ["data.generated.manifest=/nonexistent/manifest.csv"], "/nonexistent/manifest.csv",
     False),
    ("seg-no-val", SEG, ["data.real.splits.val=null"], "data.real.splits.val", False),
    ("seg-crop", SEG, ["task.crop_size=[0,0]"], "task.crop_size", False),
    ("seg-warp", SEG, ["data.demo.effects.generated_warp=-1"], "data.demo.effects.generated_warp", False),
    # ---- an earlier finished run folder as the target: nothing in it may change ----
    ("det-into-earlier-run", DET, ["hydra.run.dir={earlier}", "trainer.batch_size=0"],
     "trainer.batch_size must be >= 1", False),
    ("kp-eval-split", KP, ["eval.split=train"], "eval.split must be val | test", False),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Prepare the user's files and an earlier run, run every case, return (results, folders, snapshots)."""
    from vsynth.data.demo import write_demo
    from vsynth.train.checkpoint import save_checkpoint

    base = tmp_path_factory.mktemp("catalogue")
    user = base / "user"
    write_demo(user / "world", seed=3, counts={"real": {"train": 4, "val": 2, "test": 2},
                                              "synthetic": {"train": 4, "val": 2}, "generated": {"train": 4}},
               size=(160, 128))
    yaml = (user / "world" / "keypoints" / "real" / "data.yaml").read_text()
    (user / "nosigma.yaml").write_text("".join(ln + "\n" for ln in yaml.splitlines() if "kpt_oks_sigmas" not in ln))
    (user / "garbage.pt").write_bytes(b"\x00 not a checkpoint")
    (user / "malformed.json").write_text('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [')
    import torch

    save_checkpoint(user / "tiny.pt", {"task": "tiny", "meta": {"task": "tiny"}, "model": {"w": torch.zeros(1)},
                                       "ema": None})
    earlier = base / "earlier"
    done = subprocess.run([sys.executable, "-m", "vsynth", *TINY, "trainer.length=1", "trainer.threads=1",
                           f"hydra.run.dir={earlier}"], cwd=base, env=cli_env(base), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    before = {"user": _snapshot(user), "earlier": _snapshot(earlier)}
    cache = base / "cache"
    cases, folders = [], {}
    for cid, args, extra, _, _ in CASES:
        cwd = base / "cases" / cid
        cwd.mkdir(parents=True)
        extra = [e.replace("{user}", str(user)).replace("{earlier}", str(earlier)) for e in extra]
        run_dir = earlier if any(e.startswith("hydra.run.dir=") for e in extra) else cwd / "run"
        folders[cid] = run_dir
        own_dir = [] if run_dir == earlier else [f"hydra.run.dir={run_dir}"]
        cases.append({"id": cid, "args": [*args, *extra, *own_dir], "cwd": str(cwd),
                      "env": {**cli_env(cwd), "VSYNTH_CACHE": str(cache), "YOLO_CONFIG_DIR": str(cache / "ultralytics")}})
    (base / "cases.json").write_text(json.dumps(cases))
    p = subprocess.run([sys.executable, str(REPO / "tests" / "trust" / "zygote.py"), str(base / "cases.json"),
                        str(base / "results.json")], cwd=base, env=cli_env(base), capture_output=True, text=True,
                       timeout=1500)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads((base / "results.json").read_text())
    return {"results": results, "folders": folders, "base": base, "user": user, "earlier": earlier, "before": before}


def test_the_catalogue_has_forty_cases_across_the_three_tasks():
    tasks = {("keypoints" if a is KP else "detection" if a is DET else "segmentation" if a is SEG else "-")
             for _, a, _, _, _ in CASES}
    assert len(CASES) >= 40 and {"keypoints", "detection", "segmentation"} <= tasks


@pytest.mark.parametrize("cid,args,extra,needle,composition", CASES, ids=[c[0] for c in CASES])
def test_bad_input(catalogue, cid, args, extra, needle, composition):
    cwd = catalogue["base"] / "cases" / cid
    stderr, stdout = (cwd / "stderr.txt").read_text(), (cwd / "stdout.txt").read_text()
    assert catalogue["results"][cid] == 2, (catalogue["results"][cid], stderr[-2000:])
    errors = [ln for ln in stderr.splitlines() if ln.startswith("vsynth: error:")]
    assert len(errors) == 1, stderr[-2000:]
    assert needle in errors[0], (needle, errors[0])
    assert "Traceback" not in stderr + stdout
    folder = catalogue["folders"][cid]
    if composition:
        assert not folder.exists()  # Hydra refused before a run folder existed
    elif folder == catalogue["earlier"]:  # the failed attempt got a new sibling folder of its own
        sibling = folder.with_name(folder.name + "-1")
        assert json.loads((sibling / "status.json").read_text())["state"] == "failed"
    else:
        st = json.loads((folder / "status.json").read_text())
        assert st["state"] == "failed" and st["error"] and needle in st["error"], st


def test_user_files_and_earlier_runs_are_untouched(catalogue):
    assert _snapshot(catalogue["user"]) == catalogue["before"]["user"]
    assert _snapshot(catalogue["earlier"]) == catalogue["before"]["earlier"]
