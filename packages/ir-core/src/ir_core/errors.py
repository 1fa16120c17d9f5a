"""Exceptions raised by ir-core.

Every error names the op and, where one is involved, the provider, so a
message read in an engine's log says what to fix without a debugger.
"""

from __future__ import annotations


class IrError(Exception):
    """Base class of every error raised by ir-core."""


class RegistrationError(IrError, ValueError):
    """An op or an implementation could not be registered.

    A failed registration leaves no trace: the registry, ``torch.library``
    and the priority state are as they were before the call.
    """


class PriorityError(IrError, ValueError):
    """A priority list, a priority string or a priority file is malformed or
    names a provider that no package registers."""


class NoImplementationError(IrError, RuntimeError):
    """No candidate implementation accepts a call (for instance, batch-invariant
    mode is on and no implementation of a reducing op claims invariance)."""


class UnknownOpError(IrError, AttributeError, KeyError):
    """An op name that no package registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
