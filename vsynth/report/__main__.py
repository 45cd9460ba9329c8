"""``python -m vsynth.report SWEEP_DIR``: (re)write summary.csv and report.md of a sweep, any time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsynth.report", description=__doc__)
    ap.add_argument("sweep_dir", type=Path, help="a sweep root (outputs/sweeps/<name>-<hash>)")
    args = ap.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"vsynth.report: error: {args.sweep_dir}: no such folder", file=sys.stderr)
        return 2
    from vsynth.report.sweep import find_jobs, write_sweep_report

    if not find_jobs(args.sweep_dir):
        print(f"vsynth.report: error: {args.sweep_dir}: no job folders (with .hydra/overrides.yaml) inside", file=sys.stderr)
        return 2
    report = write_sweep_report(args.sweep_dir)
    print(f"Wrote {args.sweep_dir / 'summary.csv'} and {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
