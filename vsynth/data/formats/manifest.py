"""The generated-images manifest CSV: which real image each generated image came from.

Columns: ``generated_path,source_image,label_path,condition,generator``. A generated image has
no labels of its own: it reuses ``label_path``, the label of its source image. Relative paths
are relative to the manifest's folder (so a manifest can move with its images); absolute paths
are kept as they are.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from vsynth.data.formats.io import write_text_atomic
from vsynth.data.formats.records import GeneratedRow
from vsynth.errors import DataError

MANIFEST_COLUMNS = ("generated_path", "source_image", "label_path", "condition", "generator")


def read_manifest(csv_path: str | Path, check_files: bool = True) -> list[GeneratedRow]:
    """Rows with absolute paths; with ``check_files`` every referenced file must exist."""
    path = Path(csv_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: manifest not found") from None
    reader = csv.DictReader(io.StringIO(text))
    missing_cols = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing_cols:
        raise DataError(f"{path}: missing column(s) {missing_cols}; expected header {','.join(MANIFEST_COLUMNS)}")
    base = path.parent
    rows = []
    for line_no, raw in enumerate(reader, start=2):
        values = {c: (raw.get(c) or "").strip() for c in MANIFEST_COLUMNS}
        for col in ("generated_path", "source_image", "label_path"):
            if not values[col]:
                raise DataError(f"{path}: line {line_no} has an empty '{col}'")
        resolved = {col: Path(os.path.normpath(base / values[col])) for col in MANIFEST_COLUMNS[:3]}
        if check_files:
            for col, file in resolved.items():
                if not file.is_file():
                    raise DataError(f"{path}: line {line_no} {col} '{values[col]}' does not exist")
        rows.append(
            GeneratedRow(
                generated_path=resolved["generated_path"],
                source_image=resolved["source_image"],
                label_path=resolved["label_path"],
                condition=values["condition"],
                generator=values["generator"],
            )
        )
    if not rows:
        raise DataError(f"{path}: manifest has no rows")
    return rows


def write_manifest(rows: Iterable[GeneratedRow], csv_path: str | Path, relative: bool = True) -> Path:
    """Write a manifest; with ``relative`` paths are stored relative to the manifest's folder."""
    path = Path(csv_path)
    base = path.parent.absolute()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)

    def rel(p: Path) -> str:
        return os.path.relpath(Path(p).absolute(), base) if relative else str(Path(p).absolute())

    for row in rows:
        writer.writerow([rel(row.generated_path), rel(row.source_image), rel(row.label_path), row.condition, row.generator])
    write_text_atomic(path, buf.getvalue())
    return path
