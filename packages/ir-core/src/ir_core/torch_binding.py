"""Registration of IR ops as torch ops in the ``ir`` namespace.

Per op: one ``torch.library.Library`` fragment (so a failed registration can
be destroyed whole), the functional overload ``torch.ops.ir.<name>.default``
and, for ``allow_inplace`` ops, ``torch.ops.ir.<name>.maybe_inplace``. The
kernel is ``CompositeExplicitAutograd`` (AOTAutograd keeps the op as one
node); the fake kernel is the native implementation unless
:meth:`IrOp.register_fake` replaced it; autograd is the vector-Jacobian
product of the native implementation, so ``loss.backward()`` works whichever
provider ran the forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .errors import RegistrationError
from .priorities import current_scope

if TYPE_CHECKING:
    from .op import IrOp

NAMESPACE = "ir"
_libraries: dict[str, torch.library.Library] = {}
# torch.library.Library's methods carry no annotations, so strict mypy flags
# every call to them ("untyped call"); the ignores below are for that only.
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def must_trace(op: IrOp, args: Sequence[Any]) -> bool:
    """Slow-path twin of the generated check: does something watch this call?"""
    if (
        torch.compiler.is_compiling()
        or torch._C._len_torch_dispatch_stack()
        or torch._C._len_torch_function_stack()
        or torch._C._are_functorch_transforms_active()
    ):
        return True
    grad = torch.is_grad_enabled()
    for a in args:
        items = a if isinstance(a, (list, tuple)) else (a,)
        for t in items:
            if isinstance(t, torch.Tensor):
                if type(t) not in _PLAIN or (grad and t.requires_grad):
                    return True
            elif isinstance(t, torch.fx.Proxy):
                return True
    return False


def _unalias(outputs: Any, inputs: Sequence[Any]) -> Any:
    """Clone outputs that share storage with an input (schemas promise fresh outputs)."""
    ptrs = {
        t.untyped_storage().data_ptr()
        for t in inputs
        if isinstance(t, torch.Tensor) and t.numel() > 0
    }

    def fix(o: Any) -> Any:
        if isinstance(o, torch.Tensor) and o.numel() > 0 and o.untyped_storage().data_ptr() in ptrs:
            return o.clone()
        return o

    if isinstance(outputs, tuple):
        return tuple(fix(o) for o in outputs)
    return fix(outputs)


def define(op: IrOp) -> None:
    """Define ``torch.ops.ir.<op.name>`` and its kernels; on failure remove all of it."""
    lib = torch.library.Library(NAMESPACE, "FRAGMENT")  # type: ignore[no-untyped-call]
    qualname = f"{NAMESPACE}::{op.name}"
    torch_tags = tuple(t for t in op.tags if isinstance(t, torch.Tag))
    try:
        lib.define(op.name + op.schema, tags=torch_tags)  # type: ignore[no-untyped-call]

        n_params = len(op.param_names)
        # The dispatcher drops trailing arguments left at their defaults; the
        # selectors and impls take every parameter positionally. Only defaulted
        # parameters can be dropped, so the tail of this tuple fills them in.
        defaults = tuple(p.default for p in op.params)

        def kernel(*args: Any) -> Any:
            if len(args) < n_params:
                args = args + defaults[len(args) :]
            # Functional overload: never alias an input, even if an impl is sloppy.
            return _unalias(op._select(current_scope(), False)(*args), args)

        lib.impl(op.name, kernel, "CompositeExplicitAutograd")  # type: ignore[no-untyped-call]

        def fake(*args: Any) -> Any:
            return op._fake_fn(*args)

        torch.library.register_fake(qualname, fake, lib=lib)
        _register_autograd(op, qualname, lib)
        if op.inplace_schema is not None:
            lib.define(f"{op.name}.maybe_inplace" + op.inplace_schema, tags=torch_tags)  # type: ignore[no-untyped-call]

            def inplace_kernel(*args: Any) -> Any:
                if len(args) < n_params:
                    args = args + defaults[len(args) :]
                return _unalias(op._select(current_scope(), True)(*args), args)

            lib.impl(f"{op.name}.maybe_inplace", inplace_kernel, "CompositeExplicitAutograd")  # type: ignore[no-untyped-call]
            lib.impl(f"{op.name}.maybe_inplace", fake, "Meta")  # type: ignore[no-untyped-call]
        op.torch_op = getattr(torch.ops.ir, op.name)
    except Exception as exc:
        lib._destroy()  # type: ignore[no-untyped-call]
        raise RegistrationError(f"op {op.name!r}: torch registration failed: {exc}") from exc
    _libraries[op.name] = lib


def undefine(name: str) -> None:
    """Remove ``torch.ops.ir.<name>`` (used by tests and failed registrations)."""
    lib = _libraries.pop(name, None)
    if lib is not None:
        lib._destroy()  # type: ignore[no-untyped-call]


def _register_autograd(op: IrOp, qualname: str, lib: torch.library.Library) -> None:
    n = len(op.param_names)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        tensor_idx = [i for i, a in enumerate(inputs) if isinstance(a, torch.Tensor)]
        ctx.tensor_idx = tensor_idx
        ctx.others = [None if i in tensor_idx else a for i, a in enumerate(inputs)]
        ctx.save_for_backward(*(inputs[i] for i in tensor_idx))

    def backward(ctx: Any, *grads: Any) -> tuple[Any, ...]:
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_idx, ctx.saved_tensors, strict=False):
            args[i] = t
        wanted = [i for i in ctx.tensor_idx if ctx.needs_input_grad[i]]
        result: list[Any] = [None] * n
        if not wanted:
            return tuple(result)
        with torch.enable_grad():
            for i in wanted:
                args[i] = args[i].detach().requires_grad_(True)
            outs = op.native(*args)
        outs_t = outs if isinstance(outs, tuple) else (outs,)
        pairs = [
            (o, g)
            for o, g in zip(outs_t, grads, strict=False)
            if isinstance(o, torch.Tensor) and o.requires_grad and g is not None
        ]
        if not pairs:
            return tuple(result)
        got = torch.autograd.grad(
            [o for o, _ in pairs],
            [args[i] for i in wanted],
            [g for _, g in pairs],
            allow_unused=True,
        )
        for i, g in zip(wanted, got, strict=False):
            result[i] = g
        return tuple(result)

    torch.library.register_autograd(qualname, backward, setup_context=setup_context, lib=lib)
