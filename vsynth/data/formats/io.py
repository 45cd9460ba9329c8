"""File helpers shared by the format readers and writers: strict JSON loading with one-line
errors, atomic writes, and the guard that keeps writers out of source dataset folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vsynth.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file becomes one DataError line naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, separators=(",", ":")))


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (sorted); a missing folder is a DataError."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header only (fast); unreadable files are a DataError."""
    from PIL import Image  # Pillow ships with ultralytics/torchvision; imported lazily

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except OSError as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def ensure_outside_sources(out_dir: str | Path, sources: dict[str, str | Path]) -> None:
    """Refuse an output folder that is, contains or lies inside a source folder.

    Converters write next to nothing they read: a conversion must never modify (or be able to
    overwrite) the dataset it was made from.
    """
    out = Path(out_dir)
    for what, src in sources.items():
        if _overlaps(out, Path(src)):
            raise DataError(f"{out}: output folder overlaps the source {what} {Path(src)}; choose a folder outside the source dataset")


def link_or_copy(src: Path, dst: Path, mode: str = "symlink") -> None:
    """Place ``src`` at ``dst`` by symlink (default; no copy of the pixels), hardlink or copy.

    A symlink or hardlink that the filesystem refuses falls back to a copy.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        if mode == "symlink":
            os.symlink(src.resolve(), dst)
            return
        if mode == "hardlink":
            os.link(src, dst)
            return
    except OSError:
        pass
    shutil.copy2(src, dst)
