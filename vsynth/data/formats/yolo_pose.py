"""YOLO-pose folders and their ultralytics data YAML: reader and writer.

Layout (ultralytics' convention, which finds a label by replacing the last ``images`` folder of
an image path with ``labels``)::

    ROOT/images/<split>/<stem>.jpg     ROOT/labels/<split>/<stem>.txt     data.yaml

One label row per object: ``class cx cy w h x1 y1 v1 ... xK yK vK``, all coordinates divided by
the image width/height; an unlabelled point is written ``0 0 0`` (ultralytics rejects
coordinates outside [0, 1]). The YAML holds ``path`` (absolute), the split folders, ``kpt_shape``,
``flip_idx``, ``names`` and, for vsynth and newer ultralytics, ``kpt_names`` and ``kpt_oks_sigmas``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from vsynth.data.formats.io import image_size, list_images, write_text_atomic
from vsynth.data.formats.records import ImageRecord, KeypointAnnotation, KeypointDataset
from vsynth.data.formats.sigmas import read_oks_sigmas
from vsynth.errors import DataError

VISIBILITY_MODES = ("keep", "binary")
_TOLERANCE = 0.01  # normalised coordinates may overshoot [0, 1] by this much (as ultralytics accepts)


@dataclass(frozen=True)
class YoloPoseSpec:
    """What a pose data YAML declares, with split folders resolved to absolute paths."""

    yaml_path: Path
    root: Path
    splits: dict[str, Path]
    kpt_shape: tuple[int, int]
    names: list[str]
    flip_idx: list[int] | None = None
    kpt_names: list[str] | None = None
    kpt_oks_sigmas: list[float] | None = None


def labels_dir_for(images_dir: str | Path) -> Path:
    """The labels folder ultralytics pairs with an images folder (last ``images`` -> ``labels``)."""
    parts = list(Path(images_dir).parts)
    if "images" not in parts:
        raise DataError(f"{images_dir}: a YOLO images folder must have an 'images' component so labels sit in 'labels'")
    i = len(parts) - 1 - parts[::-1].index("images")
    parts[i] = "labels"
    return Path(*parts)


def _names_list(value, path: Path, key: str) -> list[str]:
    if isinstance(value, dict):
        try:
            return [str(value[i]) for i in range(len(value))]
        except KeyError:
            raise DataError(f"{path}: '{key}' must be keyed 0..{len(value) - 1}") from None
    if isinstance(value, list):
        return [str(v) for v in value]
    raise DataError(f"{path}: '{key}' must be a list or a mapping of class index to name")


def read_yolo_pose_yaml(data_yaml: str | Path, relative_root: str = "yaml") -> YoloPoseSpec:
    """Parse a pose data YAML; relative split folders resolve against ``path``.

    ``relative_root`` says what a missing or relative ``path:`` means: ``"yaml"`` resolves it
    against the YAML's folder (convenient for files vsynth wrote); ``"refuse"`` raises instead, for
    training, because ultralytics itself resolves it against its own ``datasets_dir`` setting and
    the same YAML would then mean different folders to the two tools.
    """
    path = Path(data_yaml)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: top level must be a mapping")
    kpt_shape = doc.get("kpt_shape")
    if not (isinstance(kpt_shape, list) and len(kpt_shape) == 2 and all(isinstance(v, int) for v in kpt_shape) and kpt_shape[1] in (2, 3)):
        raise DataError(f"{path}: 'kpt_shape' must be [K, 2] or [K, 3], got {kpt_shape!r}")
    if "names" not in doc:
        raise DataError(f"{path}: missing 'names'")
    names = _names_list(doc["names"], path, "names")
    if relative_root not in ("yaml", "refuse"):
        raise ValueError(f"relative_root must be 'yaml' or 'refuse', got {relative_root!r}")
    given = doc.get("path")
    root = Path(str(given or path.parent)).expanduser()
    if not root.is_absolute() and relative_root == "yaml":
        root = (path.parent / root).resolve()
    splits = {}
    for split in ("train", "val", "test"):
        value = doc.get(split)
        if isinstance(value, str) and value:
            sp = Path(value).expanduser()
            if not sp.is_absolute() and relative_root == "refuse" and (not given or not root.is_absolute()):
                raise DataError(
                    f"{path}: '{split}: {value}' is a relative path and 'path:' is "
                    f"{'missing' if not given else f'relative ({given})'}; set 'path:' to the dataset root as an "
                    "absolute path (ultralytics would resolve it against its own datasets_dir)")
            splits[split] = root / sp
        elif value not in (None, "", []):
            raise DataError(f"{path}: '{split}' must be one folder or list file (lists of folders are not supported)")
    kpt_names = doc.get("kpt_names")
    if isinstance(kpt_names, dict):
        kpt_names = kpt_names.get(0, next(iter(kpt_names.values()), None))
    if kpt_names is not None:
        kpt_names = [str(n) for n in kpt_names]
        if len(kpt_names) != kpt_shape[0]:
            raise DataError(f"{path}: 'kpt_names' has {len(kpt_names)} names for kpt_shape {kpt_shape}")
    flip_idx = doc.get("flip_idx")
    if flip_idx is not None and (not isinstance(flip_idx, list) or len(flip_idx) != kpt_shape[0]):
        raise DataError(f"{path}: 'flip_idx' must list {kpt_shape[0]} indices for kpt_shape {kpt_shape}")
    sigmas = doc.get("kpt_oks_sigmas")
    if sigmas is not None:
        sigmas = read_oks_sigmas(sigmas, kpt_shape[0], str(path))
    return YoloPoseSpec(
        yaml_path=path,
        root=root,
        splits=splits,
        kpt_shape=(kpt_shape[0], kpt_shape[1]),
        names=names,
        flip_idx=[int(v) for v in flip_idx] if flip_idx is not None else None,
        kpt_names=kpt_names,
        kpt_oks_sigmas=sigmas,
    )


def parse_label_file(
    label_path: Path, kpt_shape: tuple[int, int], num_classes: int, width: int, height: int, image_id: int
) -> list[KeypointAnnotation]:
    """One YOLO-pose label file -> annotations in pixels (COCO-style visibility)."""
    k, dims = kpt_shape
    expected = 5 + k * dims
    annotations = []
    try:
        lines = label_path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{label_path}: cannot read ({exc.strerror})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != expected:
            raise DataError(
                f"{label_path}: line {lineno} has {len(fields)} values, expected 5 + {k}*{dims} = {expected} for kpt_shape [{k}, {dims}]"
            )
        try:
            values = np.array([float(f) for f in fields])
        except ValueError:
            raise DataError(f"{label_path}: line {lineno} has a non-numeric value") from None
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            raise DataError(f"{label_path}: line {lineno} has class {fields[0]}, expected an integer in 0..{num_classes - 1}")
        coords = values[1:]
        pts = coords[4:].reshape(k, dims)
        xy = np.concatenate([coords[:4], pts[:, :2].ravel()])
        if xy.min() < -_TOLERANCE or xy.max() > 1 + _TOLERANCE:  # ultralytics' own tolerance
            raise DataError(f"{label_path}: line {lineno} has coordinates outside [0, 1]; YOLO labels are normalised by image size")
        cx, cy, w, h = coords[:4] * [width, height, width, height]
        kpts = np.zeros((k, 3))
        kpts[:, 0] = pts[:, 0] * width
        kpts[:, 1] = pts[:, 1] * height
        kpts[:, 2] = pts[:, 2] if dims == 3 else 2.0
        if dims == 3 and not np.isin(pts[:, 2], (0, 1, 2)).all():
            raise DataError(f"{label_path}: line {lineno} has visibility values other than 0/1/2")
        unlabelled = (kpts[:, 2] == 0) | ((dims == 2) & (pts[:, 0] == 0) & (pts[:, 1] == 0))
        kpts[unlabelled] = 0.0
        annotations.append(
            KeypointAnnotation(
                image_id=image_id,
                category_id=int(cls),
                bbox_xywh=(cx - w / 2, cy - h / 2, w, h),
                keypoints=kpts,
                area=float(w * h),
            )
        )
    return annotations


def read_yolo_pose_folder(
    images_dir: str | Path,
    kpt_shape: Sequence[int],
    class_names: Sequence[str],
    keypoint_names: Sequence[str] | None = None,
    flip_idx: Sequence[int] | None = None,
) -> KeypointDataset:
    """Read one split folder; images without a label file have no objects (as in ultralytics).

    Category ids equal YOLO class indices.
    """
    images_dir = Path(images_dir)
    labels_dir = labels_dir_for(images_dir)
    k, dims = int(kpt_shape[0]), int(kpt_shape[1])
    images, annotations = [], []
    for image_id, image_path in enumerate(list_images(images_dir)):
        width, height = image_size(image_path)
        images.append(ImageRecord(path=image_path, width=width, height=height, id=image_id, file_name=image_path.name))
        label = labels_dir / f"{image_path.stem}.txt"
        if label.is_file():
            annotations += parse_label_file(label, (k, dims), len(class_names), width, height, image_id)
    for n, ann in enumerate(annotations, start=1):
        ann.id = n
    return KeypointDataset(
        images=images,
        annotations=annotations,
        class_names=list(class_names),
        category_ids=list(range(len(class_names))),
        keypoint_names=list(keypoint_names) if keypoint_names is not None else [f"kpt_{i}" for i in range(k)],
        flip_idx=list(flip_idx) if flip_idx is not None else None,
        source=images_dir,
    )


def read_yolo_pose(data_yaml: str | Path, split: str) -> KeypointDataset:
    """Read split ``split`` ('train', 'val' or 'test') of the dataset a pose data YAML describes."""
    spec = read_yolo_pose_yaml(data_yaml)
    if split not in spec.splits:
        raise DataError(f"{spec.yaml_path}: no '{split}' split (has {sorted(spec.splits)})")
    ds = read_yolo_pose_folder(spec.splits[split], spec.kpt_shape, spec.names, spec.kpt_names, spec.flip_idx)
    ds.oks_sigmas = spec.kpt_oks_sigmas
    return ds


def yolo_pose_row(
    ann: KeypointAnnotation,
    class_index: int,
    width: int,
    height: int,
    keypoint_map: Sequence[int] | None = None,
    visibility: str = "keep",
) -> str | None:
    """One label row for ``ann``, or None when its box is empty inside the image.

    The box is clipped to the image; ``keypoint_map[k]`` picks the source point written as point
    k; points unlabelled or outside the image become ``0 0 0``; ``visibility`` 'binary' writes
    every labelled point with v = 1 instead of COCO's 1/2.
    """
    if visibility not in VISIBILITY_MODES:
        raise ValueError(f"visibility must be one of {VISIBILITY_MODES}, got {visibility!r}")
    x, y, w, h = ann.bbox_xywh
    x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    kpts = np.asarray(ann.keypoints, dtype=float)
    if keypoint_map is not None:
        kpts = kpts[list(keypoint_map)]
    box = [((x0 + x1) / 2) / width, ((y0 + y1) / 2) / height, (x1 - x0) / width, (y1 - y0) / height]
    fields = [str(int(class_index))] + [f"{v:.6f}" for v in box]
    for px, py, v in kpts:
        if v > 0 and 0.0 <= px <= width and 0.0 <= py <= height:
            fields += [f"{px / width:.6f}", f"{py / height:.6f}", "1" if visibility == "binary" else str(int(v))]
        else:
            fields += ["0", "0", "0"]
    return " ".join(fields)


def write_yolo_pose_labels(
    dataset: KeypointDataset,
    labels_dir: str | Path,
    keypoint_map: Sequence[int] | None = None,
    visibility: str = "keep",
) -> int:
    """Write one ``<image stem>.txt`` per image into ``labels_dir``; returns the rows written.

    Images without objects get an empty file (a known negative, not a missing label).
    Crowd annotations are skipped. Class index = position of the category id in the dataset.
    """
    labels_dir = Path(labels_dir)
    labels_dir.mkdir(parents=True, exist_ok=True)
    class_of = {cid: i for i, cid in enumerate(dataset.category_ids)}
    by_image = dataset.annotations_by_image()
    rows_written = 0
    for image in dataset.images:
        rows = []
        for ann in by_image.get(image.id, []):
            if ann.iscrowd:
                continue
            row = yolo_pose_row(ann, class_of[ann.category_id], image.width, image.height, keypoint_map, visibility)
            if row is not None:
                rows.append(row)
        (labels_dir / f"{Path(image.file_name or image.path.name).stem}.txt").write_text("".join(r + "\n" for r in rows))
        rows_written += len(rows)
    return rows_written


def data_yaml_doc(
    root: str | Path,
    splits: dict[str, str],
    class_names: Sequence[str],
    kpt_shape: Sequence[int],
    flip_idx: Sequence[int] | None,
    kpt_names: Sequence[str] | None = None,
    kpt_oks_sigmas: Sequence[float] | None = None,
) -> dict:
    """An ultralytics pose data YAML as a mapping: ``root`` becomes the absolute ``path``; ``splits``
    maps 'train'/'val'/'test' to image folders relative to it (written in that order)."""
    doc: dict = {"path": str(Path(root).absolute())}
    doc.update({split: str(splits[split]) for split in ("train", "val", "test") if split in splits})
    doc["kpt_shape"] = [int(v) for v in kpt_shape]
    if flip_idx is not None:
        doc["flip_idx"] = [int(v) for v in flip_idx]
    doc["names"] = {i: str(n) for i, n in enumerate(class_names)}
    if kpt_names is not None:
        doc["kpt_names"] = {i: [str(n) for n in kpt_names] for i in range(len(class_names))}
    if kpt_oks_sigmas is not None:
        doc["kpt_oks_sigmas"] = [float(v) for v in kpt_oks_sigmas]
    return doc


def merge_data_yaml(yaml_path: str | Path, new: dict, replace_splits: bool = False) -> dict:
    """``new`` (a `data_yaml_doc`) added to the data YAML already at ``yaml_path``, if any.

    One folder holds one dataset: ``path``, ``kpt_shape``, ``names``, and ``flip_idx``,
    ``kpt_names``, ``kpt_oks_sigmas`` where both sides have them, must agree (a DataError names the
    first field that differs). The existing file's splits and other keys are kept, a field only
    one side has is kept, and ``new``'s splits are added; a split the file already lists is
    refused unless ``replace_splits``.
    """
    path = Path(yaml_path)
    if not path.exists():
        return new
    spec = read_yolo_pose_yaml(path)
    old = yaml.safe_load(path.read_text(encoding="utf-8"))
    ours = YoloPoseSpec(
        yaml_path=path,
        root=Path(new["path"]),
        splits={},
        kpt_shape=tuple(new["kpt_shape"]),
        names=list(new["names"].values()),
        flip_idx=new.get("flip_idx"),
        kpt_names=(new.get("kpt_names") or {}).get(0),
        kpt_oks_sigmas=new.get("kpt_oks_sigmas"),
    )
    for field in ("root", "kpt_shape", "names", "flip_idx", "kpt_names", "kpt_oks_sigmas"):
        have, want = getattr(spec, field), getattr(ours, field)
        if field == "root":
            have, want = have.resolve(), want.resolve()
        if have is not None and want is not None and have != want:
            key = "path" if field == "root" else field
            raise DataError(
                f"{path}: '{key}' is {_show(have)} there but {_show(want)} in this conversion; one folder holds one "
                "dataset schema: convert into another --out, or give options that match the file"
            )
    split_keys = ("train", "val", "test")
    again = [s for s in split_keys if s in new and old.get(s)]
    if again and not replace_splits:
        raise DataError(
            f"{path}: already lists the '{again[0]}' split ({old[again[0]]}); pass --overwrite to convert it again"
        )
    merged = {"path": old.get("path") or new["path"]}
    merged.update({s: new.get(s) or old.get(s) for s in split_keys if new.get(s) or old.get(s)})
    for key in ("kpt_shape", "flip_idx", "names", "kpt_names", "kpt_oks_sigmas"):
        value = old.get(key) if old.get(key) is not None else new.get(key)
        if value is not None:
            merged[key] = value
    merged.update({k: v for k, v in old.items() if k not in merged})
    return merged


def _show(value: object) -> str:
    return str(value) if isinstance(value, Path) else repr(list(value) if isinstance(value, tuple) else value)


def write_yolo_data_yaml(yaml_path: str | Path, doc: dict) -> Path:
    """Write a data YAML mapping (a `data_yaml_doc`, maybe merged) atomically, replacing any file
    there; lists stay on one line, as in ultralytics' own files."""
    out = Path(yaml_path)
    write_text_atomic(out, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=1000))
    return out
