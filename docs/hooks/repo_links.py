"""mkdocs hook: links from the docs to repository files outside docs/ stay valid on GitHub and on the site.

The pages link to what they describe (``../conf/trainer/default.yaml``, ``../../tests/tiny/task.py``,
``../BENCHMARKS.md#...``) with relative paths, which GitHub follows as they are. mkdocs only knows the
files under docs/ and would reject them, so before it checks a page's links this hook rewrites those:

* a repository Markdown file shown as a docs page (``BENCHMARKS.md`` -> ``benchmarks.md``) links to
  that page, anchor kept (mkdocs then checks the anchor);
* any other file or folder of the repository becomes its link text (the site carries no copy of it);
* a path that does not exist is a warning, so ``mkdocs build --strict`` fails as for a broken page link.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.repo_links")

#: repository Markdown files that the site shows as a page of its own (through a snippet include)
PAGES = {"BENCHMARKS.md": "benchmarks.md"}

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs' hook signature)
    docs = Path(config["docs_dir"]).resolve()
    repo = Path(config.config_file_path).resolve().parent
    page_dir = posixpath.dirname(page.file.src_uri)
    here = docs / page_dir

    def rewrite(m: re.Match) -> str:
        text, target = m.group(1), m.group(2)
        if _SCHEME.match(target) or target.startswith(("#", "/")):
            return m.group(0)
        path, _, anchor = target.partition("#")
        resolved = (here / path).resolve()
        if resolved == docs or docs in resolved.parents:
            return m.group(0)  # a docs page: mkdocs checks it
        if repo != resolved and repo not in resolved.parents:
            log.warning("Doc file '%s' links to '%s', outside the repository", page.file.src_uri, target)
            return m.group(0)
        if not resolved.exists():
            log.warning("Doc file '%s' links to '%s', which does not exist in the repository", page.file.src_uri, target)
            return m.group(0)
        rel = resolved.relative_to(repo).as_posix()
        if rel in PAGES:
            link = posixpath.relpath(PAGES[rel], page_dir or ".")
            return f"[{text}]({link}{'#' + anchor if anchor else ''})"
        return text

    return _LINK.sub(rewrite, markdown)
