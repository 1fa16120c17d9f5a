"""Platform gates whose reason reaches ``op.explain`` and ``ir explain``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ir_core as ir


class Gate:
    """A ``supported=`` callable for :meth:`IrOp.register_impl`.

    ``why_not()`` returns ``None`` when the implementation can run here, else
    a one-line reason, returned as :class:`ir_core.Unsupported` so that
    ``explain`` shows it instead of a bare "unsupported". Returning it (rather
    than raising) keeps ir-core from logging a warning per op on machines that
    simply lack the device.
    """

    def __init__(self, why_not: Callable[[], str | None]) -> None:
        self._why_not = why_not
        self._impl: Any = None

    def attach(self, impl: Any) -> Any:
        """Remember the registered :class:`ir_core.IrOpImpl`; returns it."""
        self._impl = impl
        return impl

    def reason(self) -> str | None:
        """Why the implementation cannot run here (``None``: it can)."""
        return self._why_not()

    def __call__(self) -> bool | ir.Unsupported:
        reason = self._why_not()
        return True if reason is None else ir.Unsupported(reason)
