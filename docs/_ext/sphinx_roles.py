"""Griffe extension for the docs build: render Sphinx roles as code.

The package docstrings use Sphinx roles (:func:`register_op`,
:class:`~ir_core.op.IrOp`) so they read well in ``help()`` and IDEs.
mkdocstrings does not understand roles and would print them verbatim;
this turns each into an inline code span (``register_op``, ``IrOp``).
Loaded from mkdocs.yml (``extensions: [docs/_ext/sphinx_roles.py]``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`~?\.?([^`]+)`")


def _target_text(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    # Sphinx's "~" shows only the last component; do the same for dotted paths.
    if match.group(0).split("`", 1)[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def replace_roles(text: str) -> str:
    """``text`` with every Sphinx role replaced by a code span."""
    return _ROLE.sub(_target_text, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = replace_roles(obj.docstring.value)
