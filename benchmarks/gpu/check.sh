#!/usr/bin/env bash
# On the air-gapped GPU node: install the wheels that benchmarks/gpu/fetch_wheels.py fetched (no network,
# no dependencies resolved: exactly those files) into a scratch folder, put it and the repository on
# PYTHONPATH, and run the GPU check (benchmarks/gpu/check.py; its arguments pass through).
#
#   bash benchmarks/gpu/check.sh [--out DIR] [--budget SECONDS] [--tasks ...] [--stages ...]
#
# Environment: PYTHON (default python3: the node's Python 3.12 with torch), VSYNTH_WHEELS (default
# <repo>/.whl), VSYNTH_SCRATCH (default ${TMPDIR:-/tmp}/vsynth-gpu-$USER). The install is kept in the
# scratch folder and reused by the next call. --no-install skips it (the packages are already importable).
# The report goes to --out (default: $VSYNTH_SCRATCH/gpu-check).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
WHL=${VSYNTH_WHEELS:-$REPO/.whl}
SCRATCH=${VSYNTH_SCRATCH:-${TMPDIR:-/tmp}/vsynth-gpu-${USER:-$(id -u)}}
SITE=$SCRATCH/site
install=1
args=()
out_given=0
for a in "$@"; do
  case "$a" in
    --no-install) install=0 ;;
    --out|--out=*) out_given=1; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
[ "$out_given" = 1 ] || args+=(--out "$SCRATCH/gpu-check")

if [ "$install" = 1 ]; then
  stamp="$SITE/.vsynth-wheels"
  want=$(cat "$WHL"/manifest.txt 2>/dev/null || true)
  if [ -z "$want" ]; then
    echo "check.sh: error: no $WHL/manifest.txt: run 'python benchmarks/gpu/fetch_wheels.py' on a connected machine and copy .whl/ with the repository" >&2
    exit 2
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    t0=$(date +%s)
    rm -rf "$SITE" "$SCRATCH/wheels"
    mkdir -p "$SITE" "$SCRATCH/wheels"
    shopt -s nullglob
    archives=("$WHL"/wheels-*.tar.xz)
    if [ ${#archives[@]} -gt 0 ]; then
      tar -xJf "${archives[0]}" -C "$SCRATCH/wheels"
    else
      cp "$WHL"/*.whl "$SCRATCH/wheels"/
    fi
    "$PY" -m pip install --quiet --no-deps --no-index --no-compile --target "$SITE" "$SCRATCH"/wheels/*.whl
    rm -rf "$SCRATCH/wheels"
    printf '%s' "$want" > "$stamp"
    echo "[check.sh] installed $(grep -c whl "$WHL"/manifest.txt) wheels into $SITE in $(( $(date +%s) - t0 )) s"
  else
    echo "[check.sh] reusing the install in $SITE"
  fi
  export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
export MPLCONFIGDIR=${MPLCONFIGDIR:-$SCRATCH/matplotlib} YOLO_OFFLINE=true
exec "$PY" "$REPO/benchmarks/gpu/check.py" "${args[@]}"
