"""Detection sources: COCO detection JSON + an images folder of any name, per source and split.

* :func:`read_coco_boxes` reads one annotation file, strict with images, categories and
  references (one-line errors from ``vsynth.data.formats``) but lenient with boxes: a degenerate
  box (non-finite, zero or negative width/height, or entirely outside its image) is dropped, and
  a box sticking out of its image is clipped, with ONE warning line per file giving the counts,
  so one bad box never crashes a run mid-epoch. A file without images or without any usable box
  is an error (one line naming the file). Start-up at COCO scale is the reason for its two
  routes: a well-formed file is decoded into compact typed records (msgspec) and cleaned
  vectorised, at a third of the time and memory of ``json.load`` + a loop; anything else is
  read by the stdlib and cleaned box by box, with the same result.
* Classes are ordered by category id, as YOLOX's own ``COCODataset`` orders them, so a checkpoint
  trained by YOLOX on the same files scores correctly here; every source must have the same class
  names in the same order (checked with ``vsynth.data.formats.classes.check_same_classes``).
* :class:`YoloxBoxes` serves one source to YOLOX's ``MosaicDetection`` (``pull_item``,
  ``load_anno``, ``input_dim``), exactly like YOLOX's ``COCODataset`` does;
  :class:`EvalImages` letterboxes images as YOLOX's ``ValTransform`` for evaluation.
* :class:`DetectionData` resolves ``data.<source>.<split>`` (``coco`` + ``images``), filling in
  the built-in demo world when ``data.demo.enabled`` and a path is not given, and reads a file
  that several splits name (``val`` = ``test``) once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Mapping

import cv2
import msgspec
import numpy as np

from vsynth.data.formats.coco_detection import box_summary, clean_box
from vsynth.errors import ConfigError, DataError
from yolox.data.datasets.datasets_wrapper import Dataset as _YoloxDataset

log = logging.getLogger("vsynth.detection")

SPLITS = ("train", "val", "test")


@dataclass
class BoxSet:
    """One COCO detection file, cleaned: per image ``boxes`` (N, 4) xyxy pixels, ``labels`` (N,)
    class indices, ``areas`` (N,) COCO areas, ``crowd`` (N,) bools."""

    path: Path
    images_dir: Path
    files: list[Path]
    image_ids: list[int]
    sizes: list[tuple[int, int]]  # (height, width) from the annotation file
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    areas: list[np.ndarray]
    crowd: list[np.ndarray]
    class_names: list[str]
    category_ids: list[int]
    dropped: int = 0
    clipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_boxes(self) -> int:
        return int(sum(len(b) for b in self.boxes))

    def subset(self, indices: list[int] | np.ndarray) -> "BoxSet":
        idx = [int(i) for i in indices]
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return BoxSet(self.path, self.images_dir, pick(self.files), pick(self.image_ids), pick(self.sizes),
                      pick(self.boxes), pick(self.labels), pick(self.areas), pick(self.crowd), self.class_names,
                      self.category_ids, self.dropped, self.clipped, dict(self.extra))


def read_coco_boxes(images_dir: str | Path, annotation_json: str | Path, key: str, check_images: bool = True) -> BoxSet:
    """Read and clean one COCO detection file (see the module docstring); ``key`` names it in messages.

    A well-formed file is decoded once into compact typed records holding only what is used
    (msgspec; masks and other fields are skipped unread), turned into columns and released before
    the per-image arrays are built. Anything that does not fit those records is read again by the
    stdlib and cleaned box by box, which gives the same result for what is valid and names the
    first entry at fault.
    """
    path = Path(str(annotation_json)).expanduser()
    images_dir = Path(str(images_dir)).expanduser()
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: image folder not found ({key})")
    read = _read_typed(path, images_dir, check_images) or _read_one_by_one(path, images_dir, key, check_images)
    images, cats, (boxes, labels, areas, crowd, total, dropped, clipped) = read
    if (warning := box_summary(path, total, dropped, clipped, key)) is not None:
        log.warning("%s", warning)
    order = list(images)
    return BoxSet(
        path=path,
        images_dir=images_dir,
        files=[images[i].path for i in order],
        image_ids=order,
        sizes=[(images[i].height, images[i].width) for i in order],
        boxes=boxes,
        labels=labels,
        areas=areas,
        crowd=crowd,
        class_names=[name for _, name in cats],
        category_ids=[cid for cid, _ in cats],
        dropped=dropped,
        clipped=clipped,
    )


# (boxes, labels, areas, crowd) per image, then the total, dropped and clipped annotation counts
PerImage = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray], int, int, int]
# what a reader returns: image records by id (file order), (category id, name) sorted by id, per image arrays
Read = tuple[dict, list[tuple[int, str]], PerImage]


class _Image(msgspec.Struct, gc=False):
    id: int
    file_name: str
    width: int
    height: int


class _Box(msgspec.Struct, gc=False):
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float | msgspec.UnsetType = msgspec.UNSET
    iscrowd: int = 0


class _Category(msgspec.Struct):
    id: int
    name: str


class _BoxFile(msgspec.Struct):
    images: list[_Image]
    annotations: list[_Box]
    categories: list[_Category]


def _read_typed(path: Path, images_dir: Path, check_images: bool) -> Read | None:
    """The fast reader; None when the file does not fit the typed records, lists no image, or
    has a bad reference (the stdlib reader then names the problem)."""
    from vsynth.data.formats.coco_common import image_records

    try:
        doc = msgspec.json.decode(path.read_bytes(), type=_BoxFile)
    except (OSError, msgspec.DecodeError):
        return None
    ids = [c.id for c in doc.categories]
    if not doc.images or not ids or len(set(ids)) != len(ids):
        return None
    cats = sorted(((c.id, c.name) for c in doc.categories), key=lambda c: c[0])  # YOLOX's class order
    images = image_records(((im.id, im.file_name, im.width, im.height) for im in doc.images), path, images_dir,
                           check_images)
    anns, n = doc.annotations, len(doc.annotations)
    del doc

    def column(field: str, dtype: type) -> np.ndarray:
        return np.fromiter(map(attrgetter(field), anns), dtype=dtype, count=n)

    area = [a.area for a in anns]
    columns = {
        "image": column("image_id", np.int64),
        "category": column("category_id", np.int64),
        "bbox": np.array([a.bbox for a in anns], dtype=np.float64).reshape(n, 4),
        "has_area": np.fromiter((a is not msgspec.UNSET for a in area), dtype=bool, count=n),
        "area": np.fromiter((0.0 if a is msgspec.UNSET else a for a in area), dtype=np.float64, count=n),
        "crowd": column("iscrowd", np.int64) != 0,
    }
    del anns, area  # the decoded records: only the columns are kept
    per_image = _boxes_by_columns(columns, images, [c[0] for c in cats])
    return None if per_image is None else (images, cats, per_image)


def _boxes_by_columns(col: dict[str, np.ndarray], images: dict, category_ids: list[int]) -> PerImage | None:
    """`_boxes_one_by_one`, vectorised; None when an annotation refers to a missing image or
    category (the one-by-one path names it)."""
    order = list(images)
    n = col["image"].size
    image_ids = np.array(order, dtype=np.int64)
    by_id = np.argsort(image_ids, kind="stable")
    pos = by_id[np.minimum(np.searchsorted(image_ids[by_id], col["image"]), len(order) - 1)]
    cats = np.array(category_ids, dtype=np.int64)  # sorted
    label = np.minimum(np.searchsorted(cats, col["category"]), len(cats) - 1)
    if (image_ids[pos] != col["image"]).any() or (cats[label] != col["category"]).any():
        return None
    x, y, w, h = (col["bbox"][:, i] for i in range(4))
    width = np.array([images[i].width for i in order], dtype=np.float64)[pos]
    height = np.array([images[i].height for i in order], dtype=np.float64)[pos]
    with np.errstate(invalid="ignore"):  # the same arithmetic as clean_box, box by box
        x2, y2 = x + w, y + h
        cx1, cy1 = np.maximum(x, 0.0), np.maximum(y, 0.0)
        cx2, cy2 = np.minimum(x2, width), np.minimum(y2, height)
        ok = np.isfinite(col["bbox"]).all(axis=1) & (w > 0) & (h > 0) & (cx2 - cx1 > 0) & (cy2 - cy1 > 0)
    clipped = ok & ((cx1 != x) | (cy1 != y) | (cx2 != x2) | (cy2 != y2))
    area = np.where(col["has_area"], col["area"], (cx2 - cx1) * (cy2 - cy1))
    keep = np.flatnonzero(ok)
    grouped = keep[np.argsort(pos[keep], kind="stable")]  # by image, annotation order within an image
    ends = np.cumsum(np.bincount(pos[keep], minlength=len(order))).tolist()
    starts = [0] + ends[:-1]
    xyxy = np.stack([cx1, cy1, cx2, cy2], axis=1)

    def split(values: np.ndarray) -> list[np.ndarray]:  # views of one array per column (np.split is 5x slower)
        values = values[grouped]
        return [values[a:b] for a, b in zip(starts, ends)]

    return (split(xyxy), split(label.astype(np.int64)), split(area), split(col["crowd"]), n, int(n - keep.size),
            int(clipped.sum()))


def _read_one_by_one(path: Path, images_dir: Path, key: str, check_images: bool) -> Read:
    """The stdlib reader: every entry checked, one-line errors naming the entry at fault."""
    from vsynth.data.formats.coco_common import parse_categories, parse_images, require_list
    from vsynth.data.formats.io import load_json

    if path.is_file() and not path.read_bytes().strip():
        raise DataError(f"{path}: empty annotation file ({key})")
    doc = load_json(path)
    images = parse_images(doc, path, images_dir, check_images)
    if not images:
        raise DataError(f"{path}: no images listed ({key}); an empty annotation file?")
    cats = sorted(parse_categories(doc, path), key=lambda c: int(c["id"]))
    cat_pairs = [(int(c["id"]), str(c["name"])) for c in cats]
    anns = require_list(doc, "annotations", path)
    return images, cat_pairs, _boxes_one_by_one(anns, path, images, list(images), [c for c, _ in cat_pairs])


def _boxes_one_by_one(anns: list, path: Path, images: dict, order: list[int], category_ids: list[int]) -> PerImage:
    """Per image arrays, box by box: refs checked (one-line errors), degenerate boxes dropped,
    boxes clipped to their image."""
    from vsynth.data.formats.coco_common import check_refs

    class_of = {cid: i for i, cid in enumerate(category_ids)}
    pos = {image_id: i for i, image_id in enumerate(order)}
    boxes: list[list] = [[] for _ in order]
    labels: list[list] = [[] for _ in order]
    areas: list[list] = [[] for _ in order]
    crowd: list[list] = [[] for _ in order]
    dropped = clipped = 0
    for n, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotations[{n}] is not an object")
        image_id, category_id = check_refs(ann, path, n, images, set(category_ids))
        rec = images[image_id]
        box, was_clipped = clean_box(ann.get("bbox"), rec.width, rec.height)
        if box is None:
            dropped += 1
            continue
        clipped += int(was_clipped)
        i = pos[image_id]
        boxes[i].append(box)
        labels[i].append(class_of[category_id])
        try:
            area = float(ann.get("area", (box[2] - box[0]) * (box[3] - box[1])))
        except (TypeError, ValueError):
            raise DataError(f"{path}: annotations[{n}] (id {ann.get('id')}) has a non-numeric 'area'") from None
        areas[i].append(area)
        crowd[i].append(bool(ann.get("iscrowd", 0)))
    return (
        [np.array(b, dtype=np.float64).reshape(-1, 4) for b in boxes],
        [np.array(lb, dtype=np.int64) for lb in labels],
        [np.array(a, dtype=np.float64) for a in areas],
        [np.array(c, dtype=bool) for c in crowd],
        len(anns),
        dropped,
        clipped,
    )


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: cannot read image")
    return img


def seeded_subset(n_total: int, n: int, seed: int, key: str) -> np.ndarray:
    """The first ``n`` of a seeded permutation (depends on ``data.subset_seed`` only, never on ``seed``)."""
    if n > n_total:
        raise ConfigError(f"{key}={n} is larger than the {n_total} training images")
    if n < 1:
        raise ConfigError(f"{key}={n} must be >= 1")
    return np.random.default_rng(int(seed)).permutation(n_total)[:n]


# ---- YOLOX-facing datasets ----------------------------------------------------------------------
class YoloxBoxes(_YoloxDataset):
    """One source as YOLOX's ``COCODataset`` presents it to ``MosaicDetection``.

    ``pull_item(i)`` -> (image resized to fit ``input_dim``, labels (N, 5) ``[x1, y1, x2, y2, class]``
    in resized pixels, (height, width) of the original, ``[image id]``). Crowd boxes are left out
    of training, as in YOLOX.
    """

    def __init__(self, boxes: BoxSet, img_size: tuple[int, int]) -> None:
        super().__init__(tuple(img_size))
        self.set = boxes
        self.img_size = tuple(img_size)
        self._labels = []
        for b, lb, cr in zip(boxes.boxes, boxes.labels, boxes.crowd):
            keep = ~np.asarray(cr, dtype=bool)
            self._labels.append(np.concatenate([b[keep], lb[keep, None].astype(np.float64)], axis=1).reshape(-1, 5))

    def __len__(self) -> int:
        return len(self.set)

    def _ratio(self, h: int, w: int) -> float:
        return min(self.img_size[0] / h, self.img_size[1] / w)

    def load_anno(self, index: int) -> np.ndarray:
        h, w = self.set.sizes[index]
        res = self._labels[index].copy()
        res[:, :4] *= self._ratio(h, w)
        return res

    def pull_item(self, index: int):
        img = read_image(self.set.files[index])
        h, w = img.shape[:2]
        r = self._ratio(h, w)
        img = cv2.resize(img, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
        res = self._labels[index].copy()
        res[:, :4] *= r
        return img, res, (h, w), np.array([self.set.image_ids[index]])


class EvalImages:
    """Letterboxed evaluation images (YOLOX's ``ValTransform``: resize to fit, pad right/bottom
    with 114, BGR float 0-255, CHW); items are ``(image, ratio, index)``."""

    def __init__(self, boxes: BoxSet, test_size: tuple[int, int]) -> None:
        self.set = boxes
        self.test_size = tuple(test_size)

    def __len__(self) -> int:
        return len(self.set)

    def __getitem__(self, index: int):
        from yolox.data.data_augment import preproc

        img = read_image(self.set.files[index])
        x, r = preproc(img, self.test_size)
        return x, float(r), index


def collate_train(samples: list) -> dict[str, Any]:
    """YOLOX training items (img CHW float32, padded labels (max_labels, 5) [cls, cx, cy, w, h], info, id)."""
    import torch

    imgs = torch.from_numpy(np.stack([s[0] for s in samples]))
    targets = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.float32))
    return {"img": imgs, "targets": targets}


def collate_eval(samples: list) -> tuple[Any, list[float], list[int]]:
    import torch

    return torch.from_numpy(np.stack([s[0] for s in samples])), [s[1] for s in samples], [s[2] for s in samples]


# ---- where the files are --------------------------------------------------------------------
class DetectionData:
    """Resolves ``data.<source>.<split>.{coco,images}`` (the demo fills what is null) and reads each
    file once, also when several splits name the same file and images folder."""

    def __init__(self, data_cfg: Mapping[str, Any], cache: Path, check_images: bool = True) -> None:
        self.cfg = data_cfg
        self.cache = cache
        self.check_images = check_images
        self._demo_root: Path | None = None
        self._sets: dict[tuple[str, str], BoxSet] = {}
        self._files: dict[tuple[Path, Path], tuple[BoxSet, str]] = {}  # each file parsed once, whichever split names it

    def _demo(self) -> Path | None:
        demo = self.cfg.get("demo") or {}
        if not demo.get("enabled", False):
            return None
        if self._demo_root is None:
            from vsynth.data.demo.settings import demo_world

            self._demo_root = demo_world("detection", demo, self.cache)
        return self._demo_root

    def user_keys(self, source: str) -> list[str]:
        """The ``data.<source>.<split>.{coco,images}`` keys the user set: any makes the source the user's."""
        scfg = self.cfg.get(source) or {}
        return [f"data.{source}.{split}.{k}" for split, entry in scfg.items() if isinstance(entry, Mapping)
                for k in ("coco", "images") if entry.get(k) is not None]

    def locate(self, source: str, split: str) -> tuple[Path, Path] | None:
        """(images folder, annotation file) of ``source``/``split``, or None if not configured.

        A source the user set any path for is the user's in every split (the demo world never fills in
        part of it); a source with nothing set comes from the demo world when it is enabled.
        """
        entry = (self.cfg.get(source) or {}).get(split) or {}
        coco, images = entry.get("coco"), entry.get("images")
        given = self.user_keys(source)
        if given:
            if coco is None:
                raise ConfigError(f"data.{source}.{split}.coco: not set, but {given[0]} is (the demo world never fills "
                                  "in part of a source you give)")
            if images is None:
                raise ConfigError(f"data.{source}.{split}.images: the image folder of {coco} is not set")
            self._said(source, f"your data ({', '.join(given[:2])}{', ...' if len(given) > 2 else ''})")
            return Path(str(images)).expanduser(), Path(str(coco)).expanduser()
        root = self._demo()
        if root is None:
            return None
        self._said(source, f"the demo world (nothing set under data.{source})")
        from vsynth.data.demo.writer import DETECTION_IMAGE_FOLDERS

        if source not in DETECTION_IMAGE_FOLDERS:
            return None
        ann = root / "detection" / source / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            return None
        return root / "detection" / source / DETECTION_IMAGE_FOLDERS[source] / split, ann

    def _said(self, source: str, origin: str) -> None:
        said = self.__dict__.setdefault("_origins", set())
        if source not in said:
            said.add(source)
            log.info("source %s: %s", source, origin)

    def get(self, source: str, split: str) -> BoxSet:
        key = (source, split)
        if key not in self._sets:
            where = self.locate(source, split)
            cfg_key = f"data.{source}.{split}"
            if where is None:
                raise ConfigError(f"{cfg_key}.coco: no annotation file set for source '{source}', split '{split}'")
            images, ann = where
            if not ann.is_file():
                raise DataError(f"{ann}: annotation file not found ({cfg_key}.coco)")
            file_key = (ann.resolve(), images.resolve())
            if file_key in self._files:
                s, first = self._files[file_key]
                log.info("%s: the same file and images as %s (%s), read once", cfg_key, first, ann)
            else:
                s = read_coco_boxes(images, ann, cfg_key, check_images=self.check_images)
                self._files[file_key] = (s, cfg_key)
                log.info("%s: %d images, %d boxes, %d classes (%s)", cfg_key, len(s), s.num_boxes, len(s.class_names), ann)
            self._sets[key] = s
        return self._sets[key]

    def classes(self, used: list[tuple[str, str]]) -> list[str]:
        """The common class list of the given (source, split) files; differing lists are a DataError."""
        from vsynth.data.formats.classes import check_same_classes

        named = {f"{s}/{sp}": self.get(s, sp).class_names for s, sp in used}
        return check_same_classes(named)
