"""Large COCO-style JSON files read column by column, without a Python object per entry.

COCO ground truth and results files are long lists of small objects of one shape. Turning each
into a dict of lists of floats (``json.load``) costs several times the parse itself and, at a
million annotations, more than a GB of transient memory; what the readers need is a few columns.
`load_document` parses a file with simdjson (``pysimdjson``, pinned) into its compact tape and
hands the small sections (``images``, ``categories``) back as ordinary Python objects;
`record_columns` walks a list of records once and pulls only the requested fields: scalars as
Python lists (the very values ``json.load`` gives) and number lists as one float64 array.

When simdjson refuses the text (e.g. ``NaN`` literals, which Python's json accepts),
`load_document` returns None and the caller reads the file with the stdlib. Records that do not
fit the fast route (a number list holding text or ``true``, nested lists) are read as Python
objects by the same code that reads ``json.load``'s lists, and `record_columns` returns None only
when that fails too (a missing key, a list of another length): the caller's per-entry checks then
name the bad entry. So the fast route changes how long reading takes, never what is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: default of an optional scalar that marks "key absent" (``value is ABSENT``)
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


def load_document(path: str | Path, python_keys: Sequence[str] = ()) -> Any | None:
    """The parsed file, or None when simdjson cannot parse it (the stdlib then gives the error).

    A top-level object comes back as a dict of its keys; those in ``python_keys`` hold Python
    objects, the others simdjson's lazy arrays/objects (for `record_columns`). A top-level array
    comes back as simdjson's array.
    """
    import simdjson

    try:
        doc = simdjson.Parser().load(str(path))  # simdjson reads the file itself: no Python copy of it
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    if isinstance(doc, simdjson.Object):
        return {key: (as_python(doc[key]) if key in python_keys else doc[key]) for key in doc.keys()}
    return doc


def as_python(value: Any) -> Any:
    """Python objects (dicts, lists, scalars) for a value of `load_document`'s result."""
    import simdjson

    if isinstance(value, simdjson.Array):
        return value.as_list()
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    return value


def is_array(value: Any) -> bool:
    """A JSON array: a Python list or a simdjson array."""
    import simdjson

    return isinstance(value, (list, simdjson.Array))


def record_columns(
    records: Any, scalars: Mapping[str, Any], number_lists: Mapping[str, int] | None = None
) -> dict[str, Any] | None:
    """Columns of a list of records, or None when some record does not fit.

    ``scalars`` maps a key to its default (``...``: required; ``ABSENT`` marks absent values),
    giving a Python list per key; ``number_lists`` maps a key to the length of its list of
    numbers (required), giving an ``(N, length)`` float64 array per key. ``records`` is a Python
    list of dicts or a simdjson array of objects.
    """
    number_lists = dict(number_lists or {})
    if not isinstance(records, list):
        fast = _guarded(_simdjson_columns, records, scalars, number_lists)
        if fast is not None:
            return fast
        records = as_python(records)  # what does not fit the fast route is read exactly as json.load's lists are
    return _guarded(_python_columns, records, scalars, number_lists)


def _guarded(columns: Any, records: Any, scalars: Mapping[str, Any], number_lists: dict[str, int]) -> dict | None:
    try:
        return columns(records, scalars, number_lists)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def _python_columns(records: list, scalars: Mapping[str, Any], number_lists: dict[str, int]) -> dict[str, Any] | None:
    n = len(records)
    out: dict[str, Any] = {}
    for key, default in scalars.items():
        out[key] = [r[key] for r in records] if default is ... else [r.get(key, default) for r in records]
    for key, length in number_lists.items():
        values = np.array([r[key] for r in records], dtype=np.float64)
        if values.shape != (n, length):
            if n == 0:
                values = values.reshape(0, length)
            else:
                return None
        out[key] = values
    return out


def _simdjson_columns(records: Any, scalars: Mapping[str, Any], number_lists: dict[str, int]) -> dict[str, Any] | None:
    n = len(records)
    required = [(key, []) for key, default in scalars.items() if default is ...]
    optional = [(key, default, []) for key, default in scalars.items() if default is not ...]
    # number lists are copied straight into preallocated rows (no per-record Python floats)
    arrays = {key: np.empty((n, length), dtype=np.float64) for key, length in number_lists.items()}
    rows = [(key, length, memoryview(arrays[key]).cast("B"), length * 8) for key, length in number_lists.items()]
    pos = 0
    for record in records:
        for key, values in required:
            values.append(record[key])
        for key, default, values in optional:
            values.append(record.get(key, default))
        for key, length, out, step in rows:
            numbers = record[key]
            if len(numbers) != length:  # also refuses nested lists, which as_buffer would flatten
                return None
            out[pos * step : (pos + 1) * step] = numbers.as_buffer(of_type="d")
        pos += 1
    result: dict[str, Any] = {key: values for key, values in required}
    result.update({key: values for key, _, values in optional})
    result.update(arrays)
    return result
