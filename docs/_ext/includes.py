"""MkDocs hook: include a Markdown file from outside ``docs/`` with its headings moved down.

A page writes::

    <!-- include: packages/ir-core/CHANGELOG.md from=7 shift=1 -->

and the build replaces the marker by that file (path from the repository
root), starting at line ``from`` (1-based, default 1), every heading moved
``shift`` levels down (default 1), and links into the docs written as seen
from the file (``../../docs/x.md``) rewritten as seen from ``docs/``. A
missing file fails the build: the per-package changelogs must exist.

Loaded from ``mkdocs.yml`` (``hooks: [docs/_ext/includes.py]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_MARKER = re.compile(r"<!--\s*include:\s*(\S+)((?:\s+\w+=\d+)*)\s*-->")
_HEADING = re.compile(r"^(#{1,5}) ", re.MULTILINE)
_DOCS_LINK = re.compile(r"\]\((?:\.\./)+docs/")


def _include(match: re.Match[str]) -> str:
    path = ROOT / match.group(1)
    opts = dict(o.split("=") for o in match.group(2).split())
    start, shift = int(opts.get("from", 1)), int(opts.get("shift", 1))
    if not path.is_file():
        raise FileNotFoundError(f"include: {path} does not exist")
    text = "".join(path.read_text().splitlines(keepends=True)[start - 1 :])
    text = _HEADING.sub(lambda m: "#" * (len(m.group(1)) + shift) + " ", text)
    return _DOCS_LINK.sub("](", text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace every ``<!-- include: PATH ... -->`` marker."""
    return _MARKER.sub(_include, markdown)
