"""Platform gates whose reason reaches ``op.explain`` and ``ir explain``
(:class:`ir_core.Gate`, shared by every provider package)."""

from __future__ import annotations

from ir_core import Gate

__all__ = ["Gate"]
