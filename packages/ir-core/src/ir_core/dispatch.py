"""Resolution: from an op's effective priority to an ordered candidate list.

Resolution runs once per (op, scope) and is cached by the op; the hot path
only runs the generated selector it produces.

Where a tuned table (:mod:`ir_core.tuning`) applies to an op, its resolution
carries it: :meth:`Resolution.for_call` gives the per-bucket resolution of one
call, :meth:`Resolution.choose` uses it (so the lowering pass, which calls
``choose`` on fake tensors, decides as eager dispatch does), and the selector
looks the bucket up per call (one dict and one tuple index). Ops without a
tuned table get exactly the plain selector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from . import _codegen
from .errors import NoImplementationError
from .priorities import Scope, effective_priority, is_batch_invariant

if TYPE_CHECKING:
    from .impl import IrOpImpl
    from .op import IrOp

logger = logging.getLogger(__name__)
_warned: set[tuple[str, tuple[str, ...]]] = set()


@dataclass
class Resolution:
    """The outcome of resolving an op's priority in one scope.

    ``candidates`` are tried in order; each but the last may reject a call
    through ``supports_args``. ``fallback_error`` is set when no candidate is
    guaranteed to accept (batch-invariant mode with no invariant
    implementation that accepts everything): a call nobody accepts raises it.
    """

    op: IrOp
    priority: tuple[str, ...]
    source: str
    batch_invariant: bool
    inplace: bool
    candidates: list[IrOpImpl]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    native_appended: bool = False
    fallback_error: str | None = None
    tracer: Any = None
    #: the op's tuned table (``ir_core.tuning.TunedOp``) when it applies in this scope
    tuned: Any = None
    _subs: dict[tuple[str, ...], Resolution] = field(default_factory=dict, repr=False)

    def _sub(self, names: tuple[str, ...]) -> Resolution:
        """The plain resolution of one tuned priority list (cached)."""
        sub = self._subs.get(names)
        if sub is None:
            sub = self._subs[names] = _resolve_names(
                self.op, names, self.tuned.source, self.batch_invariant, self.inplace, self.tracer
            )
        return sub

    def for_call(self, args: Sequence[Any]) -> Resolution:
        """The resolution that decides the call with positional ``args``: this one,
        or, where a tuned table applies, the one of the call's bucket."""
        if self.tuned is None:
            return self
        from .tuning.buckets import bucket_for

        bucket = bucket_for(self.op, tuple(args))
        names = self.tuned.priority_for_bucket(bucket, self.priority)
        if names is None:
            return self
        sub = _resolve_names(
            self.op,
            names,
            self.tuned.describe(bucket),
            self.batch_invariant,
            self.inplace,
            self.tracer,
        )
        return sub

    def choose(self, args: Sequence[Any]) -> IrOpImpl:
        """The implementation that would run for positional ``args``."""
        if self.tuned is not None:
            sub = self.for_call(args)
            if sub is not self:
                return sub.choose(args)
        for impl in self.candidates:
            if impl.accepts(*args):
                return impl
        raise NoImplementationError(
            self.fallback_error or f"ir.ops.{self.op.name}: no implementation accepts the call"
        )

    def _callable(self, impl: IrOpImpl) -> Callable[..., Any]:
        fn = impl.fn if self.inplace else impl.functional_fn()
        tracer = self.tracer
        if tracer is None:
            return fn
        op_name, provider = self.op.name, impl.provider

        def traced(*args: Any) -> Any:
            tracer._record(op_name, provider, args)
            return fn(*args)

        return traced

    def selector(self) -> Callable[..., Any]:
        """A function of the op's positional parameters that runs the chosen impl."""
        plain = self._plain_selector()
        if self.tuned is None:
            return plain
        return _tuned_selector(self, plain)

    def _plain_selector(self) -> Callable[..., Any]:
        pairs: list[tuple[Callable[..., Any], Callable[..., bool] | None]] = [
            (self._callable(impl), impl.supports_args) for impl in self.candidates
        ]
        if self.fallback_error is not None:
            message = self.fallback_error

            def refuse(*args: Any) -> Any:
                raise NoImplementationError(message)

            pairs.append((refuse, None))
        return _codegen.make_selector(self.op.param_names, pairs, self.op.name)


def resolve(op: IrOp, scope: Scope, *, inplace: bool = False) -> Resolution:
    """Resolve ``op``'s candidates in ``scope``: filter the effective priority by
    installed, supported and (in batch-invariant mode) invariant implementations;
    stop at the first one without ``supports_args``; append native if needed."""
    names, source = effective_priority(op.name, scope)
    invariant = is_batch_invariant(scope)
    res = _resolve_names(op, names, source, invariant, inplace, scope.tracer)
    if source not in ("scoped", "process"):  # an explicit priority beats a measured one
        from .tuning.table import tuned_op

        res.tuned = tuned_op(op.name)
    return res


def _resolve_names(
    op: IrOp, names: tuple[str, ...], source: str, invariant: bool, inplace: bool, tracer: Any
) -> Resolution:
    res = Resolution(op, names, source, invariant, inplace, [], tracer=tracer)
    for name in names:
        impl = op.impls.get(name)
        if impl is None:
            res.skipped.append((name, "not installed (no implementation of this op registered)"))
            continue
        if not impl.is_supported():
            res.skipped.append((name, f"unsupported here: {impl.unsupported_reason}"))
            continue
        if invariant and not impl.batch_invariant:
            res.skipped.append((name, "not batch-invariant (batch-invariant mode is on)"))
            continue
        res.candidates.append(impl)
        if impl.supports_args is None:
            break
    if not res.candidates or res.candidates[-1].supports_args is not None:
        native = op.impls["native"]
        if invariant and not native.batch_invariant:
            tried = ", ".join(i.provider for i in res.candidates) or "none"
            res.fallback_error = (
                f"ir.ops.{op.name}: batch-invariant mode is on and no batch-invariant implementation "
                f"accepts this call (priority {list(names)} from {source}; candidates tried: {tried}; "
                f"native is not batch-invariant for an op with a reduction). Install or prioritise a "
                f"provider with batch_invariant=True, e.g. triton."
            )
        elif native not in res.candidates:
            res.candidates.append(native)
            res.native_appended = True
            key = (op.name, names)
            if "native" not in names and key not in _warned:
                _warned.add(key)
                logger.info(
                    "ir: %s: no provider in %s accepts every call; native appended as the "
                    "last candidate",
                    op.name,
                    list(names),
                )
    return res


def _tuned_selector(res: Resolution, plain: Callable[..., Any]) -> Callable[..., Any]:
    """Per-call bucket dispatch: ``rows[(dtype, hidden)][tokens.bit_length()]``
    is the selector of that bucket's tuned priority; a (dtype, hidden) seen for
    the first time is filled in from the table (nearest measured hidden size,
    or the untuned ``plain`` selector), so it has exactly the answer of
    :meth:`Resolution.for_call`. Calls look the selector up by their exact
    (dtype, shape), filled in by ``miss`` on a shape's first call.

    A bucket whose tuned priority resolves to the untuned candidates uses
    ``plain`` itself; when that holds for every bucket of every row, ``plain``
    is returned and the table costs nothing per call."""
    from .tuning.buckets import bucket_param

    op, tuned = res.op, res.tuned
    pos = bucket_param(op)
    if pos is None:
        return plain
    by_names: dict[tuple[str, ...], Callable[..., Any]] = {}

    def selector_of(names: tuple[str, ...] | None) -> Callable[..., Any]:
        if names is None:
            return plain
        sel = by_names.get(names)
        if sel is None:
            sub = res._sub(names)
            same = sub.candidates == res.candidates and sub.fallback_error == res.fallback_error
            sel = by_names[names] = plain if same else sub._plain_selector()
        return sel

    rows: dict[tuple[Any, int], tuple[Callable[..., Any], ...]] = {}
    plain_row = (plain,) * 64

    def row_of(dtype: Any, hidden: int) -> tuple[Callable[..., Any], ...]:
        names_row = tuned.row(dtype, hidden, res.priority)
        return plain_row if names_row is None else tuple(selector_of(n) for n in names_row)

    for dtype, hidden in list(tuned.measured):
        rows[(dtype, hidden)] = row_of(dtype, hidden)
    if all(sel is plain for row in rows.values() for sel in row):
        return plain  # every measured row agrees with the untuned choice (so do nearest-row misses)

    by_shape: dict[Any, dict[Any, Callable[..., Any]]] = {}

    def miss(*args: Any) -> Any:
        t = args[pos]
        if not isinstance(t, torch.Tensor):
            return plain(*args)
        shape = t.shape
        if t.dim() == 0 or shape[-1] <= 0:
            sel = plain
        else:
            key = (t.dtype, shape[-1])
            row = rows.get(key)
            if row is None:
                row = row_of(*key)
                if len(rows) < 4096:  # bounded: a process sees few hidden sizes
                    rows[key] = row
            sel = row[min((shape.numel() // key[1]).bit_length(), 63)]
        shapes = by_shape.setdefault(t.dtype, {})
        if len(shapes) < 16384:  # bounded: one entry per token count seen, per hidden size
            shapes[shape] = sel
        return sel(*args)

    return _codegen.make_bucket_selector(op.param_names, pos, by_shape, miss, op.name)
