"""On a connected machine: fetch the wheels an air-gapped GPU node lacks, packed to travel with the repo.

    python benchmarks/gpu/fetch_wheels.py [--dest .whl] [--python 3.12] [--no-pack]

Downloads, with ``pip download --no-deps --only-binary=:all:`` for CPython 3.12 on x86-64 manylinux,
exactly the distributions in ``wheels.txt`` at the versions of ``requirements.lock`` (the two
sdist-only pure-Python ones are built here into ``py3-none-any`` wheels). The wheels total about 64
MiB, more than the 50 MiB budget (the repository and the wheels travel together under 64 MiB):
scipy (35 MiB, imported by mmseg at module level)
and matplotlib with its font tools (17 MiB, vsynth's learning curve and both backends' trainers) are
needed, everything else is small, and the big optional dependencies are left out (see ``wheels.txt``).
Wheels are zip files compressed entry by entry; stored uncompressed inside one ``tar.xz`` they
compress to about 41 MiB, unpacked on the node back into the identical wheel files (``check.sh``).

Writes ``DEST/wheels-cp312-manylinux_x86_64.tar.xz`` and ``DEST/manifest.txt`` (every wheel, its
size and sha256), prints the sizes, and exits 1 if the folder is over 50 MiB. ``--no-pack`` keeps
the plain wheels instead (for a node without the size limit). ``.whl/`` is git-ignored.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIMIT_MIB = 50.0
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wanted(wheels_txt: Path, lock: Path) -> list[tuple[str, str, bool]]:
    """(name, version, build-from-sdist) for every line of wheels.txt, versions from requirements.lock."""
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[norm(name)] = version.strip()
    out = []
    for line in wheels_txt.read_text().splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        if norm(fields[0]) not in pins:
            sys.exit(f"fetch_wheels: error: {fields[0]} (wheels.txt) is not pinned in {lock}")
        out.append((fields[0], pins[norm(fields[0])], "build" in fields[1:]))
    return out


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def fetch(items: list[tuple[str, str, bool]], into: Path, python: str) -> None:
    binary = [f"{n}=={v}" for n, v, build in items if not build]
    tags = ["--python-version", python, "--implementation", "cp", "--abi", f"cp{python.replace('.', '')}",
            "--abi", "abi3", "--abi", "none"]
    for p in PLATFORMS:
        tags += ["--platform", p]
    pip("download", "--no-deps", "--only-binary=:all:", *tags, "--dest", str(into), *binary)
    for n, v, build in items:
        if build:  # pure Python published as an sdist only: a py3-none-any wheel built here runs anywhere
            pip("wheel", "--no-deps", "--wheel-dir", str(into), f"{n}=={v}")
    for w in into.glob("*.whl"):
        if w.name.endswith("-py3-none-any.whl") or w.name.endswith("-py2.py3-none-any.whl") or "x86_64" in w.name:
            continue
        sys.exit(f"fetch_wheels: error: {w.name} is neither pure Python nor x86-64: it would not install on the node")
    names = {norm(w.name.split("-")[0]) for w in into.glob("*.whl")}
    missing = [n for n, _, _ in items if norm(n) not in names]
    if missing:
        sys.exit(f"fetch_wheels: error: no wheel for {missing}")


def stored_copy(wheel: Path) -> bytes:
    """The same wheel (same files, same names) with its entries stored uncompressed, for xz to compress."""
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as zi, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zo:
        for info in zi.infolist():
            zo.writestr(info, zi.read(info.filename), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=REPO / ".whl", help="output folder (default: the repo's .whl/)")
    ap.add_argument("--python", default="3.12", help="the node's Python version (default 3.12)")
    ap.add_argument("--no-pack", action="store_true", help="keep the plain wheels (no tar.xz)")
    a = ap.parse_args(argv)
    items = wanted(HERE / "wheels.txt", REPO / "requirements.lock")
    dest = a.dest.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "wheels"
        raw.mkdir()
        fetch(items, raw, a.python)
        wheels = sorted(raw.glob("*.whl"), key=lambda w: -w.stat().st_size)
        lines = []
        print(f"\n{len(wheels)} wheels for CPython {a.python}, x86-64 manylinux:")
        for w in wheels:
            lines.append(f"{w.name}  {w.stat().st_size}  {hashlib.sha256(w.read_bytes()).hexdigest()}")
            print(f"  {w.stat().st_size / 2**20:7.2f} MiB  {w.name}")
        total = sum(w.stat().st_size for w in wheels)
        print(f"  {total / 2**20:7.2f} MiB  in all")
        (dest / "manifest.txt").write_text("# wheel  bytes  sha256 (of the wheel as downloaded)\n" + "\n".join(lines) + "\n")
        if a.no_pack:
            for w in wheels:
                shutil.copy2(w, dest / w.name)
        else:
            archive = dest / f"wheels-cp{a.python.replace('.', '')}-manylinux_x86_64.tar.xz"
            print(f"packing into {archive.name} (wheels stored uncompressed, then xz; takes a few minutes)...",
                  flush=True)
            with tarfile.open(archive, "w:xz") as tar:
                for w in wheels:
                    data = stored_copy(w)
                    info = tarfile.TarInfo(w.name)
                    info.size, info.mtime, info.mode = len(data), int(w.stat().st_mtime), 0o644
                    tar.addfile(info, io.BytesIO(data))
    size = sum(f.stat().st_size for f in dest.iterdir()) / 2**20
    print(f"\n{dest}: {size:.2f} MiB (limit {LIMIT_MIB:.0f} MiB)")
    if size > LIMIT_MIB:
        print(f"fetch_wheels: error: {dest} is {size:.2f} MiB, over the {LIMIT_MIB:.0f} MiB that travel with the repo",
              file=sys.stderr)
        return 1
    print("next: copy the repository with this folder to the node and run benchmarks/gpu/check.sh there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
