"""``python -m vsynth.export``: a vsynth checkpoint out as the backend's own model files (and ONNX).

    python -m vsynth.export ckpt=RUN/checkpoints/best.pt [out=DIR] [weights=ema|model] [onnx=true]
                            [imgsz=N|[H,W]] [overwrite=true] [KEY=VALUE ...]

  ckpt       a vsynth checkpoint (best.pt, last.pt, a phase snapshot); its run's config says what to build
  out        the folder to write (default: beside the checkpoint, e.g. RUN/checkpoints/best-export/)
  weights    ema | model (default: what vsynth evaluated: the EMA weights, the raw ones when the run kept no EMA)
  onnx       true: also write an ONNX graph (default false)
  imgsz      the ONNX input size, one number or [height, width] (default: the run's evaluation size)
  overwrite  true: replace the export's files in a non-empty out folder (default: refuse)
  KEY=VALUE  any other dotted key edits the run's config before the model is rebuilt, e.g.
             data.real.yaml=/new/place/data.yaml when the data the names come from has moved

What is written, per task (and how to load it without vsynth) is in docs/export.md and in
``out/export.json``. Bad input is one line on stderr, ``vsynth.export: error: ...`` naming the
key or file, exit status 2; nothing is written then.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from vsynth.errors import ConfigError, VsynthError

PROG = "vsynth.export"
KEYS = ("ckpt", "out", "weights", "onnx", "imgsz", "overwrite")


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _flag(key: str, text: str) -> bool:
    v = _value(text)
    if not isinstance(v, bool):
        raise ConfigError(f"{key}={text}: must be true or false")
    return v


def _imgsz(text: str) -> tuple[int, int]:
    v = _value(text)
    if isinstance(v, str) and "," in v:
        v = [_value(x) for x in v.split(",")]
    hw = [v, v] if isinstance(v, int) and not isinstance(v, bool) else v
    if (not isinstance(hw, list) or len(hw) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in hw)
            or min(hw) < 32 or hw[0] % 32 or hw[1] % 32):
        raise ConfigError(f"imgsz={text}: must be one number or [height, width], multiples of 32 (the model stride)")
    return int(hw[0]), int(hw[1])


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(the export's own keys, the run-config overrides) of a ``key=value`` command line."""
    args: dict[str, Any] = {}
    overrides: list[str] = []
    for a in argv:
        key, eq, text = a.partition("=")
        if not eq or not key:
            raise ConfigError(f"{a}: expected key=value (keys: {', '.join(KEYS)}, or a dotted key of the run's config)")
        if key in KEYS:
            if key in args:
                raise ConfigError(f"{key}: given twice")
            args[key] = text
        elif "." in key:
            overrides.append(a)
        else:
            raise ConfigError(f"{key}: unknown key (keys: {', '.join(KEYS)}, or a dotted key of the run's config)")
    if not args.get("ckpt"):
        raise ConfigError("ckpt: missing; usage: python -m vsynth.export ckpt=RUN/checkpoints/best.pt [out=DIR] [onnx=true]")
    for key in ("onnx", "overwrite"):
        args[key] = _flag(key, args[key]) if key in args else False
    if "imgsz" in args:
        if not args["onnx"]:
            raise ConfigError("imgsz: is the ONNX input size; it needs onnx=true")
        args["imgsz"] = _imgsz(args["imgsz"])
    args.setdefault("weights", None)
    if args["weights"] not in (None, "ema", "model"):
        raise ConfigError(f"weights={args['weights']}: must be ema or model")
    return args, overrides


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        args, overrides = parse(argv)
        from vsynth.export.bundle import Options, export_checkpoint

        out, written = export_checkpoint(args["ckpt"], args.get("out"), args["weights"],
                                         Options(onnx=args["onnx"], imgsz=args.get("imgsz")), args["overwrite"],
                                         overrides)
    except VsynthError as e:
        text = str(e).strip()
        print(f"{PROG}: error: {text.splitlines()[0] if text else type(e).__name__}", file=sys.stderr)
        return 2
    print(f"Exported to {out}")
    for name, what in written.files.items():
        print(f"  {name}: {what}")
    print("  export.json: what was exported, from which checkpoint, and how to load it")
    print("Load it with the backend's own API:")
    print("\n".join(f"    {line}" for line in written.load.splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
