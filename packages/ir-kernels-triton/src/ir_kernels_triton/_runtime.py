"""Where the Triton kernels can run, and how they are turned into torch ops.

Two modes, fixed at import (Triton itself decides at ``@triton.jit`` time):

* GPU: ops are ``torch.library.triton_op``s whose bodies launch kernels through
  ``wrap_triton``, so Inductor traces into the kernels and CUDA graphs capture
  them; tensors must be on a CUDA (or ROCm) device.
* Interpreter (``TRITON_INTERPRET=1``): kernels run on the CPU through
  Triton's interpreter. ``wrap_triton`` cannot trace interpreted kernels, so
  the ops are plain ``torch.library.custom_op``s whose fake kernel runs the same
  body with launches skipped; tensors must be on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from . import _fastlaunch

INTERPRET: bool = os.environ.get("TRITON_INTERPRET") == "1"

try:
    import triton
    from torch.library import triton_op, wrap_triton

    TRITON_ERROR: str | None = None
except Exception as exc:  # a broken or missing Triton makes the provider unsupported
    triton = None
    TRITON_ERROR = f"{type(exc).__name__}: {exc}"

#: The activation dtypes every kernel handles.
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FP8_DTYPE = torch.float8_e4m3fn
NAMESPACE = "ir_triton"


def platform_supported() -> bool:
    """The provider's static check: Triton importable and a GPU present, or
    the interpreter on. Raises (so ir-core records why) when Triton is missing."""
    if TRITON_ERROR is not None:
        raise ImportError(f"triton is not importable: {TRITON_ERROR}")
    return INTERPRET or torch.cuda.is_available()


def on_device(t: torch.Tensor) -> bool:
    """Whether a tensor lives where this mode's kernels run (the CPU under the
    interpreter, else a CUDA/ROCm GPU)."""
    return t.is_cpu if INTERPRET else t.is_cuda


_fp8_ok: dict[int, bool] = {}


def fp8_ok(t: torch.Tensor) -> bool:
    """Whether kernels on ``t``'s device can convert to float8_e4m3fn.

    Triton's e4m3 ("fp8e4nv") type needs compute capability 8.9 on NVIDIA; the
    interpreter handles it (with the exact pre-rounding of
    :func:`ir_kernels_triton.kernels.common.round_to_e4m3`).
    """
    if INTERPRET:
        return True
    if torch.version.hip is not None:  # ROCm parts use the fnuz variant: untested here
        return False
    idx = t.device.index if t.device.index is not None else torch.cuda.current_device()
    ok = _fp8_ok.get(idx)
    if ok is None:
        ok = _fp8_ok[idx] = torch.cuda.get_device_capability(idx) >= (8, 9)
    return ok


def rows_view(x: torch.Tensor) -> tuple[int, int] | None:
    """``(rows, row_stride)`` when ``x`` is a stack of rows over its last
    dimension with unit stride there and one constant stride between rows
    (contiguous, or row-strided like a slice of a wider buffer); else None."""
    if x.dim() == 0 or (x.stride(-1) != 1 and x.shape[-1] > 1):
        return None
    rows, row_stride = 1, x.shape[-1]
    inner: tuple[int, int] | None = None  # (size, stride) of the last non-trivial leading dim
    for size, stride in zip(reversed(x.shape[:-1]), reversed(x.stride()[:-1]), strict=True):
        rows *= size
        if size == 1:
            continue
        if inner is None:
            row_stride = stride
        elif stride != inner[0] * inner[1]:  # leading dims do not collapse into one
            return None
        inner = (size, stride)
    return rows, row_stride


_CONTIGUOUS = torch.contiguous_format


def new_out(x: torch.Tensor, dtype: torch.dtype | None, direct: bool) -> torch.Tensor:
    """A fresh contiguous tensor of ``x``'s shape and device (``dtype``, or
    ``x``'s). Eager calls take ``empty_like`` (about half the host time of
    ``torch.empty(shape, dtype=, device=)``); traced calls keep the plain form."""
    if direct:
        return torch.empty_like(x, dtype=dtype, memory_format=_CONTIGUOUS)
    return torch.empty(x.shape, dtype=x.dtype if dtype is None else dtype, device=x.device)


def rows_of(t: torch.Tensor, n: int, direct: bool) -> tuple[torch.Tensor, int]:
    """``(tensor, row stride)`` of ``t`` seen as rows of ``n`` elements, as the
    kernels take them (a base pointer and a stride). An eager contiguous
    tensor is passed as it is (the kernel reads only its data pointer, and no
    view is built); otherwise a ``[-1, n]`` view (``supports_args`` admits
    row-collapsible tensors only). Traced calls always take the view, so
    nothing about contiguity is asked of symbolic shapes."""
    if direct and t.is_contiguous():
        return t, n
    t2 = t.reshape(-1, n)
    return t2, t2.stride(0)


def _is_fake(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and (
        t.device.type == "meta" or isinstance(t, torch._subclasses.fake_tensor.FakeTensor)
    )


def launch(kernel: Any, grid: tuple[Any, ...], direct: bool, *args: Any, **kwargs: Any) -> None:
    """Launch ``kernel[grid](*args, **kwargs)``.

    ``direct``: the caller is the eager fast path (nothing traces the call),
    so the kernel is launched as is, reusing the compiled kernel of an
    earlier launch with the same specialisation (:mod:`._fastlaunch`). Otherwise, on a GPU, through
    ``wrap_triton`` (a graph node under make_fx/Inductor, a plain launch in
    eager); under the interpreter, a launch on fake tensors (the op's fake
    kernel) is skipped.
    """
    if direct:
        _fastlaunch.launch(kernel, grid, args, kwargs)
    elif INTERPRET:
        if not any(_is_fake(a) for a in args):
            kernel[grid](*args, **kwargs)
    else:
        wrap_triton(kernel)[grid](*args, **kwargs)


def define_op(
    name: str, *, mutates_args: Sequence[str] = ()
) -> Callable[[Callable[..., Any]], Any]:
    """Decorator turning a launcher function into ``torch.ops.ir_triton.<name>``."""
    qualname = f"{NAMESPACE}::{name}"

    def deco(fn: Callable[..., Any]) -> Any:
        if INTERPRET:
            op = torch.library.custom_op(qualname, fn, mutates_args=tuple(mutates_args))
            op.register_fake(fn)  # launch() skips kernels on fake tensors
            return op
        return triton_op(qualname, fn, mutates_args=tuple(mutates_args))

    return deco


_compiling = torch.compiler.is_compiling
_dispatch_modes = torch._C._len_torch_dispatch_stack
_function_modes = torch._C._len_torch_function_stack
_functorch = torch._C._are_functorch_transforms_active


def eager(*tensors: torch.Tensor | None) -> bool:
    """True when nothing traces or transforms this call and every tensor is a
    plain one: the launcher may then run directly, skipping the torch-op
    layer (about 10 us of host time per call on a GPU machine)."""
    if _compiling() or _dispatch_modes() or _function_modes() or _functorch():
        return False
    for t in tensors:
        if t is not None and type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
            return False
    return True
