"""The flip-map guard, run before anything trains (the users' 28-point bug).

ultralytics' horizontal flip (``fliplr``) mirrors the image and reorders the keypoints with the
data's ``flip_idx``. With an identity map the "left wheel" label stays on the left index while the
wheel moves to the other side: half the flipped samples teach the model the wrong side. So:

* flips on (``task.augment.fliplr`` or ``flipud`` > 0) and no ``flip_idx``: refused (ultralytics
  would silently switch flips off; say so instead);
* the map is checked by :func:`vsynth.data.formats.flip.validate_flip_idx`: a permutation of
  length K, its own inverse, named left/right points swapped with their partners, and not the
  identity unless ``task.allow_symmetric_flip: true`` (a schema that truly has no sides);
* the validated pairs are written to run.log, by name.
"""

from __future__ import annotations

from typing import Any

from vsynth.errors import ConfigError


def check_flip(schema, hyp: Any, allow_symmetric: bool = False) -> list[str]:
    """Validate the run's flip map against the flip augmentation; lines for run.log."""
    from vsynth.data.formats.flip import validate_flip_idx

    fl, fu = float(getattr(hyp, "fliplr", 0.0)), float(getattr(hyp, "flipud", 0.0))
    flips_on = fl > 0 or fu > 0
    flip = schema.flip_idx
    if flip is None:
        if flips_on:
            raise ConfigError(
                f"data.keypoints.flip_idx: flips are on (task.augment.fliplr={fl:g}, flipud={fu:g}) but the "
                f"{schema.k}-point data has no flip_idx; give the left/right swap map (data.keypoints.flip_idx or "
                "flip_idx in the data YAML) or set task.augment.fliplr=0")
        return ["Flip augmentation off (fliplr=0, flipud=0) and no flip_idx: nothing to validate"]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in flip):
        raise ConfigError(f"data.keypoints.flip_idx must hold integers, got {flip}")
    if not flips_on:  # the map is not used: report a bad one, do not stop the run
        try:
            validate_flip_idx(flip, schema.k, names=schema.names, allow_identity=True)
        except ConfigError as e:
            return [f"WARNING: flip_idx {list(flip)} is not a valid left/right map ({str(e).splitlines()[0]}); "
                    "unused in this run because flips are off (task.augment.fliplr=0, flipud=0)"]
    try:
        pairs = validate_flip_idx(flip, schema.k, names=schema.names, allow_identity=allow_symmetric or not flips_on)
    except ConfigError as e:
        msg = str(e).splitlines()[0]
        if "identity" in msg:
            msg += " (or task.allow_symmetric_flip=true if the schema really has no left/right points)"
        where = "" if schema.flip_origin in ("", "data.keypoints.flip_idx") else f" (the {schema.flip_origin})"
        raise ConfigError(f"data.keypoints.flip_idx{where}: {msg}") from e
    names = schema.names or [str(i) for i in range(schema.k)]
    lines = [f"flip_idx validated ({len(pairs)} left/right pairs swapped on flip; fliplr={fl:g}, flipud={fu:g}): "
             f"{list(flip)}"]
    for i, j in pairs:
        lines.append(f"  flip pair {i} <-> {j}: {names[i]} <-> {names[j]}")
    fixed = [i for i in range(schema.k) if flip[i] == i]
    if fixed:
        lines.append("  on the symmetry axis (unchanged by a flip): " + ", ".join(f"{i} {names[i]}" for i in fixed))
    if not pairs and allow_symmetric:
        lines.append("  identity flip map accepted: task.allow_symmetric_flip=true")
    if not flips_on:
        lines.append("  (flip augmentation is off in this run: task.augment.fliplr=0)")
    return lines
