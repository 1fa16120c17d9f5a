"""IR ops: :func:`register_op` and :class:`IrOp`.

An op is defined once by its native (PyTorch reference) implementation.
Providers add implementations with :meth:`IrOp.register_impl`. Calling the op
dispatches: eagerly through a generated fast path, or through the torch op
``torch.ops.ir.<name>`` whenever something traces or transforms the call.
"""

from __future__ import annotations

import inspect
import logging
import threading
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from . import _codegen, registry, torch_binding
from .dispatch import Resolution, resolve
from .errors import RegistrationError
from .explain import Explanation, explain_call
from .impl import IrOpImpl
from .priorities import Scope, current_scope
from .schema import infer_schema

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Default tolerances (atol, rtol) of the testing kit, per dtype.
DEFAULT_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-5, 1.3e-6),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1e-3, 1.6e-2),
    torch.float8_e4m3fn: (2e-3, 0.126),  # one e4m3 ulp is at most 1/8 of the value
}


def _tensor_kind(tp: Any) -> str | None:
    optional = typing.get_origin(tp) in (typing.Union, __import__("types").UnionType)
    inner = tp
    if optional:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = args[0] if len(args) == 1 else None
    if inner is torch.Tensor:
        return "optional" if optional else "tensor"
    if typing.get_origin(inner) is list and typing.get_args(inner) == (torch.Tensor,):
        return "list"
    return None


class IrOp:
    """An IR op. Instances are created by :func:`register_op` and live in ``ir_core.ops``.

    Call it like the native function. Useful attributes: ``name``, ``native``,
    ``schema``, ``impls`` (provider -> :class:`IrOpImpl`, ``"native"``
    included), ``torch_op`` (``torch.ops.ir.<name>``), ``activations``,
    ``allow_inplace``, ``has_reduction``, ``tags``.
    """

    # Replaced per op (in a subclass) by the generated fast path.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __init__(
        self,
        native: Callable[..., Any],
        *,
        name: str,
        activations: Sequence[str],
        allow_inplace: bool,
        has_reduction: bool,
        tags: Sequence[Any],
    ) -> None:
        self.name = name
        self.native = native
        self.signature = inspect.signature(native)
        self.params = list(self.signature.parameters.values())
        self.param_names = [p.name for p in self.params]
        hints = typing.get_type_hints(native)
        self.tensor_kinds = {p: k for p in self.param_names if (k := _tensor_kind(hints[p]))}
        self.activations = tuple(activations)
        self._activation_positions = tuple(self.param_names.index(a) for a in self.activations)
        self.allow_inplace = allow_inplace
        self.has_reduction = has_reduction
        self.tags = tuple(tags)
        self.schema = infer_schema(native)
        # The maybe_inplace torch overload needs plain Tensor returns (torch's
        # auto-functionalization rejects optional ones); without it, traced
        # calls of op.maybe_inplace use the functional overload.
        returns = self.schema.split("->", 1)[1]
        plain_returns = "?" not in returns and "[]" not in returns
        self.inplace_schema = (
            infer_schema(native, mutates=self.activations)
            if allow_inplace and plain_returns
            else None
        )
        self.impls: dict[str, IrOpImpl] = {}
        self._cache: dict[Scope, Callable[..., Any]] = {}
        self._inplace_cache: dict[Scope, Callable[..., Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._fake_fn: Callable[..., Any] = native
        self.torch_op: Any = None
        # testing-kit metadata (see ir_core.testing)
        self.tolerances: dict[torch.dtype, tuple[float, float]] = dict(DEFAULT_TOLERANCES)
        self.input_generator: Callable[..., Any] | None = None
        #: keyword sets passed to the input generator, one case each
        self.test_variants: list[dict[str, Any]] = [{}]
        self.compare: Callable[..., Any] | None = None
        self.bytes_moved: Callable[..., int] | None = None
        #: ``ir bench``: the sweep's hidden size -> the width passed to the input
        #: generator (gated activations: the MLP's intermediate size); None: the same
        self.bench_width: Callable[[int], int] | None = None
        self.impls["native"] = IrOpImpl(
            self,
            "native",
            native,
            supported=True,
            supports_args=None,
            inplace=False,
            batch_invariant=not has_reduction,
            package="ir-core",
        )

    def __repr__(self) -> str:
        return f"<IrOp {self.name}{self.schema}>"

    # ------------------------------------------------------- registration

    def register_impl(
        self,
        provider: str,
        *,
        supported: bool | Callable[[], bool] = True,
        supports_args: Callable[..., bool] | None = None,
        inplace: bool = False,
        batch_invariant: bool | None = None,
    ) -> Callable[[Callable[..., Any]], IrOpImpl]:
        """Decorator registering an implementation of this op by ``provider``.

        Args:
            provider: the provider's name (``[a-z_][a-z0-9_]*``; ``native`` is reserved).
            supported: a static platform check (bool, or a zero-argument callable
                evaluated once, lazily). Never an enablement switch: priority is.
            supports_args: per-call check with the op's exact parameters; the
                implementation is skipped for calls it rejects.
            inplace: the implementation writes into the op's activations
                (only for ops registered with ``allow_inplace``).
            batch_invariant: each output row is bitwise independent of the
                batch it is in. Defaults to True for ops without a reduction,
                False otherwise (the testing kit proves a True claim).

        The implementation's signature must equal the native one: same
        parameter names, kinds and defaults, and (where annotated) types.
        """

        def decorator(fn: Callable[..., Any]) -> IrOpImpl:
            impl = self._validate_impl(
                provider, fn, supported, supports_args, inplace, batch_invariant
            )
            with registry.lock:
                if provider in self.impls:  # re-check under the lock
                    raise RegistrationError(
                        f"op {self.name!r}: provider {provider!r} is already registered"
                    )
                self.impls[provider] = impl
            from .providers import currently_loading

            loading = currently_loading()
            if loading is not None:
                loading.providers.add(provider)
            self._invalidate()
            logger.debug("ir: registered %s/%s", self.name, provider)
            return impl

        return decorator

    def _validate_impl(
        self,
        provider: str,
        fn: Callable[..., Any],
        supported: Any,
        supports_args: Any,
        inplace: bool,
        batch_invariant: bool | None,
    ) -> IrOpImpl:
        where = f"op {self.name!r}, provider {provider!r}"
        if not isinstance(provider, str) or not registry.NAME_RE.match(provider):
            raise RegistrationError(f"{where}: provider names must match [a-z_][a-z0-9_]*")
        if provider in registry.RESERVED_PROVIDERS:
            raise RegistrationError(f"{where}: {provider!r} is reserved")
        if provider in self.impls:
            raise RegistrationError(f"{where}: this provider already registered an implementation")
        if not callable(fn):
            raise RegistrationError(f"{where}: the implementation is not callable")
        if not (isinstance(supported, bool) or callable(supported)):
            raise RegistrationError(
                f"{where}: supported must be a bool or a zero-argument callable"
            )
        self._check_same_signature(fn, where=f"{where}: implementation")
        if supports_args is not None:
            if not callable(supports_args):
                raise RegistrationError(f"{where}: supports_args must be callable")
            self._check_same_signature(supports_args, where=f"{where}: supports_args", types=False)
        if inplace and not self.allow_inplace:
            raise RegistrationError(
                f"{where}: inplace=True needs the op registered with allow_inplace=True"
            )
        if batch_invariant is None:
            batch_invariant = not self.has_reduction
        from .providers import currently_loading

        loading = currently_loading()
        package = loading.distribution if loading is not None else getattr(fn, "__module__", None)
        return IrOpImpl(
            self,
            provider,
            fn,
            supported=supported,
            supports_args=supports_args,
            inplace=bool(inplace),
            batch_invariant=bool(batch_invariant),
            package=package,
        )

    def _check_same_signature(
        self, fn: Callable[..., Any], *, where: str, types: bool = True
    ) -> None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise RegistrationError(f"{where}: cannot read its signature ({exc})") from None
        mine = [(p.name, p.kind, p.default) for p in sig.parameters.values()]
        native = [(p.name, p.kind, p.default) for p in self.params]
        if mine != native:
            raise RegistrationError(
                f"{where}: signature {sig} differs from the native {self.signature} "
                "(names, order, kinds and defaults must be equal)"
            )
        if types and any(
            p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()
        ):
            try:
                schema = infer_schema(fn)
            except TypeError as exc:
                raise RegistrationError(f"{where}: {exc}") from None
            if schema != self.schema:
                raise RegistrationError(
                    f"{where}: schema {schema} differs from the native {self.schema}"
                )

    def unregister_impl(self, provider: str) -> IrOpImpl:
        """Remove ``provider``'s implementation (tests, hot reload). Native stays."""
        if provider == "native":
            raise RegistrationError(
                f"op {self.name!r}: the native implementation cannot be removed"
            )
        with registry.lock:
            try:
                impl = self.impls.pop(provider)
            except KeyError:
                raise KeyError(f"op {self.name!r} has no provider {provider!r}") from None
        self._invalidate()
        return impl

    def register_fake(self, fn: F) -> F:
        """Use ``fn`` instead of the native implementation as the fake (meta) kernel."""
        self._check_same_signature(fn, where=f"op {self.name!r}: fake", types=False)
        self._fake_fn = fn
        return fn

    def register_input_generator(self, fn: F) -> F:
        """Set the testing kit's input generator: ``fn(tokens, hidden, dtype, device) -> tuple``
        of positional arguments (see :mod:`ir_core.testing`)."""
        self.input_generator = fn
        return fn

    def override_tolerance(self, dtype: torch.dtype, atol: float, rtol: float) -> None:
        """Set the testing kit's tolerance for outputs of ``dtype``."""
        self.tolerances[dtype] = (atol, rtol)

    # ----------------------------------------------------------- dispatch

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Positional arguments with defaults filled (slow path only)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"ir.ops.{self.name}: {exc}") from None
        bound.apply_defaults()
        return tuple(bound.arguments[n] for n in self.param_names)

    def _invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._inplace_cache.clear()

    def resolution(self, scope: Scope | None = None, *, inplace: bool = False) -> Resolution:
        """The ordered candidates in ``scope`` (default: the current one)."""
        return resolve(self, current_scope() if scope is None else scope, inplace=inplace)

    def _resolve_into(
        self, cache: dict[Scope, Callable[..., Any]], scope: Scope, inplace: bool
    ) -> Callable[..., Any]:
        from .providers import load_providers

        load_providers()
        generation = self._generation
        select = resolve(self, scope, inplace=inplace).selector()
        with self._lock:
            if generation == self._generation:  # nothing changed while resolving
                cache[scope] = select
        return select

    def _select(self, scope: Scope, inplace: bool = False) -> Callable[..., Any]:
        cache = self._inplace_cache if inplace else self._cache
        return cache.get(scope) or self._resolve_into(cache, scope, inplace)

    def dispatch(self, *args: Any, **kwargs: Any) -> IrOpImpl:
        """The implementation a call with these arguments would run."""
        from .providers import load_providers

        load_providers()
        return self.resolution().choose(self._bind(args, kwargs))

    def explain(self, *args: Any, **kwargs: Any) -> Explanation:
        """Every candidate for this call: chosen, or skipped and why."""
        from .providers import load_providers

        load_providers()
        return explain_call(self, self._bind(args, kwargs), current_scope())

    def maybe_inplace(self, *args: Any, **kwargs: Any) -> Any:
        """Call the op allowing implementations to write into its activations
        (the caller gives up their contents). Only for ``allow_inplace`` ops."""
        if not self.allow_inplace:
            raise TypeError(f"ir.ops.{self.name} was not registered with allow_inplace=True")
        full = self._bind(args, kwargs)
        if torch_binding.must_trace(self, full):
            overload = self.torch_op.maybe_inplace if self.inplace_schema else self.torch_op.default
            return overload(*full)
        return self._select(current_scope(), True)(*full)


def _valid_native(fn: Callable[..., Any], name: str) -> None:
    if not registry.NAME_RE.match(name):
        raise RegistrationError(f"op {name!r}: names must match [a-z_][a-z0-9_]*")
    if name in registry.ops():
        raise RegistrationError(f"op {name!r} is already registered")
    if hasattr(torch.ops.ir, name):
        raise RegistrationError(f"op {name!r}: torch.ops.ir.{name} already exists")
    for p in inspect.signature(fn).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            raise RegistrationError(
                f"op {name!r}: keyword-only parameter {p.name!r} is not allowed "
                "(graph nodes carry positional arguments only)"
            )
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise RegistrationError(f"op {name!r}: *args/**kwargs are not allowed")
        if not p.name.isidentifier() or p.name.startswith("__ir") or p.name == "self":
            raise RegistrationError(f"op {name!r}: parameter name {p.name!r} is not allowed")


@typing.overload
def register_op(
    f: Callable[..., Any],
    *,
    name: str | None = None,
    activations: Sequence[str] | None = None,
    allow_inplace: bool = False,
    has_reduction: bool = False,
    tags: Sequence[Any] = (),
) -> IrOp: ...


@typing.overload
def register_op(
    f: None = None,
    *,
    name: str | None = None,
    activations: Sequence[str] | None = None,
    allow_inplace: bool = False,
    has_reduction: bool = False,
    tags: Sequence[Any] = (),
) -> Callable[[Callable[..., Any]], IrOp]: ...


def register_op(
    f: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    activations: Sequence[str] | None = None,
    allow_inplace: bool = False,
    has_reduction: bool = False,
    tags: Sequence[Any] = (),
) -> IrOp | Callable[[Callable[..., Any]], IrOp]:
    """Register an IR op defined by its native implementation ``f``.

    Use as ``@register_op`` or ``@register_op(has_reduction=True)``.

    Args:
        name: op name (default: the function's name); ``torch.ops.ir.<name>``.
        activations: tensor parameters that carry activations (default: those
            whose name starts with ``x``); inplace implementations may write them.
        allow_inplace: add a ``maybe_inplace`` overload and allow ``inplace`` impls.
        has_reduction: the op reduces across a dimension, so an implementation
            is batch-invariant only if it says so.
        tags: ``torch.Tag`` values for the torch op, and free-form strings that
            passes may read from ``op.tags``.

    Returns the :class:`IrOp`. A failed registration raises
    :class:`RegistrationError` and leaves nothing registered.
    """

    def decorator(fn: Callable[..., Any]) -> IrOp:
        op_name = name or fn.__name__
        _valid_native(fn, op_name)
        try:
            hints = typing.get_type_hints(fn)
            tensor_params = [
                p
                for p in inspect.signature(fn).parameters
                if p in hints and _tensor_kind(hints[p]) in ("tensor", "optional")
            ]
            acts = (
                list(activations)
                if activations is not None
                else [p for p in tensor_params if p.startswith("x")]
            )
            for a in acts:
                if a not in tensor_params:
                    raise RegistrationError(
                        f"op {op_name!r}: activation {a!r} is not a Tensor parameter"
                    )
            if allow_inplace and not acts:
                raise RegistrationError(
                    f"op {op_name!r}: allow_inplace needs at least one activation"
                )
            cls = type(f"IrOp_{op_name}", (IrOp,), {})
            op: IrOp = cls(
                fn,
                name=op_name,
                activations=acts,
                allow_inplace=allow_inplace,
                has_reduction=has_reduction,
                tags=tags,
            )
        except RegistrationError:
            raise
        except Exception as exc:  # schema inference and friends
            raise RegistrationError(f"op {op_name!r}: {exc}") from exc
        torch_binding.define(op)  # raises RegistrationError and cleans up on failure
        cls.__call__ = _codegen.make_entry(  # type: ignore[method-assign]
            op.params,
            op.tensor_kinds,
            op.torch_op.default,
            op._cache,
            lambda scope: op._resolve_into(op._cache, scope, False),
            op_name,
        )
        cls.__doc__ = fn.__doc__
        registry.add(op)
        return op

    return decorator(f) if f is not None else decorator
