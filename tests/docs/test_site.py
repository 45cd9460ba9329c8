"""The docs site builds offline with ``mkdocs build --strict``: every page in the nav, every link, anchor
and repository path it names valid (docs/hooks/repo_links.py checks the links outside docs/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
                           "--site-dir", str(site)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    sources = sorted(p.relative_to(REPO / "docs").with_suffix("") for p in (REPO / "docs").rglob("*.md"))
    expected = {"index.html" if s.name == "index" else f"{s.as_posix()}/index.html" for s in sources}
    assert expected <= pages, sorted(expected - pages)
    benchmarks = (site / "benchmarks" / "index.html").read_text()
    assert "File to number" in benchmarks and "--8&lt;--" not in benchmarks  # BENCHMARKS.md included, not the snippet line
    assert "fonts.googleapis" not in (site / "index.html").read_text()


def test_readme_links_exist() -> None:
    """README.md is read on GitHub, outside the site build: its relative links must name existing files."""
    text = (REPO / "README.md").read_text()
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)
               if not re.match(r"^[a-z]+:", t) and not t.startswith("#")}
    assert targets, "README.md links to no page"
    missing = sorted(t for t in targets if not (REPO / t).exists())
    assert not missing, missing
