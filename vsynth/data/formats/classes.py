"""Guard against mixing sources whose class lists differ.

Mixing a source whose class 2 is "bus" with one whose class 2 is "truck" trains nonsense
without any error; every mixer checks its sources with `check_same_classes` first.
"""

from __future__ import annotations

from collections.abc import Sequence

from vsynth.errors import DataError


def check_same_classes(named_sources: dict[str, Sequence[str]]) -> list[str]:
    """Return the common class list, or raise one DataError line naming the first disagreeing source."""
    if not named_sources:
        raise DataError("no data sources given to compare class names")
    items = list(named_sources.items())
    ref_name, ref = items[0][0], list(items[0][1])
    for name, classes in items[1:]:
        classes = list(classes)
        if classes == ref:
            continue
        if sorted(classes) == sorted(ref):
            detail = f"same names in another order: '{ref_name}' {ref} vs '{name}' {classes}"
        else:
            only_ref = [c for c in ref if c not in classes]
            only_other = [c for c in classes if c not in ref]
            detail = (
                f"'{ref_name}' only: {only_ref}, '{name}' only: {only_other}"
                if only_ref or only_other
                else f"'{ref_name}' has {len(ref)} entries, '{name}' has {len(classes)}"
            )
        raise DataError(f"class names differ between sources '{ref_name}' and '{name}' ({detail})")
    return ref
