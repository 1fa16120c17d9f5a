"""Generated entry points for the eager hot path.

Each op gets a ``__call__`` with exactly the native signature (so keyword
arguments and defaults cost nothing at call time) and, per resolved candidate
list, a selector that tries ``supports_args`` checks in order. Generating them
as straight-line code avoids ``inspect``, ``*args`` packing and loops on the
hot path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .priorities import current_scope

# Anything that watches or transforms a call makes the op go through
# torch.ops.ir.<op>, so tracers see one IR node.
_HOT_GLOBALS: dict[str, Any] = {
    "__ir_compiling": torch.compiler.is_dynamo_compiling,
    "__ir_dispatch_modes": torch._C._len_torch_dispatch_stack,
    "__ir_function_modes": torch._C._len_torch_function_stack,
    "__ir_functorch": torch._C._are_functorch_transforms_active,
    "__ir_grad": torch.is_grad_enabled,
    "__ir_any_requires_grad": torch._C._any_requires_grad,
    "__ir_T": torch.Tensor,
    "__ir_P": torch.nn.Parameter,
    "__ir_scope": current_scope,
}


def _param_list(params: Sequence[inspect.Parameter], *, with_defaults: bool) -> str:
    out = []
    for p in params:
        out.append(
            p.name
            if not with_defaults or p.default is inspect.Parameter.empty
            else f"{p.name}={p.name}__default"
        )
    return ", ".join(out)


def make_entry(
    params: Sequence[inspect.Parameter],
    tensor_kinds: dict[str, str],
    torch_op: Any,
    cache: dict[Any, Any],
    resolve: Callable[[Any], Any],
    name: str,
) -> Callable[..., Any]:
    """Build ``f(self, <native params>)`` for the eager fast path.

    ``tensor_kinds`` maps each tensor parameter to ``"tensor"``,
    ``"optional"`` or ``"list"``.
    """
    names = [p.name for p in params]
    call_args = ", ".join(names)
    # A Parameter is a plain tensor here; any other subclass (FakeTensor,
    # FunctionalTensor, DTensor, ...) or an FX Proxy takes the torch-op path.
    plain_checks = []
    for pname, kind in tensor_kinds.items():
        not_plain = f"(type({pname}) is not __ir_T and type({pname}) is not __ir_P)"
        if kind == "tensor":
            plain_checks.append(not_plain)
        elif kind == "optional":
            plain_checks.append(f"({pname} is not None and {not_plain})")
        else:  # list of tensors
            plain_checks.append(
                f"any(type(t) is not __ir_T and type(t) is not __ir_P for t in {pname})"
            )
    watched = [
        "__ir_compiling()",
        "__ir_dispatch_modes()",
        "__ir_function_modes()",
        "__ir_functorch()",
        *plain_checks,
    ]
    if tensor_kinds:  # autograd needs a graph: grad mode on and an input requires grad
        watched.append(f"(__ir_grad() and __ir_any_requires_grad({', '.join(tensor_kinds)}))")
    src = (
        f"def __call__(__ir_self, {_param_list(params, with_defaults=True)}):\n"
        f"    if {' or '.join(watched)}:\n"
        f"        return __ir_torch_op({call_args})\n"
        f"    try:\n"
        f"        __ir_sel = __ir_cache[__ir_scope()]\n"
        f"    except KeyError:\n"
        f"        __ir_sel = __ir_resolve(__ir_scope())\n"
        f"    return __ir_sel({call_args})\n"
    )
    namespace: dict[str, Any] = dict(_HOT_GLOBALS)
    namespace.update({"__ir_torch_op": torch_op, "__ir_cache": cache, "__ir_resolve": resolve})
    for p in params:
        if p.default is not inspect.Parameter.empty:
            namespace[f"{p.name}__default"] = p.default
    exec(compile(src, f"<ir entry {name}>", "exec"), namespace)
    fn: Callable[..., Any] = namespace["__call__"]
    fn.__qualname__ = fn.__name__ = f"{name}.__call__"
    return fn


def make_selector(
    names: Sequence[str],
    candidates: Sequence[tuple[Callable[..., Any], Callable[..., bool] | None]],
    name: str,
) -> Callable[..., Any]:
    """Build ``select(<params>)`` that calls the first candidate whose check
    accepts the arguments. The last candidate must have no check."""
    if candidates[0][1] is None:
        return candidates[0][0]
    args = ", ".join(names)
    lines = [f"def select({args}):"]
    namespace: dict[str, Any] = {}
    for i, (fn, check) in enumerate(candidates):
        namespace[f"__f{i}"] = fn
        if check is None:
            lines.append(f"    return __f{i}({args})")
            break
        namespace[f"__c{i}"] = check
        lines.append(f"    if __c{i}({args}):")
        lines.append(f"        return __f{i}({args})")
    exec(compile("\n".join(lines) + "\n", f"<ir selector {name}>", "exec"), namespace)
    select: Callable[..., Any] = namespace["select"]
    return select


def make_bucket_selector(
    names: Sequence[str], pos: int, by_shape: dict[Any, Any], miss: Callable[..., Any], name: str
) -> Callable[..., Any]:
    """Build ``select(<params>)`` for a tuned op: with ``t`` the parameter at
    ``pos``, it calls ``by_shape[t.dtype][t.shape](<params>)``, or
    ``miss(<params>)`` when that entry is absent (or ``t`` is not a tensor).

    Keyed on the whole shape, a call costs two attribute reads and two dict
    lookups instead of also computing the bucket (``numel``, ``bit_length``,
    a tuple index) every call; ``miss`` computes the bucket once per new
    shape and may add it. ``by_shape`` is read live. (The saving, tens of ns,
    is below the noise of the CI machine's dispatch benchmark.)"""
    args = ", ".join(names)
    t = names[pos]
    src = (
        f"def select({args}):\n"
        f"    try:\n"
        f"        __sel = __by_shape[{t}.dtype][{t}.shape]\n"
        f"    except Exception:\n"
        f"        return __miss({args})\n"
        f"    return __sel({args})\n"
    )
    namespace: dict[str, Any] = {"__by_shape": by_shape, "__miss": miss}
    exec(compile(src, f"<ir bucket selector {name}>", "exec"), namespace)
    select: Callable[..., Any] = namespace["select"]
    return select
