"""``python -m vsynth.eval``: evaluate prediction files without training anything.

    python -m vsynth.eval keypoints --gt GT.json --pred PRED.json [--sigmas s1,...,sK] [--pck 0.05]
                                    [--protocol coco|ultralytics] [--area-from-box F] [--out FILE]
    python -m vsynth.eval detection --gt GT.json --pred PRED.json [--out FILE]
    python -m vsynth.eval segmentation --gt-dir DIR --pred-dir DIR --num-classes N
                                       [--ignore-index 255] [--class-names a,b,c] [--out FILE]
    python -m vsynth.eval bootstrap keypoints|detection --gt GT.json --pred-a A.json --pred-b B.json
                                    [--metric M] [--n 1000] [--seed 0] [--ci 0.95]
    python -m vsynth.eval bootstrap segmentation --gt-dir DIR --pred-dir-a DIR --pred-dir-b DIR
                                    --num-classes N [--metric miou] ...

Prints one JSON object (NaN, i.e. undefined, as null) and optionally writes it to ``--out``.
Bad input is one line on stderr, ``vsynth.eval: error: <file>: <entry>: <problem>``, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vsynth.errors import ConfigError, VsynthError

PROG = "vsynth.eval"


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",")]


def jsonable(value: Any) -> Any:
    """The result with NaN/inf as None, so the output is strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _keypoint_evaluator(args: argparse.Namespace, pred: str) -> Any:
    from vsynth.eval.keypoints import KeypointEvaluator

    sigmas = _floats(args.sigmas, "--sigmas") if args.sigmas else None
    return KeypointEvaluator.from_coco_files(
        args.gt,
        pred,
        sigmas=sigmas,
        protocol=args.protocol,
        pck_alpha=args.pck,
        max_dets=args.max_dets,
        area_from_box=args.area_from_box,
    )


def _detection_evaluator(args: argparse.Namespace, pred: str) -> Any:
    from vsynth.eval.detection import DetectionEvaluator

    return DetectionEvaluator.from_coco_files(args.gt, pred, max_dets=args.max_dets or 100)


def _segmentation_evaluator(args: argparse.Namespace, pred_dir: str, keep_per_image: bool) -> Any:
    from vsynth.eval.segmentation import SegmentationEvaluator

    return SegmentationEvaluator.from_label_dirs(
        args.gt_dir,
        pred_dir,
        args.num_classes,
        ignore_index=args.ignore_index,
        class_names=_names(args.class_names),
        keep_per_image=keep_per_image,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Execute a parsed command line and return the result object."""
    if args.command == "keypoints":
        return _keypoint_evaluator(args, args.pred).compute()
    if args.command == "detection":
        return _detection_evaluator(args, args.pred).compute()
    if args.command == "segmentation":
        return _segmentation_evaluator(args, args.pred_dir, keep_per_image=False).compute()
    from vsynth.eval.bootstrap import paired_bootstrap

    if args.task == "segmentation":
        a = _segmentation_evaluator(args, args.pred_dir_a, keep_per_image=True)
        b = _segmentation_evaluator(args, args.pred_dir_b, keep_per_image=True)
        default = "miou"
    elif args.task == "keypoints":
        a, b = _keypoint_evaluator(args, args.pred_a), _keypoint_evaluator(args, args.pred_b)
        default = "oks_map"
    else:
        a, b = _detection_evaluator(args, args.pred_a), _detection_evaluator(args, args.pred_b)
        default = "ap"
    return paired_bootstrap(a, b, metric=args.metric or default, n=args.n, seed=args.seed, ci=args.ci)


def _add_keypoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sigmas", help="per-keypoint OKS sigmas, comma-separated (default: the GT's kpt_oks_sigmas)")
    p.add_argument("--pck", type=float, default=0.05, help="PCK alpha, fraction of max(box w, h) (default 0.05)")
    p.add_argument("--protocol", choices=("coco", "ultralytics"), default="coco", help="default: coco")
    p.add_argument("--max-dets", type=int, default=None, help="detections kept per image (default 20 coco, 300 ultralytics)")
    p.add_argument(
        "--area-from-box",
        type=float,
        default=None,
        metavar="F",
        help="OKS scale of ground truth without 'area': box w*h*F (e.g. 0.53; CrowdPose/AIC/PoseTrack have no area)",
    )


def _add_segmentation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt-dir", required=True, help="folder of ground-truth label maps (.png / .npy)")
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--ignore-index", type=int, default=255, help="ground-truth label to ignore (default 255)")
    p.add_argument("--class-names", help="comma-separated class names, in class-id order")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Evaluate predictions: keypoints, detection, segmentation.")
    sub = parser.add_subparsers(dest="command", required=True)

    kp = sub.add_parser("keypoints", help="OKS-mAP, OKS-mAP@50, PCK from COCO keypoints GT + results JSON")
    kp.add_argument("--gt", required=True)
    kp.add_argument("--pred", required=True)
    _add_keypoint_options(kp)

    det = sub.add_parser("detection", help="COCO AP, AP50, AP75, AR@100, per-class AP from GT + results JSON")
    det.add_argument("--gt", required=True)
    det.add_argument("--pred", required=True)
    det.add_argument("--max-dets", type=int, default=None, help="detections per image and class (default 100)")

    seg = sub.add_parser("segmentation", help="mIoU, mAcc, aAcc, per-class IoU/Acc from label-map folders")
    _add_segmentation_options(seg)
    seg.add_argument("--pred-dir", required=True)

    boot = sub.add_parser("bootstrap", help="paired bootstrap CI of metric(A) - metric(B) over test images")
    boot_sub = boot.add_subparsers(dest="task", required=True)
    bkp = boot_sub.add_parser("keypoints")
    bdet = boot_sub.add_parser("detection")
    bseg = boot_sub.add_parser("segmentation")
    for p in (bkp, bdet):
        p.add_argument("--gt", required=True)
        p.add_argument("--pred-a", required=True)
        p.add_argument("--pred-b", required=True)
    _add_keypoint_options(bkp)
    bdet.add_argument("--max-dets", type=int, default=None)
    _add_segmentation_options(bseg)
    bseg.add_argument("--pred-dir-a", required=True)
    bseg.add_argument("--pred-dir-b", required=True)
    for p in (bkp, bdet, bseg):
        p.add_argument("--metric", help="metric key (default oks_map / ap / miou; nested as group/name)")
        p.add_argument("--n", type=int, default=1000, help="resamples (default 1000)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--ci", type=float, default=0.95, help="interval level (default 0.95)")

    for p in (kp, det, seg, bkp, bdet, bseg):
        p.add_argument("--out", help="also write the JSON result to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = jsonable(run(args))
        text = json.dumps(result, indent=2)
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n", encoding="utf-8")
    except VsynthError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {args.out}: cannot write result: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
