"""``python -m vsynth.report``: reports that can be (re)written any time from files on disk.

    python -m vsynth.report SWEEP_DIR [--reference ARM] [--arm-key arm] [--samples 1000] [--seed 0] [--level 0.95]
        [--gate 0.02] [--sigmas s1,...,sK] [--no-compare]
        (re)write summary.csv and report.md of a sweep; when it sweeps the arm and its runs kept per-image test
        files, every arm vs the reference arm (default B, else the first) with a two-level interval over seeds
        and test images, variance shares and MDE (also comparisons.csv / comparisons.json)
    python -m vsynth.report keypoint-audit --gt GT.json --pred A.json --control B.json [--sigmas s1,...,sK]
        [--out DIR] [--samples 1000] [--seed 0] [--level 0.95] [--alpha 0.05] [--adjust holm|none]
        [--pck 0.05] [--protocol coco|ultralytics] [--max-dets N]
        per-keypoint PCK, OKS and mean offset of two prediction files, A vs B, flagged keypoints:
        DIR/keypoint_audit.json and DIR/keypoint_audit.png

    python -m vsynth.report compare --a RUN [RUN ...] --b RUN [RUN ...] [--metric oks_map] [--split test]
        [--sigmas s1,...,sK] [--samples 1000] [--seed 0] [--level 0.95] [--gate 0.02] [--alpha 0.05]
        [--power 0.8] [--out FILE]
        A - B over seeds (one run folder each) and test images: two-level bootstrap interval, the seed and
        image shares of the variance, the minimum detectable effect and the seeds / images the gate needs

Bad input is one line on stderr, ``vsynth.report: error: <file or option>: <problem>``, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "python -m vsynth.report"


def _error(message: str) -> int:
    print(f"vsynth.report: error: {message}", file=sys.stderr)
    return 2


def _resampling_options(ap: argparse.ArgumentParser, what: str) -> None:
    """--samples, --seed and --level: the bootstrap every command of this module runs."""
    ap.add_argument("--samples", type=int, default=1000, help=f"{what} (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    ap.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")


def _sweep(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description="(Re)write summary.csv and report.md of a sweep. "
                                 f"Other commands: {PROG} keypoint-audit --help, {PROG} compare --help")
    ap.add_argument("sweep_dir", type=Path, help="a sweep root (outputs/sweeps/<name>-<hash>)")
    ap.add_argument("--reference", help="arm every other arm is compared with (default: B if swept, else the first)")
    ap.add_argument("--arm-key", default="arm", help="the swept key whose values are arms (default arm)")
    _resampling_options(ap, "two-level resamples per comparison")
    ap.add_argument("--gate", type=float, default=0.02, help="effect the power section plans for (default 0.02)")
    ap.add_argument("--sigmas", help="per-keypoint OKS sigmas, comma-separated (default: those in gt_test.json)")
    ap.add_argument("--no-compare", action="store_true", help="skip the arm comparisons (tables and plots only)")
    args = ap.parse_args(argv)
    if not args.sweep_dir.is_dir():
        return _error(f"{args.sweep_dir}: no such folder")
    from vsynth.errors import VsynthError
    from vsynth.eval.__main__ import _floats
    from vsynth.report.jobs import find_jobs
    from vsynth.report.sweep import write_sweep_report

    if not find_jobs(args.sweep_dir):
        return _error(f"{args.sweep_dir}: no job folders (with .hydra/overrides.yaml) inside")
    try:
        options = {"arm_key": args.arm_key, "reference": args.reference, "samples": args.samples, "seed": args.seed,
                   "level": args.level, "gate": args.gate,
                   "sigmas": _floats(args.sigmas, "--sigmas") if args.sigmas else None}
        report = write_sweep_report(args.sweep_dir, compare=not args.no_compare, options=options)
    except VsynthError as exc:
        return _error(str(exc).splitlines()[0])
    print(f"Wrote {args.sweep_dir / 'summary.csv'} and {report}")
    if (args.sweep_dir / "comparisons.csv").is_file() and not args.no_compare:
        print(f"Arm comparisons: {args.sweep_dir / 'comparisons.csv'}")
    return 0


def _keypoint_audit(argv: list[str]) -> int:
    from vsynth.report.keypoint_audit import ADJUSTMENTS

    ap = argparse.ArgumentParser(prog=f"{PROG} keypoint-audit",
                                 description="Which keypoints moved: per-keypoint PCK, OKS of matched points and mean "
                                             "signed offset (in object scales) of two prediction files on one COCO "
                                             "keypoints ground truth, A vs B, with bootstrap intervals over images.")
    ap.add_argument("--gt", required=True, help="COCO keypoints ground truth (e.g. a run's gt_test.json)")
    ap.add_argument("--pred", required=True, help="COCO results of arm A (e.g. the treatment's predictions_test.json)")
    ap.add_argument("--control", required=True, help="COCO results of arm B, the control, on the same images")
    ap.add_argument("--sigmas", help="per-keypoint OKS sigmas, comma-separated (default: the GT's kpt_oks_sigmas)")
    ap.add_argument("--out", default=".", help="folder for keypoint_audit.json and keypoint_audit.png (default .)")
    _resampling_options(ap, "image resamples of the bootstrap")
    ap.add_argument("--alpha", type=float, default=0.05, help="level at which a keypoint is flagged (default 0.05)")
    ap.add_argument("--adjust", choices=ADJUSTMENTS, default="holm",
                    help="multiple-testing adjustment over keypoints (default holm: at most alpha chance that any "
                         "keypoint of a null comparison is flagged)")
    ap.add_argument("--pck", type=float, default=0.05, help="PCK alpha, fraction of max(box w, h) (default 0.05)")
    ap.add_argument("--protocol", choices=("coco", "ultralytics"), default="coco", help="OKS matching (default coco)")
    ap.add_argument("--max-dets", type=int, default=None, help="detections kept per image (default 20 coco)")
    args = ap.parse_args(argv)
    from vsynth.errors import VsynthError
    from vsynth.eval.__main__ import _floats
    from vsynth.report.keypoint_audit import run_audit

    try:
        sigmas = _floats(args.sigmas, "--sigmas") if args.sigmas else None
        result = run_audit(args.gt, args.pred, args.control, sigmas=sigmas, protocol=args.protocol,
                           pck_alpha=args.pck, max_dets=args.max_dets, out_dir=args.out, samples=args.samples,
                           seed=args.seed, level=args.level, alpha=args.alpha, adjust=args.adjust)
    except VsynthError as exc:
        return _error(str(exc).splitlines()[0])
    except OSError as exc:
        return _error(f"{exc.filename or args.out}: cannot write the audit: {exc.strerror or exc}")
    flagged = ", ".join(result["flagged"]) or "none"
    print(f"Flagged keypoints (offset of A differs from B, {args.adjust} alpha {args.alpha:g}): {flagged}")
    print(f"Wrote {Path(args.out) / 'keypoint_audit.json'} and {result['png']}")
    return 0


def _pp(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f} pp"


def _compare(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} compare",
                                 description="A - B of two arms over their seeds (one finished run folder per seed, "
                                             "each with gt_<split>.json + predictions_<split>.json) and the shared "
                                             "test images: interval, variance shares, power.")
    ap.add_argument("--a", nargs="+", required=True, metavar="RUN", help="run folders of arm A (one per seed)")
    ap.add_argument("--b", nargs="+", required=True, metavar="RUN", help="run folders of arm B, e.g. the control")
    ap.add_argument("--metric", default="oks_map", help="metric key (default oks_map; nested as group/name)")
    ap.add_argument("--split", default="test", help="which saved split to score (default test)")
    ap.add_argument("--sigmas", help="per-keypoint OKS sigmas, comma-separated (default: those in gt_<split>.json)")
    _resampling_options(ap, "two-level resamples")
    ap.add_argument("--gate", type=float, default=0.02, help="effect to plan seeds / images for (default 0.02 = 2 pp)")
    ap.add_argument("--alpha", type=float, default=0.05, help="two-sided test level of the power analysis (0.05)")
    ap.add_argument("--power", type=float, default=0.8, help="power of the power analysis (default 0.8)")
    ap.add_argument("--out", help="also write the JSON result to this file")
    args = ap.parse_args(argv)
    import json

    from vsynth.errors import VsynthError
    from vsynth.eval.__main__ import _floats, jsonable
    from vsynth.report.run_states import compare_runs

    try:
        sigmas = _floats(args.sigmas, "--sigmas") if args.sigmas else None
        res = compare_runs(args.a, args.b, metric=args.metric, split=args.split, sigmas=sigmas, samples=args.samples,
                           seed=args.seed, level=args.level, alpha=args.alpha, power=args.power, gate=args.gate)
        text = json.dumps(jsonable(res), indent=2)
        if args.out:
            from vsynth.run.atomic import write_text

            write_text(args.out, text + "\n")
    except VsynthError as exc:
        return _error(str(exc).splitlines()[0])
    except OSError as exc:
        return _error(f"{exc.filename or args.out}: cannot write: {exc.strerror or exc}")
    var, pw = res["variance"], res["power"]
    share = "" if var["seed_share"] is None else (f"; variance from seeds {var['seed_share']:.0%}, "
                                                  f"test images {var['image_share']:.0%}")
    print(f"A - B = {_pp(res['delta'])} {args.metric}, {args.level:.0%} interval [{_pp(res['low'])}, "
          f"{_pp(res['high'])}] over {res['seeds']['A']} + {res['seeds']['B']} seeds and {res['num_images']} "
          f"test images{share}")
    for note in res["notes"]:
        print(f"  {note}")
    if pw.get("reason"):
        print(f"Power: {pw['reason']}")
    else:
        print(f"Smallest detectable A - B ({pw['power']:.0%} power, {pw['alpha']:g} two-sided): {pw['mde'] * 100:.2f} pp")
    if args.gate and not pw.get("reason"):
        s, m = pw["seeds_needed"], pw["images_needed"]
        seeds = f"{s['seeds']} seeds per arm at {s['images']} test images" if s["seeds"] else s["reason"]
        images = f"{m['images']} test images at the current seeds" if m["images"] else ""
        images = f"{images} ({m['reason']})" if images and m["reason"] else (images or m["reason"])
        print(f"For a {args.gate * 100:.2f} pp gate: {seeds}; {images}")
    if args.out:
        print(f"Wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "keypoint-audit":
        return _keypoint_audit(argv[1:])
    if argv and argv[0] == "compare":
        return _compare(argv[1:])
    return _sweep(argv)


if __name__ == "__main__":
    sys.exit(main())
