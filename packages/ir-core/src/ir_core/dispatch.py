"""Resolution: from an op's effective priority to an ordered candidate list.

Resolution runs once per (op, scope) and is cached by the op; the hot path
only runs the generated selector it produces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

    def choose(self, args: Sequence[Any]) -> IrOpImpl:
        """The implementation that would run for positional ``args``."""
        for impl in self.candidates:
            if impl.accepts(*args):
                return impl
        raise NoImplementationError(self.fallback_error or f"ir.ops.{self.op.name}: no implementation accepts the call")

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
        pairs: list[tuple[Callable[..., Any], Callable[..., bool] | None]] = [
            (self._callable(impl), impl.supports_args) for impl in self.candidates]
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
    res = Resolution(op, names, source, invariant, inplace, [], tracer=scope.tracer)
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
                f"provider with batch_invariant=True, e.g. triton.")
        elif native not in res.candidates:
            res.candidates.append(native)
            res.native_appended = True
            key = (op.name, names)
            if "native" not in names and key not in _warned:
                _warned.add(key)
                logger.info("ir: %s: no provider in %s accepts every call; native appended as the "
                            "last candidate", op.name, list(names))
    return res
