"""vsynth composes its configs from an installed (non-editable) wheel, from any directory."""

import os
import subprocess
import sys

from tests.conftest import REPO


def test_wheel_ships_configs_and_composes(tmp_path):
    wheel_dir, target = tmp_path / "whl", tmp_path / "site"
    b = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(wheel_dir), str(REPO)], capture_output=True, text=True, timeout=300)
    assert b.returncode == 0, b.stderr
    (whl,) = wheel_dir.glob("vsynth-*.whl")
    i = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(whl)],
                       capture_output=True, text=True, timeout=300)
    assert i.returncode == 0, i.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import vsynth.paths as p; print(p.conf_dir())"], cwd=tmp_path,
                           env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(target / "vsynth" / "conf")
    p = subprocess.run([sys.executable, "-m", "vsynth", "arm=B", "trainer.length=7", "--cfg", "job"], cwd=tmp_path,
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "length: 7" in p.stdout and "name: B" in p.stdout
