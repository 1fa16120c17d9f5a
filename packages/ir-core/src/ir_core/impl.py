"""One implementation of an IR op by one provider."""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .op import IrOp

logger = logging.getLogger(__name__)


class Unsupported:
    """A false answer of a ``supported`` callable that carries the reason.

    ``return Unsupported("no ROCm device")`` makes the implementation
    unsupported and shows the reason in ``explain`` and ``ir info``, without
    the warning an exception in ``supported`` would log.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Unsupported({self.reason!r})"


class Gate:
    """A ``supported=`` callable built from ``why_not() -> str | None``.

    ``why_not`` returns ``None`` when the implementation can run here, else a
    one-line reason, which the gate returns as :class:`Unsupported` so that
    ``explain`` and ``ir info`` show it (no warning is logged: a machine that
    simply lacks the device is not an error). ``attach`` remembers the
    registered implementation for the provider's own bookkeeping.
    """

    def __init__(self, why_not: Callable[[], str | None]) -> None:
        self._why_not = why_not
        self.impl: IrOpImpl | None = None

    def attach(self, impl: IrOpImpl) -> IrOpImpl:
        """Remember the registered implementation; returns it."""
        self.impl = impl
        return impl

    def reason(self) -> str | None:
        """Why the implementation cannot run here (``None``: it can)."""
        return self._why_not()

    def __call__(self) -> bool | Unsupported:
        reason = self._why_not()
        return True if reason is None else Unsupported(reason)


class IrOpImpl:
    """An implementation of ``op`` registered by ``provider``.

    Attributes mirror :meth:`IrOp.register_impl`'s arguments. Calling the
    object runs it with functional semantics: an ``inplace`` implementation
    gets clones of the op's activations. ``fn`` is the function as registered.
    """

    __slots__ = (
        "_source_hash",
        "_supported",
        "_unsupported_reason",
        "batch_invariant",
        "fn",
        "inplace",
        "op",
        "package",
        "provider",
        "supports_args",
    )

    def __init__(
        self,
        op: IrOp,
        provider: str,
        fn: Callable[..., Any],
        *,
        supported: bool | Callable[[], bool],
        supports_args: Callable[..., bool] | None,
        inplace: bool,
        batch_invariant: bool,
        package: str | None,
    ) -> None:
        self.op = op
        self.provider = provider
        self.fn = fn
        self._supported = supported
        self._unsupported_reason: str | None = None
        self.supports_args = supports_args
        self.inplace = inplace
        self.batch_invariant = batch_invariant
        self.package = package
        self._source_hash: str | None = None

    def __repr__(self) -> str:
        return f"<IrOpImpl {self.op.name}/{self.provider}>"

    # ---------------------------------------------------------- support

    def is_supported(self) -> bool:
        """Whether this implementation can run on this machine at all.

        ``supported`` may be a bool or a zero-argument callable; a callable is
        evaluated once, on first need (a CUDA provider may build its
        extension there), and an exception in it counts as unsupported. A
        callable may return :class:`Unsupported` (false, with the reason that
        ``explain`` and ``ir info`` then show) instead of plain ``False``.
        """
        sup = self._supported
        if isinstance(sup, bool):
            return sup
        try:
            result = sup()
            if isinstance(result, Unsupported):
                self._unsupported_reason = result.reason
            value = bool(result)
        except Exception as exc:
            value = False
            self._unsupported_reason = f"supported() raised {type(exc).__name__}: {exc}"
            logger.warning(
                "ir: %s/%s is unsupported here: %s",
                self.op.name,
                self.provider,
                self._unsupported_reason,
            )
        self._supported = value
        return value

    @property
    def unsupported_reason(self) -> str | None:
        """Why :meth:`is_supported` is false, when known."""
        if self.is_supported():
            return None
        return self._unsupported_reason or "supported=False on this platform"

    def accepts(self, *args: Any) -> bool:
        """Whether ``supports_args`` accepts these (positional, defaults filled) arguments."""
        return self.supports_args is None or bool(self.supports_args(*args))

    # ---------------------------------------------------------- calling

    def functional_fn(self) -> Callable[..., Any]:
        """The callable used under the functional overload: ``fn`` itself, or a
        wrapper that clones the activations for an inplace implementation."""
        if not self.inplace:
            return self.fn
        positions = self.op._activation_positions
        fn = self.fn

        def cloned(*args: Any) -> Any:
            args_l = list(args)
            for i in positions:
                if args_l[i] is not None:
                    args_l[i] = args_l[i].clone()
            return fn(*args_l)

        cloned.__name__ = f"{self.op.name}_{self.provider}_functional"
        return cloned

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.functional_fn()(*self.op._bind(args, kwargs))

    # ---------------------------------------------------------- identity

    def source_hash(self) -> str:
        """sha256 of the source files that define ``fn`` and ``supports_args``
        (whole files, so kernels beside the wrapper count too); part of the
        compile cache key. Falls back to code objects when no file exists."""
        if self._source_hash is None:
            h = hashlib.sha256()
            for obj in (self.fn, self.supports_args):
                if obj is None:
                    continue
                try:
                    path = inspect.getsourcefile(obj)
                    with open(path or "", "rb") as fh:
                        h.update(fh.read())
                except (OSError, TypeError):
                    code = getattr(obj, "__code__", None)
                    h.update(code.co_code if code is not None else repr(obj).encode())
            self._source_hash = h.hexdigest()
        return self._source_hash
