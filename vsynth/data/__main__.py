"""``python -m vsynth.data``: write the demo world, convert keypoint datasets, check datasets.

    python -m vsynth.data demo --out DIR [--images N] [--seed S] [--size W H]
                               [--tasks keypoints,detection,segmentation] [--counts JSON] [--overwrite]
                               [--effects JSON]   (injected known effects, see data.demo.effects)
    python -m vsynth.data convert-coco-pose --json FILE --images DIR --out DIR [--split train|val|test]
                               [--keypoint-map 0-13] [--box-source annotation|keypoints] [--box-pad F]
                               [--visibility keep|binary] [--flip-idx LIST] [--sigmas LIST]
                               [--kpt-names LIST] [--names LIST] [--link symlink|hardlink|copy] [--overwrite]
    python -m vsynth.data check {yolo-pose,coco-keypoints,coco-detection,seg,manifest} PATH...

Converting train, val and test into one ``--out`` builds one data YAML listing all three. Bad
input ends with one ``error:`` line naming the file and the problem, and exit status 2; so does
``check yolo-pose`` on a data YAML that training would refuse, after one line per missing key.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from pathlib import Path

from vsynth.errors import ConfigError, DataError, VsynthError


def _int_list(text: str) -> list[int]:
    """'0-13' or '1,0,3,2' or '0-3,8' -> list of ints."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            out += list(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def _cmd_demo(args: argparse.Namespace) -> int:
    from vsynth.data.demo import NO_EFFECTS, TASKS, default_counts, effects_from_config, write_demo
    from vsynth.data.demo.cache import check_effects
    from vsynth.data.demo.writer import DEFAULT_IMAGES

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.counts:
        try:
            counts = json.loads(args.counts)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--counts is not valid JSON: {exc.msg}") from None
    else:
        counts = default_counts(DEFAULT_IMAGES if args.images is None else args.images)
    effects = NO_EFFECTS
    if args.effects:
        try:
            effects = effects_from_config(json.loads(args.effects), key="--effects")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--effects is not valid JSON: {exc.msg}") from None
        check_effects(tasks or list(TASKS), effects, counts, key="--effects")
    out = Path(args.out).absolute()
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            raise DataError(f"{out}: folder exists and is not empty; pass --overwrite to replace a demo world there")
        if not (out / "meta.json").is_file():
            raise DataError(f"{out}: not a demo world (no meta.json); refusing to delete it with --overwrite")
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    try:
        write_demo(tmp, tasks or list(TASKS), args.seed, counts, tuple(args.size), final_root=out, log=print,
                   effects=effects)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    n = sum(sum(s.values()) for s in json.loads((out / "meta.json").read_text())["counts"].values()) * len(tasks or TASKS)
    print(f"wrote {n} images to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _float_list(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def _name_list(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",")]


def _cmd_convert(args: argparse.Namespace) -> int:
    from vsynth.data.formats import coco_keypoints_to_yolo_pose
    from vsynth.data.formats.training_gaps import pose_training_gaps

    result = coco_keypoints_to_yolo_pose(
        args.json,
        args.images,
        args.out,
        split=args.split,
        keypoint_map=_int_list(args.keypoint_map) if args.keypoint_map else None,
        box_source=args.box_source,
        box_pad=args.box_pad,
        visibility=args.visibility,
        flip_idx=_int_list(args.flip_idx) if args.flip_idx else None,
        kpt_oks_sigmas=_float_list(args.sigmas, "--sigmas") if args.sigmas else None,
        kpt_names=_name_list(args.kpt_names),
        class_names=_name_list(args.names),
        link_images=args.link,
        overwrite=args.overwrite,
    )
    print(
        f"{args.split}: wrote {result.num_images} images, {result.num_objects} objects ({result.num_skipped} skipped), "
        f"kpt_shape {list(result.kpt_shape)} to {result.out_dir}"
    )
    if result.flip_idx is not None:
        pairs = [f"{result.keypoint_names[i]} <-> {result.keypoint_names[j]}" for i, j in enumerate(result.flip_idx) if i < j]
        print(f"flip_idx {result.flip_idx} from the {result.flip_from}: {', '.join(pairs)}")
    gaps = pose_training_gaps(result.data_yaml)
    print(f"data YAML {result.data_yaml}" + (": ready for training" if not any(g.required for g in gaps) else ""))
    for gap in gaps:
        print(f"  {'still missing' if gap.required else 'note'}: {gap}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from vsynth.data import formats as f

    paths = args.paths
    need = {"yolo-pose": 1, "coco-keypoints": 2, "coco-detection": 2, "seg": 3, "manifest": 1}[args.format]
    if len(paths) != need:
        raise ConfigError(f"check {args.format} takes {need} path(s), got {len(paths)}")
    if args.format == "yolo-pose":
        from vsynth.data.formats.training_gaps import Gap, pose_training_gaps

        spec = f.read_yolo_pose_yaml(paths[0])
        if spec.flip_idx is not None:
            f.validate_flip_idx(spec.flip_idx, spec.kpt_shape[0], spec.kpt_names)
        gaps = pose_training_gaps(paths[0])
        for split, folder in spec.splits.items():
            if not folder.exists():
                continue
            ds = f.read_yolo_pose(paths[0], split)
            print(f"{split}: {len(ds.images)} images, {len(ds.annotations)} objects, kpt_shape {list(spec.kpt_shape)}")
            if split in ("train", "val") and not ds.annotations:
                gaps.insert(0, Gap(split, "no labelled objects (nothing to train or validate on)", True))
        for gap in gaps:
            print(gap if gap.required else f"note: {gap}")
        missing = [g.key for g in gaps if g.required]
        if missing:
            raise DataError(f"{paths[0]}: not ready for training: {', '.join(dict.fromkeys(missing))} (see above)")
    elif args.format == "coco-keypoints":
        ds = f.read_coco_keypoints(paths[0], paths[1])
        if ds.flip_idx is not None:
            f.validate_flip_idx(ds.flip_idx, ds.num_keypoints, ds.keypoint_names)
        print(f"{len(ds.images)} images, {len(ds.annotations)} objects, {ds.num_keypoints} keypoints, classes {ds.class_names}")
        if ds.oks_sigmas is None:
            print("note: kpt_oks_sigmas: not in the category (give --sigmas when converting it for training)")
        if ds.flip_idx is None:
            derived = f.flip_idx_from_names(ds.keypoint_names)
            print("note: flip_idx: not in the category (" + (f"the keypoint names give {derived}, which the converter uses)"
                  if derived else "give --flip-idx when converting it for training)"))
    elif args.format == "coco-detection":
        ds = f.read_coco_detection(paths[1], paths[0], boxes="clean")  # training's policy for degenerate boxes
        total = len(ds.annotations) + ds.dropped
        if (warning := f.box_summary(Path(paths[0]), total, ds.dropped, ds.clipped, "check")) is not None:
            print(f"warning: {warning}")
        by_id = [name for _, name in sorted(zip(ds.category_ids, ds.class_names))]  # the task's (YOLOX's) class order
        print(f"{len(ds.images)} images, {len(ds.annotations)} boxes, classes {by_id} (by category id, the training order)")
    elif args.format == "seg":
        ds = f.read_seg_folders(paths[0], paths[1], paths[2])
        for sample in ds.samples:
            f.read_mask(sample.label, len(ds.class_names), ds.ignore_index)
        print(f"{len(ds.samples)} image/mask pairs, classes {ds.class_names}")
    else:
        rows = f.read_manifest(paths[0])
        print(f"{len(rows)} generated images from {len({r.source_image for r in rows})} sources, conditions {sorted({r.condition for r in rows})}")
    print("ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vsynth.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the procedural demo world (real / synthetic / generated)")
    demo.add_argument("--out", required=True, help="output folder (created; must be new or empty)")
    demo.add_argument("--images", type=int, default=None, help="real train images per task; val = N/4, test = N/2, synthetic and generated follow (default 200)")
    demo.add_argument("--counts", help='exact counts as JSON, e.g. \'{"real": {"train": 100, "val": 20}, "synthetic": {"train": 100}}\' (overrides --images)')
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    demo.add_argument("--tasks", default="keypoints,detection,segmentation", help="comma-separated subset")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo world in --out")
    demo.add_argument("--effects", help='known effects to inject, as JSON (see data.demo.effects), e.g. '
                      '\'{"keypoint_shift": {"keypoints": ["front_left_wheel"], "offset": [0, 0.1]}, "generated_warp": 5}\'')
    demo.set_defaults(func=_cmd_demo)

    conv = sub.add_parser(
        "convert-coco-pose", help="convert a COCO keypoints split to a YOLO-pose folder (run once per split, same --out)"
    )
    conv.add_argument("--json", required=True, help="COCO keypoints annotation file")
    conv.add_argument("--images", required=True, help="folder the file_names are relative to")
    conv.add_argument("--out", required=True, help="output folder (outside the source dataset); its data.yaml collects the splits")
    conv.add_argument("--split", default="train", choices=["train", "val", "test"])
    conv.add_argument("--keypoint-map", help="source indices to keep, in output order, e.g. 0-13")
    conv.add_argument("--box-source", default="annotation", choices=["annotation", "keypoints"])
    conv.add_argument("--box-pad", type=float, default=0.0, help="padding of keypoint boxes, fraction of box size per side")
    conv.add_argument("--visibility", default="keep", choices=["keep", "binary"], help="keep COCO 0/1/2 or write 0/1")
    conv.add_argument(
        "--flip-idx", help="flip map of the output points (default: the source category's, else the left/right pairs of the names)"
    )
    conv.add_argument("--sigmas", help="OKS sigmas of the output points, comma-separated (default: the category's kpt_oks_sigmas)")
    conv.add_argument("--kpt-names", help="names of the output points, comma-separated (default: the category's keypoints)")
    conv.add_argument("--names", help="class names, comma-separated, one per category (default: the category names)")
    conv.add_argument("--link", default="symlink", choices=["symlink", "hardlink", "copy"], help="how images are placed")
    conv.add_argument("--overwrite", action="store_true", help="convert a split that --out already holds again, replacing it")
    conv.set_defaults(func=_cmd_convert)

    check = sub.add_parser("check", help="read a dataset with vsynth's validating readers and summarise it")
    check.add_argument("format", choices=["yolo-pose", "coco-keypoints", "coco-detection", "seg", "manifest"])
    check.add_argument(
        "paths", nargs="+",
        help="yolo-pose: DATA_YAML; coco-keypoints / coco-detection: JSON IMAGES_DIR; seg: IMG_DIR ANN_DIR CLASSES_JSON; manifest: CSV",
    )
    check.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
