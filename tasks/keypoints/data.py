"""Where the keypoint data comes from: real YOLO-pose splits, synthetic COCO converted once, the demo.

Sources (``data.*``):

* ``real``: an ultralytics data YAML (``data.real.yaml``: ``path`` + ``train``/``val``/``test``,
  ``kpt_shape``, ``flip_idx``, optional ``kpt_names``/``kpt_oks_sigmas``) or a YOLO-pose folder
  (``data.real.root`` with ``images/{train,val,test}`` and ``labels/...``);
* ``synthetic``: a COCO keypoints JSON (``data.synthetic.coco``) with its images, converted once
  to YOLO-pose with a keypoint map (``data.synthetic.keypoint_map``: real point i = synthetic point
  ``keypoint_map[i]``, e.g. the first 14 of 24) into ``${paths.cache}/converted`` and reused while
  the JSON and the map are unchanged. Held-out synthetic frames (for the ``synth_only`` arm's
  in-domain check) come from ``val_coco``/``test_coco`` or a deterministic ``holdout`` split;
* the demo world (``data.demo.enabled``): generated once into ``${paths.cache}`` and then read
  through exactly the same two paths (a data YAML for real, a COCO JSON for synthetic).

The keypoint schema (count, names, flip map, OKS sigmas) is one for the whole run: taken from
``data.keypoints`` if set, else from the real data, else from the synthetic data; every source
must have the same keypoint count after the map. The real subset used by arms A and B
(``arm.sources.real.subset``, normally ``${data.real_subset}``) is a seeded draw from the real
train split that depends only on ``data.subset_seed``, so every arm and seed trains on the same
frames; the drawn list is written into the run folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vsynth.data.arms import draw_subset
from vsynth.errors import ConfigError, DataError

log = logging.getLogger("vsynth.keypoints")

SPLITS = ("train", "val", "test")
IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: bump when the converted layout changes, so old caches are rebuilt
CONVERT_VERSION = 1


@dataclass
class Schema:
    """The run's keypoint schema."""

    k: int
    ndim: int = 3
    names: list[str] | None = None
    flip_idx: list[int] | None = None
    sigmas: list[float] | None = None
    origin: str = ""
    flip_origin: str = ""
    class_name: str = "object"  # the one class YOLO-pose detects here, named by the data

    @property
    def kpt_shape(self) -> list[int]:
        return [self.k, self.ndim]


@dataclass
class SplitSet:
    """One dataset's splits: each an image folder or a list file (ultralytics accepts both)."""

    name: str
    key: str  # the config key that names it, for messages
    splits: dict[str, str] = field(default_factory=dict)
    k: int | None = None
    ndim: int = 3
    names: list[str] | None = None
    flip_idx: list[int] | None = None
    sigmas: list[float] | None = None
    class_name: str | None = None  # the data's class name(s)


def _plain(x: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(x):
            return OmegaConf.to_container(x, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return x


# ---- real: ultralytics data YAML or a YOLO-pose folder -----------------------------------------

def read_data_yaml(path: str | Path, key: str = "data.real.yaml") -> SplitSet:
    """An ultralytics pose data YAML (read by ``vsynth.data.formats``), every split an existing path.

    A relative split needs an absolute ``path:`` (see ``read_yolo_pose_yaml(relative_root="refuse")``).
    """
    from vsynth.data.formats import read_yolo_pose_yaml

    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise DataError(f"{key}={p}: file not found")
    try:
        spec = read_yolo_pose_yaml(p, relative_root="refuse")
    except DataError as e:  # the reader names the file; the key goes in front
        raise DataError(f"{key}={e}") from e
    out = SplitSet(name="real", key=key)
    for split, sp in spec.splits.items():
        if not sp.exists():
            raise DataError(f"{key}={p}: '{split}' -> {sp} does not exist")
        out.splits[split] = str(sp)
    for split in ("train", "val"):
        if split not in out.splits:
            raise DataError(f"{key}={p}: no '{split}' split")
    if "test" not in out.splits:
        log.warning("%s=%s has no 'test' split: the final test scores the val split", key, p)
        out.splits["test"] = out.splits["val"]
    out.k, out.ndim = spec.kpt_shape
    out.class_name = "+".join(str(n) for n in spec.names) if spec.names else None  # single_cls: one class
    out.flip_idx = list(spec.flip_idx) if spec.flip_idx is not None else None
    out.names = list(spec.kpt_names) if spec.kpt_names else None
    out.sigmas = list(spec.kpt_oks_sigmas) if spec.kpt_oks_sigmas is not None else None
    return out


def read_yolo_root(root: str | Path, key: str = "data.real.root") -> SplitSet:
    """A YOLO-pose folder ``root/images/{train,val,test}`` (+ ``root/labels/...``)."""
    r = Path(str(root)).expanduser()
    if not r.is_dir():
        raise DataError(f"{key}={r}: folder not found")
    out = SplitSet(name="real", key=key)
    for split in SPLITS:
        d = r / "images" / split
        if d.is_dir():
            out.splits[split] = str(d.resolve())
    for split in ("train", "val"):
        if split not in out.splits:
            raise DataError(f"{key}={r}: no images/{split} folder")
    out.splits.setdefault("test", out.splits["val"])
    out.k, out.ndim = _kpt_shape_from_labels(r / "labels" / "train", key)
    return out


def _kpt_shape_from_labels(labels: Path, key: str) -> tuple[int, int]:
    for f in sorted(labels.glob("*.txt")):
        for line in f.read_text().splitlines():
            n = len(line.split()) - 5
            if n > 0:
                return (n // 3, 3) if n % 3 == 0 else (n // 2, 2)
    raise DataError(f"{key}: no keypoint labels found in {labels}")


# ---- synthetic: COCO keypoints, converted once ---------------------------------------------------

def _coco_names(coco: Path, key: str) -> tuple[list[str] | None, list[int] | None, list[float] | None, int, str | None]:
    """Keypoint names, the flip map and OKS sigmas if the category has them, the keypoint count and
    the category's name."""
    try:
        d = json.loads(coco.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{key}={coco}: not a readable COCO JSON ({e})") from e
    cats = [c for c in d.get("categories", []) if c.get("keypoints")]
    if not cats:
        raise DataError(f"{key}={coco}: no category with 'keypoints' (not a COCO keypoints file)")
    c = cats[0]
    names = [str(n) for n in c["keypoints"]]
    flip = c.get("flip_idx")
    sigmas = c.get("kpt_oks_sigmas") or c.get("sigmas")
    if not d.get("images") or not d.get("annotations"):
        raise DataError(f"{key}={coco}: no images or no annotations (empty source)")
    return (names, [int(i) for i in flip] if flip else None, [float(v) for v in sigmas] if sigmas else None,
            len(names), str(c["name"]) if c.get("name") else None)


def convert_synthetic(coco: Path, images: Path | None, keypoint_map: Sequence[int] | None, cache: Path,
                      key: str, split: str = "train") -> Path:
    """The images folder of ``coco`` converted to YOLO-pose with ``keypoint_map``, converted once.

    The conversion is ``vsynth.data.formats.cached_coco_to_yolo_pose`` (the same one as
    ``python -m vsynth.data convert-coco-pose``), cached under ``${paths.cache}/converted/keypoints``
    and keyed by the JSON's size and mtime and the options, so an edited source is converted again.
    """
    from vsynth.data.formats import cached_coco_to_yolo_pose

    images = images or coco.parent
    cache_dir = cache / "converted" / "keypoints"
    started = time.time_ns()
    try:
        result = cached_coco_to_yolo_pose(coco, images, cache_dir, split=split, keypoint_map=keypoint_map)
    except (DataError, ConfigError) as e:
        raise type(e)(f"{key}: {e}") from e
    if result.num_objects == 0:
        raise DataError(f"{key}={coco}: no object survived the conversion (empty source)")
    reused = (result.out_dir / "conversion.json").stat().st_mtime_ns < started
    log.info("%s: %s %s as YOLO-pose in %s (%d images, %d objects, keypoint map %s)", key,
             "reusing the conversion of" if reused else "converted", coco, result.out_dir,
             result.num_images, result.num_objects, list(keypoint_map) if keypoint_map is not None else "all")
    return result.images_dir


def _images_in(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMG_EXT)


def write_list(path: Path, files: Sequence[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(f"{f}\n" for f in files))
    os.replace(tmp, path)
    return str(path)


# ---- the whole data configuration ---------------------------------------------------------------

class KeypointData:
    """Resolves ``data.*`` into splits and the run's keypoint schema (lazily: only what the arm uses)."""

    def __init__(self, cfg, cache: Path, run_dir: Path) -> None:
        self.cfg = cfg
        self.data = cfg.data
        self.cache = Path(str(cache)).expanduser()
        self.run_dir = Path(run_dir)
        self._real: SplitSet | None = None
        self._synthetic: SplitSet | None = None
        self._demo: dict[str, Any] | None = None

    # ---- demo ---------------------------------------------------------------------------------
    def demo(self) -> dict[str, Any] | None:
        demo = self.data.get("demo") or {}
        if not demo.get("enabled", False):
            return None
        if self._demo is None:
            from tasks.keypoints.demo import demo_sources

            self._demo = demo_sources(demo, self.cache)
        return self._demo

    # ---- sources ------------------------------------------------------------------------------
    def real(self) -> SplitSet:
        if self._real is None:
            rc = self.data.get("real") or {}
            if rc.get("yaml") and rc.get("root"):
                raise ConfigError(f"data.real: set data.real.yaml or data.real.root, not both ({rc.yaml}, {rc.root})")
            if rc.get("yaml"):
                self._real = read_data_yaml(rc.yaml)
                log.info("source real: your data (data.real.yaml=%s)", rc.yaml)
            elif rc.get("root"):
                self._real = read_yolo_root(rc.root)
                log.info("source real: your data (data.real.root=%s)", rc.root)
            elif (d := self.demo()) is not None:  # the demo fills only a source the user set nothing for
                self._real = read_data_yaml(d["real_yaml"], key="data.demo (real data YAML)")
                log.info("source real: the demo world (nothing set under data.real)")
            else:
                raise ConfigError("data.real: set data.real.yaml (an ultralytics data YAML) or data.real.root "
                                  "(a YOLO-pose folder), or data.demo.enabled=true")
        return self._real

    #: the synthetic source's path keys: any of them set makes it the user's source, the demo never fills it in
    SYNTHETIC_PATHS = ("coco", "images", "val_coco", "test_coco", "val_images", "test_images")

    def synthetic(self) -> SplitSet:
        if self._synthetic is None:
            sc = self.data.get("synthetic") or {}
            given = [k for k in self.SYNTHETIC_PATHS if sc.get(k)]
            d = None if given else self.demo()  # the demo fills only a source the user set nothing for
            coco = sc.get("coco") if given else (d or {}).get("synthetic_coco")
            if not coco:
                raise ConfigError(f"data.synthetic.coco: not set, but data.synthetic.{given[0]} is (the demo world "
                                  "never fills in part of a source you give)" if given else
                                  "data.synthetic.coco: the arm uses a synthetic source but no COCO keypoints JSON "
                                  "is configured")
            log.info("source synthetic: %s", "your data (data.synthetic.coco=%s)" % coco if given else
                     "the demo world (nothing set under data.synthetic)")
            key = "data.synthetic.coco"
            coco = Path(str(coco)).expanduser()
            if not coco.is_file():
                raise DataError(f"{key}={coco}: file not found")
            images = sc.get("images") or (d or {}).get("synthetic_images")
            images = Path(str(images)).expanduser() if images else None
            if images is not None and not images.is_dir():
                raise DataError(f"data.synthetic.images={images}: folder not found")
            names, flip, sigmas, k_src, cat_name = _coco_names(coco, key)
            sigmas = sigmas or (d or {}).get("synthetic_sigmas")
            kmap = _plain(sc.get("keypoint_map"))
            if kmap is not None:
                kmap = [int(i) for i in kmap]
                bad = [i for i in kmap if not 0 <= i < k_src]
                if bad or len(set(kmap)) != len(kmap):
                    raise ConfigError(f"data.synthetic.keypoint_map: {kmap} must pick distinct indices in "
                                      f"[0, {k_src}) of the {k_src} synthetic keypoints")
            picked = kmap if kmap is not None else list(range(k_src))
            out = SplitSet(name="synthetic", key=key, k=len(picked), ndim=3, class_name=cat_name,
                           names=[names[i] for i in picked] if names else None,
                           sigmas=[float(sigmas[i]) for i in picked] if sigmas and len(sigmas) == k_src else None)
            if flip is not None:  # the map must be closed under the synthetic flip
                mapped = [flip[i] for i in picked]
                if all(m in picked for m in mapped):
                    out.flip_idx = [picked.index(m) for m in mapped]
                else:
                    raise ConfigError(
                        f"data.synthetic.keypoint_map: {picked} keeps a point whose left/right partner it drops "
                        f"(synthetic flip map {flip}); keep both points of every pair")
            conv = convert_synthetic(coco, images, kmap, self.cache, key)
            train = _images_in(conv)
            if not train:
                raise DataError(f"{key}={coco}: the conversion produced no images (empty source)")
            out.splits["train"] = str(conv)
            held = {s: sc.get(f"{s}_coco") or (d or {}).get(f"synthetic_{s}_coco") for s in ("val", "test")}
            if held["val"] or held["test"]:
                for s, c in held.items():
                    other = "test" if s == "val" else "val"
                    use = s if c else other  # one held-out file serves both when only one is given
                    c = Path(str(held[use])).expanduser()
                    if not c.is_file():
                        raise DataError(f"data.synthetic.{use}_coco={c}: file not found")
                    imgs = sc.get(f"{use}_images") or (d or {}).get(f"synthetic_{use}_images") or images
                    imgs = Path(str(imgs)).expanduser() if imgs else None
                    out.splits[s] = str(convert_synthetic(c, imgs, kmap, self.cache, f"data.synthetic.{use}_coco",
                                                          split=use))
            else:
                frac = float(sc.get("holdout", 0.2))
                if not 0 < frac < 1:
                    raise ConfigError(f"data.synthetic.holdout must be in (0, 1), got {frac}")
                order = draw_subset(train, len(train), int(self.data.get("subset_seed", 0)))
                n_hold = max(2, int(round(frac * len(train))))
                if n_hold >= len(train):
                    raise DataError(f"{key}={coco}: {len(train)} images are too few to hold out {frac:.0%}")
                rng = np.random.default_rng(np.random.SeedSequence([int(self.data.get("subset_seed", 0)), 7]))
                perm = [order[i] for i in rng.permutation(len(order))]
                hold, keep = perm[:n_hold], sorted(perm[n_hold:])
                lists = conv.parent.parent / "lists"
                out.splits["train"] = write_list(lists / "train.txt", keep)
                out.splits["val"] = write_list(lists / "val.txt", sorted(hold[: n_hold // 2]))
                out.splits["test"] = write_list(lists / "test.txt", sorted(hold[n_hold // 2 :]))
            self._synthetic = out
        return self._synthetic

    def source(self, name: str) -> SplitSet:
        if name == "real":
            return self.real()
        if name == "synthetic":
            return self.synthetic()
        raise ConfigError(f"arm.sources.{name}: the keypoints task has sources 'real' and 'synthetic'")

    # ---- schema -------------------------------------------------------------------------------
    def schema(self, used: Sequence[str]) -> Schema:
        """The keypoint schema for the sources in ``used`` (checked for a common keypoint count)."""
        sets = [self.source(n) for n in used]
        kc = self.data.get("keypoints") or {}
        ks = {s.name: s.k for s in sets}
        if len(set(ks.values())) > 1:
            raise DataError(f"data.synthetic.keypoint_map: sources have different keypoint counts after the map "
                            f"({', '.join(f'{n}={k}' for n, k in ks.items())}); map the synthetic points onto the "
                            "real schema (e.g. keypoint_map=[0,...,13])")
        first = sets[0]
        schema = Schema(k=int(first.k), ndim=self.real().ndim if "real" in used else max(s.ndim for s in sets),
                        origin=first.key)
        for attr in ("names", "flip_idx", "sigmas"):
            cfg_key = {"names": "names", "flip_idx": "flip_idx", "sigmas": "oks_sigmas"}[attr]
            value = _plain(kc.get(cfg_key))
            if value is not None:
                setattr(schema, attr, [str(v) for v in value] if attr == "names" else
                        [int(v) if isinstance(v, int) else v for v in value] if attr == "flip_idx" else
                        [float(v) for v in value])
                if attr == "flip_idx":
                    schema.flip_origin = "data.keypoints.flip_idx"
                continue
            ordered = sorted(sets, key=lambda s: s.name != "real")  # the real data's schema first
            for s in ordered:
                if getattr(s, attr) is not None:
                    setattr(schema, attr, list(getattr(s, attr)))
                    if attr == "flip_idx":
                        schema.flip_origin = f"flip_idx of {s.key}"
                    break
        class_name = kc.get("class_name") or next((s.class_name for s in sorted(sets, key=lambda s: s.name != "real")
                                                   if s.class_name), None)
        if class_name is None:
            log.info("no class name in the data (a YOLO-pose folder has none): the class is called 'object' "
                     "(set data.keypoints.class_name)")
        schema.class_name = str(class_name or "object")
        if schema.names is not None and len(schema.names) != schema.k:
            raise ConfigError(f"data.keypoints.names: {len(schema.names)} names for {schema.k} keypoints")
        if schema.sigmas is not None and len(schema.sigmas) != schema.k:
            raise ConfigError(f"data.keypoints.oks_sigmas: {len(schema.sigmas)} sigmas for {schema.k} keypoints")
        if schema.sigmas is None:
            raise ConfigError(f"data.keypoints.oks_sigmas: no per-keypoint OKS sigmas for the {schema.k} keypoints "
                              "(set them in config or as kpt_oks_sigmas in the data YAML; COCO-person sigmas are "
                              "meaningless for other schemas)")
        if "synthetic" in used and "real" in used:
            _check_corresponding_names(self.real(), self.synthetic())
        # synthetic's own flip map (if it carries one) must agree with the run's
        if "synthetic" in used and schema.flip_idx is not None:
            syn = self.synthetic()
            if syn.flip_idx is not None and syn.flip_idx != schema.flip_idx:
                raise DataError(f"data.synthetic.keypoint_map: the synthetic flip map after the map {syn.flip_idx} "
                                f"differs from the run's flip_idx {schema.flip_idx}; the points do not correspond")
        return schema

    # ---- train splits --------------------------------------------------------------------------
    def train_items(self, name: str) -> list[str]:
        """Every image of source ``name``'s train split (absolute paths, sorted): the arm draws from these."""
        return sorted(_list_images(self.source(name).splits["train"]))

    def train_path(self, name: str, items: Sequence[str]) -> str:
        """What ultralytics reads for ``items`` of ``name``'s train split: the split itself when it is all of
        it, else a list file (content-addressed, in the cache)."""
        import hashlib

        split = self.source(name).splits["train"]
        if sorted(items) == self.train_items(name):
            return split
        digest = hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest()[:16]
        return write_list(self.cache / "lists" / f"{name}-{digest}.txt", sorted(items))


def _check_corresponding_names(real: SplitSet, syn: SplitSet) -> None:
    """After the keypoint map, point i must be on the same side (left/right/axis) in both sources.

    Names may be spelled differently (``FL_wheel`` vs ``front_left_wheel``); sides may not: a map
    that puts a synthetic right point onto a real left one teaches the mirror image.
    """
    from vsynth.data.formats.flip import keypoint_side

    if not real.names or not syn.names:
        return
    for i, (a, b) in enumerate(zip(real.names, syn.names)):
        sa, sb = keypoint_side(a)[0], keypoint_side(b)[0]
        if sa != sb:
            raise DataError(f"data.synthetic.keypoint_map: real point {i} '{a}' ({sa or 'no side'}) receives synthetic "
                            f"point '{b}' ({sb or 'no side'}); the map must pick corresponding points")
    differ = [(a, b) for a, b in zip(real.names, syn.names) if a != b]
    if differ:
        log.warning("keypoint names differ between real and synthetic (sides agree): %s", differ[:4])


def _list_images(path: str) -> list[str]:
    p = Path(path)
    if p.is_dir():
        return _images_in(p)
    lines = [x.strip() for x in p.read_text().splitlines() if x.strip()]
    parent = str(p.parent) + os.sep
    return [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]
