"""What ``ir bench`` times for one op: native (eager, the baseline), every
registered provider, ``torch.compile`` of native, and plain-torch baselines.

A candidate turns one call's arguments into two callables: ``check()`` runs
it functionally on copies of the inputs (its output is compared with native),
``timed()`` is what the timer calls. Providers are called directly (the
implementation's own function), not through dispatch, so each one is timed
whatever the priority says.

Inplace implementations are timed on a private copy of the inputs that each
call overwrites (no clone inside the timed region): the ops are memory-bound
and their traffic does not depend on the values, so re-applying the op to its
own output moves the same bytes as the first call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..impl import IrOpImpl
from ..op import IrOp

NATIVE = "native"
COMPILED = "native (compiled)"
#: ``--provider`` names of the non-provider candidates.
COMPILED_KEY = "compiled"
TORCH_KEY = "torch"


def clone_args(args: Sequence[Any]) -> list[Any]:
    """Copies of the tensor arguments (others as they are)."""
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


class Skip(Exception):
    """The candidate does not apply to this call (the message says why)."""


@dataclass
class Prepared:
    """A candidate bound to one call's arguments."""

    check: Callable[[], Any]
    timed: Callable[[], Any]


@dataclass
class Candidate:
    """One line of a benchmark table: ``label`` in tables and plots, ``key``
    as ``--provider`` names it, ``kind`` one of native/provider/compiled/torch."""

    label: str
    key: str
    kind: str
    prepare: Callable[[Sequence[Any]], Prepared]


def native_candidate(op: IrOp) -> Candidate:
    native = op.native

    def prepare(args: Sequence[Any]) -> Prepared:
        return Prepared(lambda: native(*clone_args(args)), lambda: native(*args))

    return Candidate(NATIVE, NATIVE, "native", prepare)


def provider_candidate(op: IrOp, impl: IrOpImpl) -> Candidate:
    """A registered implementation; skipped where unsupported here or where
    its ``supports_args`` rejects the call (the reasons dispatch would give)."""

    def prepare(args: Sequence[Any]) -> Prepared:
        if not impl.is_supported():
            raise Skip(f"unsupported here: {impl.unsupported_reason}")
        try:
            accepted = impl.accepts(*args)
        except Exception as exc:
            raise Skip(f"supports_args raised {type(exc).__name__}: {exc}") from None
        if not accepted:
            raise Skip("supports_args rejected the arguments")
        functional, fn = impl.functional_fn(), impl.fn
        if impl.inplace:
            work = clone_args(args)
            return Prepared(lambda: functional(*clone_args(args)), lambda: fn(*work))
        return Prepared(lambda: functional(*clone_args(args)), lambda: fn(*args))

    return Candidate(impl.provider, impl.provider, "provider", prepare)


def missing_candidate(provider: str) -> Candidate:
    """A provider asked for by name that has no implementation of this op."""

    def prepare(args: Sequence[Any]) -> Prepared:
        raise Skip("not installed (no implementation of this op registered)")

    return Candidate(provider, provider, "provider", prepare)


def _graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def compiled_candidate(op: IrOp) -> Candidate:
    """``torch.compile(op.native, dynamic=False)``, a fresh compiled function
    per shape (inductor, default mode). A call that Dynamo did not capture
    (eager fallback) is skipped, never timed under this label."""

    def prepare(args: Sequence[Any]) -> Prepared:
        compiled = torch.compile(op.native, dynamic=False)
        before = _graph_count()
        compiled(*clone_args(args))  # compiles
        if _graph_count() == before:
            raise Skip("torch.compile captured no graph (eager fallback)")
        return Prepared(lambda: compiled(*clone_args(args)), lambda: compiled(*args))

    return Candidate(COMPILED, COMPILED_KEY, "compiled", prepare)


def _torch_rms_norm(args: Sequence[Any]) -> Prepared:
    x, weight, epsilon, variance_size = args
    if variance_size is not None:
        raise Skip("F.rms_norm has no variance_size")
    shape = (x.shape[-1],)
    return Prepared(
        lambda: F.rms_norm(x.clone(), shape, weight, epsilon),
        lambda: F.rms_norm(x, shape, weight, epsilon),
    )


#: Plain-torch baselines per op: (label, prepare).
TORCH_BASELINES: dict[str, list[tuple[str, Callable[[Sequence[Any]], Prepared]]]] = {
    "rms_norm": [("torch F.rms_norm", _torch_rms_norm)],
}


def torch_candidates(op: IrOp) -> list[Candidate]:
    return [
        Candidate(label, TORCH_KEY, "torch", prep)
        for label, prep in TORCH_BASELINES.get(op.name, [])
    ]


def candidates_for(op: IrOp, providers: Sequence[str] | None, compiled: bool) -> list[Candidate]:
    """Native first (always: it is the speedup baseline), then the registered
    providers (sorted), the torch baselines, and compiled native last.
    ``providers`` filters by ``--provider`` key (None: all)."""

    def wanted(key: str) -> bool:
        return providers is None or key in providers

    out = [native_candidate(op)]
    out += [
        provider_candidate(op, impl)
        for name, impl in sorted(op.impls.items())
        if name != NATIVE and wanted(name)
    ]
    for name in providers or ():
        if name not in op.impls and name not in (TORCH_KEY, COMPILED_KEY):
            out.append(missing_candidate(name))
    if wanted(TORCH_KEY):
        out += torch_candidates(op)
    if compiled and wanted(COMPILED_KEY):
        out.append(compiled_candidate(op))
    return out


@contextlib.contextmanager
def compile_limits() -> Iterator[None]:
    """Raise Dynamo's recompile limits for the sweep (one compile per shape of
    the same function would otherwise hit them and fall back to eager)."""
    import torch._dynamo

    cfg = torch._dynamo.config
    names = [n for n in ("recompile_limit", "accumulated_recompile_limit") if hasattr(cfg, n)]
    if not names:
        names = [n for n in ("cache_size_limit", "accumulated_cache_size_limit") if hasattr(cfg, n)]
    with cfg.patch({n: max(int(getattr(cfg, n)), 4096) for n in names}):
        yield
