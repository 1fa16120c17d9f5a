"""The registry of IR ops: name -> :class:`~ir_core.op.IrOp`.

Kept apart from ``op.py`` so that priority validation and provider discovery
can look ops up without importing the op machinery.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from .errors import UnknownOpError

if TYPE_CHECKING:
    from .op import IrOp

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

#: Provider names this project defines, known even where their package is not
#: installed, so that a shared priority config (``rocm`` on a CUDA box) is not
#: an error. Out-of-tree names become known when their package registers or
#: declares an ``ir.providers`` entry point.
WELL_KNOWN_PROVIDERS = ("native", "triton", "cuda", "rocm", "aiter", "xpu")
RESERVED_PROVIDERS = frozenset({"native", "unfused"})

_ops: dict[str, IrOp] = {}
lock = threading.RLock()


def add(op: IrOp) -> None:
    with lock:
        _ops[op.name] = op


def remove(name: str) -> None:
    with lock:
        _ops.pop(name, None)


def get(name: str) -> IrOp:
    """The op called ``name``; raises :class:`UnknownOpError` listing the ops."""
    try:
        return _ops[name]
    except KeyError:
        raise UnknownOpError(
            f"no IR op named {name!r}; registered ops: {', '.join(sorted(_ops)) or '(none)'}"
        ) from None


def ops() -> dict[str, IrOp]:
    """A snapshot of every registered op, by name."""
    return dict(_ops)


def registered_providers() -> set[str]:
    """Every provider name with at least one registered implementation."""
    return {p for op in list(_ops.values()) for p in op.impls}


def known_providers() -> set[str]:
    """Names a priority list may use: registered, well known or declared by an
    installed package's entry point."""
    from .providers import declared_provider_names

    return registered_providers() | set(WELL_KNOWN_PROVIDERS) | declared_provider_names()


def invalidate_dispatch_caches() -> None:
    """Forget every op's resolved candidate lists (after a registration or a
    priority change). Cheap: the next call of each op resolves again."""
    for op in list(_ops.values()):
        op._invalidate()
