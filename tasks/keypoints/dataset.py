"""``PoseDataset``: ultralytics' ``YOLODataset`` with its label cache kept out of the data folders, and a
mosaic that does not depend on what the loading process happened to load before.

ultralytics caches the scanned labels in ``<labels folder>.cache`` next to the data, deleting and
rewriting it whenever the image list changes. vsynth reads the same folder as the full split and
as seeded subsets, and runs arms, seeds and sweep jobs side by side, so two processes would keep
rewriting one file; its delete-then-write is not safe under concurrency (a run dies with
``FileNotFoundError: ...labels/train.cache``) and read-only datasets would be rescanned every time.
Here the cache lives under ``${paths.cache}/labels/<hash of the file list>.cache`` and is written to a
private temporary file and renamed into place.

ultralytics' ``Mosaic`` picks its partner images from a buffer of the images this process loaded most
recently. A resumed run (or a loader worker that restarts) has another history than the run it
continues, so its batches would differ: exact resume would break mid-epoch. Here the mosaic draws its
partners from the whole dataset with the sample's own seeded ``random`` (as ultralytics does when it
caches images in RAM), so a batch depends only on (seed, epoch, batch). Everything else is
ultralytics' own code.
"""

from __future__ import annotations

import os
from pathlib import Path

from ultralytics.data.dataset import DATASET_CACHE_VERSION, YOLODataset
from ultralytics.data.utils import load_dataset_cache_file


class PoseDataset(YOLODataset):
    def __init__(self, *args, label_cache_dir: str | Path | None = None, **kwargs) -> None:
        self.label_cache_dir = Path(label_cache_dir) if label_cache_dir else None
        super().__init__(*args, **kwargs)

    def build_transforms(self, hyp=None):
        transforms = super().build_transforms(hyp)
        _history_free_mosaic(transforms)
        return transforms

    def _load_or_scan_cache(self, cache_path: Path, cache_hash: str):
        if self.label_cache_dir is None:
            return super()._load_or_scan_cache(cache_path, cache_hash)
        self.label_cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.label_cache_dir / f"{cache_hash[:24]}.cache"
        try:
            cache = load_dataset_cache_file(path)
            assert cache["version"] == DATASET_CACHE_VERSION and cache["hash"] == cache_hash
            return cache, True
        except Exception:  # missing, stale or being written by another process: scan (cheap) and publish
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
            cache = self.cache_labels(tmp)
            if tmp.exists():
                os.replace(tmp, path)
            return cache, False


def _history_free_mosaic(transform) -> None:
    """Every ``Mosaic`` inside ``transform`` draws its partners from the whole dataset (see the module docstring)."""
    from ultralytics.data.augment import Mosaic

    if isinstance(transform, Mosaic):
        transform.buffer_enabled = False
    for child in getattr(transform, "transforms", None) or []:
        _history_free_mosaic(child)
    if getattr(transform, "pre_transform", None) is not None:
        _history_free_mosaic(transform.pre_transform)
