"""MkDocs hook: show what is in ``benchmarks/results/`` on the docs pages.

A page writes a marker such as::

    <!-- bench-results: bench_*.png -->
    <!-- bench-results: dispatch_overhead_*.md -->

and the build replaces it by every matching file of ``benchmarks/results/``
(sorted by name): a PNG becomes an image (the file is copied into the site
at ``benchmarks/results/<name>``), a Markdown file is inlined with its
headings moved two levels down. When nothing matches, the marker becomes a
note saying which results are not recorded yet. So the site never links a
file that is missing (``mkdocs build --strict`` stays green before a GPU run
has committed its plot) and shows the plot as soon as it is committed.

Loaded from ``mkdocs.yml`` (``hooks: [docs/_ext/bench_results.py]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PREFIX = "benchmarks/results"
_MARKER = re.compile(r"<!--\s*bench-results:\s*(\S+)\s*-->")
_HEADING = re.compile(r"^(#{1,4}) ", re.MULTILINE)


def _matches(pattern: str) -> list[Path]:
    if not RESULTS.is_dir():
        return []
    return sorted(p for p in RESULTS.glob(pattern) if p.is_file())


def on_files(files: Files, config: Any) -> Files:
    """Copy every PNG of benchmarks/results/ into the site."""
    for png in _matches("*.png"):
        files.append(
            File(
                f"{PREFIX}/{png.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def _render(match: re.Match[str]) -> str:
    pattern = match.group(1)
    found = _matches(pattern)
    if not found:
        return (
            f'!!! note "Not recorded yet"\n    No file in `{PREFIX}/` matches `{pattern}` in this '
            "build of the docs.\n"
        )
    parts = []
    for path in found:
        if path.suffix == ".png":
            parts.append(f"![{path.stem}]({PREFIX}/{path.name})\n\n*`{PREFIX}/{path.name}`*\n")
        elif path.suffix == ".md":
            text = _HEADING.sub(lambda m: "#" * (len(m.group(1)) + 2) + " ", path.read_text())
            parts.append(f"{text.rstrip()}\n\n*Source: `{PREFIX}/{path.name}`*\n")
        else:
            parts.append(f"- `{PREFIX}/{path.name}`\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace every ``<!-- bench-results: GLOB -->`` marker."""
    return _MARKER.sub(_render, markdown)
