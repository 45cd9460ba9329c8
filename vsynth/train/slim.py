"""Slim a vsynth checkpoint into a small ``init`` file: the weights the run would evaluate, nothing else.

A ``best.pt`` carries the optimizer, RNG states and the composed config, which make it several
times larger than the model and tie it to one run; an ``init`` for other runs only needs the
EMA weights (what evaluation used) and the task's meta. This is how the keypoint demo's
pretrained model (``tasks/keypoints/weights/``) is made from a training run::

    python -m vsynth.train.slim RUN/checkpoints/best.pt OUT.pt [--half] [--weights ema|model] [--drop PREFIX] [--note TEXT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from vsynth.errors import ConfigError, VsynthError
from vsynth.train.checkpoint import load_checkpoint, save_checkpoint


def slim_checkpoint(src: str | Path, dst: str | Path, half: bool = False, note: str | None = None,
                    weights: str = "ema", drop: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``dst`` with ``src``'s EMA weights (``weights="model"``: the raw weights; the raw ones
    too when there is no EMA), leaving out tensors whose names start with a ``drop`` prefix (an
    output layer the next model should learn afresh); returns what was kept."""
    if weights not in ("ema", "model"):
        raise ConfigError(f"weights={weights}: must be ema or model")
    obj = load_checkpoint(src, key="src")
    state = obj["ema"]["module"] if weights == "ema" and obj.get("ema") else obj["model"]
    kind = "ema" if state is not obj["model"] else "model"
    dropped = sorted(k for k in state if any(k.startswith(p) for p in drop))
    unused = [p for p in drop if not any(k.startswith(p) for k in state)]
    if unused:
        raise ConfigError(f"--drop {unused[0]}: no tensor of {src} starts with it")
    state = {k: v for k, v in state.items() if k not in dropped}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta = dict(obj.get("meta") or {})
    meta.update({"slimmed_from": str(Path(src).resolve()), "step": int(obj.get("step", 0)),
                 "weights": kind, "dropped": dropped,
                 "best": obj.get("best")})
    if note:
        meta["note"] = note
    save_checkpoint(dst, {"task": obj.get("task"), "meta": meta, "model": state, "ema": None,
                          "config": obj.get("config")})
    return {"tensors": len(state), "bytes": Path(dst).stat().st_size, "meta": meta}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsynth.train.slim", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="a vsynth checkpoint (e.g. RUN/checkpoints/best.pt)")
    ap.add_argument("dst", help="the slim checkpoint to write (usable as init=DST)")
    ap.add_argument("--half", action="store_true", help="store floating-point tensors as float16 (half the size)")
    ap.add_argument("--note", default=None, help="a line stored in the checkpoint's meta (how it was made)")
    ap.add_argument("--weights", choices=("ema", "model"), default="ema",
                    help="the EMA weights (default; the raw ones when the run kept no EMA) or the raw weights")
    ap.add_argument("--drop", action="append", default=[], metavar="PREFIX",
                    help="leave out tensors whose names start with PREFIX (repeatable), e.g. an output layer")
    args = ap.parse_args(argv)
    try:
        out = slim_checkpoint(args.src, args.dst, half=args.half, note=args.note, weights=args.weights,
                              drop=args.drop)
    except VsynthError as e:
        print(f"vsynth: {e}", file=sys.stderr)
        return 2
    print(f"{args.dst}: {out['tensors']} tensors, {out['bytes'] / 1e6:.2f} MB (step {out['meta']['step']}; "
          f"{len(out['meta']['dropped'])} left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
