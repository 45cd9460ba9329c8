"""Validation of keypoint flip maps (``flip_idx``) before anything trains with them.

A horizontal-flip augmentation mirrors the image; ``flip_idx`` must then move every "left"
keypoint label to its "right" partner and back. An identity map (or a map that does not swap
named left/right pairs) silently corrupts the labels of every flipped sample; users lost 28 pp
OKS-mAP to exactly that, so a suspicious map is an error here, not a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vsynth.errors import ConfigError

_LEFT = {"left", "l", "lft", "lt"}
_RIGHT = {"right", "r", "rgt", "rt"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # camelCase -> camel_Case
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def keypoint_side(name: str) -> tuple[str | None, str]:
    """('left' | 'right' | None, name with the side token blanked) for a keypoint name.

    Side tokens are whole words: ``front_left_wheel``, ``wheel_l``, ``L_eye``, ``leftEye``.
    The blanked name is the key that pairs a left point with its right partner.
    """
    tokens = _tokens(name)
    for i, tok in enumerate(tokens):
        if tok in _LEFT or tok in _RIGHT:
            side = "left" if tok in _LEFT else "right"
            return side, "_".join(tokens[:i] + ["*"] + tokens[i + 1 :])
    return None, "_".join(tokens)


def validate_flip_idx(
    flip_idx: Sequence[int],
    num_keypoints: int,
    names: Sequence[str] | None = None,
    allow_identity: bool = False,
) -> list[tuple[int, int]]:
    """Check a flip map and return its swapped pairs ``(i, j)`` with ``i < j``.

    Requires a permutation of ``range(num_keypoints)`` that is its own inverse; with ``names``,
    every point named left/right must swap with its same-named partner, and a point without a
    side may not map onto a sided one. An identity map is refused unless ``allow_identity``
    (for schemas that genuinely have no left/right points).
    Raises ConfigError naming ``flip_idx`` and the first offending entry.
    """
    flip = list(flip_idx)
    k = int(num_keypoints)
    if len(flip) != k:
        raise ConfigError(f"flip_idx has {len(flip)} entries, expected {k} (one per keypoint)")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flip):
        raise ConfigError(f"flip_idx must hold integers, got {flip}")
    if sorted(flip) != list(range(k)):
        counts = np.bincount([v for v in flip if 0 <= v < k], minlength=k)
        bad = [v for v in flip if not 0 <= v < k]
        if bad:
            raise ConfigError(f"flip_idx is not a permutation of 0..{k - 1}: value {bad[0]} is out of range")
        raise ConfigError(
            f"flip_idx is not a permutation of 0..{k - 1}: index {int(np.argmax(counts > 1))} appears "
            f"{int(counts.max())} times and {int(np.argmin(counts))} is missing"
        )
    for i, j in enumerate(flip):
        if flip[j] != i:
            raise ConfigError(f"flip_idx is not its own inverse: flip_idx[{i}] = {j} but flip_idx[{j}] = {flip[j]}")
    if names is not None:
        names = list(names)
        if len(names) != k:
            raise ConfigError(f"flip_idx check: got {len(names)} keypoint names for {k} keypoints")
        _check_named_pairs(flip, names)
    if not allow_identity and flip == list(range(k)):
        raise ConfigError(
            "flip_idx is the identity map: a horizontal flip would leave left/right labels on mirrored "
            "points; give the left/right swap map, or disable flips (fliplr: 0) for a schema without sides"
        )
    return [(i, j) for i, j in enumerate(flip) if i < j]


def flip_idx_from_names(names: Sequence[str]) -> list[int] | None:
    """The flip map the keypoint names spell out: every left point swapped with the right point of
    the same name (``left_eye`` <-> ``right_eye``), points without a side unchanged.

    None when the names do not determine one: no left/right pair at all, or a sided point without
    its partner (or with two). The map returned passes `validate_flip_idx` with these names.
    """
    sides = [keypoint_side(n) for n in names]
    index: dict[tuple[str, str], list[int]] = {}
    for i, (side, key) in enumerate(sides):
        if side:
            index.setdefault((side, key), []).append(i)
    flip = list(range(len(names)))
    for i, (side, key) in enumerate(sides):
        if side is None:
            continue
        partners = index.get(("right" if side == "left" else "left", key), [])
        if len(partners) != 1 or len(index[(side, key)]) != 1:
            return None
        flip[i] = partners[0]
    return flip if flip != list(range(len(names))) else None


def _check_named_pairs(flip: list[int], names: list[str]) -> None:
    sides = [keypoint_side(n) for n in names]
    partner_of = {(side, key): idx for idx, (side, key) in enumerate(sides) if side}
    for i, j in enumerate(flip):
        side, key = sides[i]
        if side is None:
            if sides[j][0] is not None:
                raise ConfigError(
                    f"flip_idx[{i}] = {j} maps '{names[i]}' (no side) onto '{names[j]}' ({sides[j][0]})"
                )
            continue
        other = "right" if side == "left" else "left"
        want = partner_of.get((other, key))
        if sides[j] != (other, key):
            hint = f", expected {want} ('{names[want]}')" if want is not None else ""
            raise ConfigError(f"flip_idx[{i}] = {j} maps '{names[i]}' onto '{names[j]}'{hint}: left/right points must swap")


def flip_keypoints(keypoints: np.ndarray, width: float, flip_idx: Sequence[int]) -> np.ndarray:
    """Keypoints (..., K, 3) of a horizontally flipped image: x -> width - x, then reorder.

    Unlabelled points (v == 0) stay at (0, 0, 0). Coordinates are continuous (pixel i spans
    [i, i + 1)), the convention of COCO and YOLO labels.
    """
    out = np.array(keypoints, dtype=float, copy=True)
    labelled = out[..., 2] > 0
    out[..., 0] = np.where(labelled, width - out[..., 0], 0.0)
    return out[..., list(flip_idx), :]
