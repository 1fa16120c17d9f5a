"""Registers the ``cuda`` provider: one implementation per IR op, each a thin
call of ``torch.ops.ir_cuda.<op>`` (bound once, see :mod:`.runtime`), or, when
nothing traces the call, of the same C++ function through the extension's
direct binding (:func:`runtime.kernels`: skips the dispatcher's host time).

Importing this module (the ``ir.providers`` entry point) registers only; it
never builds. ``supported`` is the lazy check of :func:`runtime.ensure_loaded`
(CUDA GPU of sm_80 or newer, extension built or cached). ``supports_args``
accepts exactly what the kernels handle, anything else falls through to the
next provider:

* activations: float32, float16 or bfloat16 CUDA tensors, last dimension
  contiguous, either contiguous or 2-D with a row stride (any alignment: a
  misaligned row takes the element-wise path);
* tensors that go with them (weight, residual, scales, positions, cache)
  with the dtypes and layouts listed per op below. Their device is not
  compared on the hot path (native fails as well on a device mismatch; the
  C++ op raises naming the tensor), except for rotary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import ir_core as ir
from ir_core.impl import IrOpImpl

from . import runtime

PROVIDER = "cuda"
_DTYPES = frozenset((torch.float32, torch.float16, torch.bfloat16))
_F32 = torch.float32
_POS_DTYPES = frozenset((torch.int64, torch.int32))
#: Group quant: 16-byte chunks per lane the kernel keeps (see launch.h).
_GROUP_MAX_CHUNKS_PER_LANE = 4


# ----------------------------------------------------------------- argument checks


# These run on every call (the 1-token path is CPU bound): cheapest tests
# first, no device comparison for the tensors that go with ``x`` (weight,
# residual, scales): a tensor on another device makes native fail as well, and
# the C++ op names it in its error. A last dimension of 2**31 or more is
# rejected by the C++ checks.


def _rows_ok(x: Tensor) -> bool:
    """A float activation on a CUDA device seen as rows with one row stride."""
    return (
        x.dtype in _DTYPES
        and x.is_cuda
        and ((x.is_contiguous() and x.dim() >= 1) or (x.dim() == 2 and x.stride(1) == 1))
    )


def _weight_ok(w: Tensor | None, x: Tensor) -> bool:
    return w is None or (
        w.dtype is x.dtype and w.is_contiguous() and w.dim() == 1 and w.shape[0] == x.shape[-1]
    )


def _scale_ok(s: Tensor, x: Tensor) -> bool:
    return s.dtype is _F32 and s.numel() == 1


def _residual_ok(r: Tensor, x: Tensor) -> bool:
    return r.dtype is x.dtype and r.shape == x.shape and _rows_ok(r)


def _variance_ok(variance_size: int | None, x: Tensor) -> bool:
    return variance_size is None or 0 < variance_size <= x.shape[-1]


def group_lanes(group_size: int, itemsize: int) -> int:
    """Lanes per group the kernel uses (0: group size unsupported); mirrors
    ``group_quant_lanes`` in quant.cu."""
    per_chunk = 16 // itemsize
    if group_size <= 0 or group_size % per_chunk:
        return 0
    chunks = group_size // per_chunk
    lanes = 1
    while lanes <= 32 and chunks % lanes == 0:
        if chunks // lanes <= _GROUP_MAX_CHUNKS_PER_LANE:
            return lanes
        lanes *= 2
    return 0


def _qk_ok(t: Tensor, q: Tensor, tokens: int, head_size: int) -> bool:
    if t.dtype is not q.dtype or t.shape[0] != tokens:
        return False
    if t.dim() == 2:
        return t.stride(1) == 1 and t.shape[1] % head_size == 0
    return t.dim() == 3 and t.shape[2] == head_size and t.stride(2) == 1


# ----------------------------------------------------------------- registration


def supported() -> bool | ir.Unsupported:
    """The lazy ``supported`` check shared by every implementation: builds or
    loads the extension on first need; the reason reaches explain() and `ir info`."""
    if runtime.ensure_loaded():
        return True
    return ir.Unsupported(runtime.unavailable_reason() or "the ir_cuda extension is unavailable")


def _register(
    op: Any,
    fn: Callable[..., Any],
    supports_args: Callable[..., bool],
    *,
    batch_invariant: bool | None = None,
) -> IrOpImpl:
    """Register ``fn`` for ``op`` with the shared lazy ``supported`` check.

    Every implementation is functional (``inplace=False``), including
    ``fused_add_rms_norm`` and ``rotary_embedding``: the C++ ops write fresh
    outputs in one pass, where an in-place implementation would be run behind
    clones of its activations by every functional caller (``ir.ops.<op>``,
    the lowering pass, ``ir tune``), twice the memory traffic."""
    impl: IrOpImpl = op.register_impl(
        PROVIDER,
        supported=supported,
        supports_args=supports_args,
        inplace=False,
        batch_invariant=batch_invariant,
    )(fn)
    return impl


# rms_norm ---------------------------------------------------------------------


def _rms_norm_ok(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return _rows_ok(x) and _weight_ok(weight, x) and _variance_ok(variance_size, x)


def rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    return runtime.kernels(x, weight).rms_norm(x, weight, epsilon, variance_size)


def _fused_add_ok(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        _rows_ok(x)
        and _residual_ok(x_residual, x)
        and _weight_ok(weight, x)
        and _variance_ok(variance_size, x)
    )


def fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    return runtime.kernels(x, x_residual, weight).fused_add_rms_norm(
        x, x_residual, weight, epsilon, variance_size
    )


def _rms_norm_quant_ok(x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor) -> bool:
    return _rows_ok(x) and _weight_ok(weight, x) and _scale_ok(scale, x)


def rms_norm_static_fp8_quant(
    x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> Tensor:
    return runtime.kernels(x, weight, scale).rms_norm_static_fp8_quant(x, weight, epsilon, scale)


def _fused_add_quant_ok(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> bool:
    return (
        _rows_ok(x)
        and _residual_ok(x_residual, x)
        and _weight_ok(weight, x)
        and _scale_ok(scale, x)
    )


def fused_add_rms_norm_static_fp8_quant(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> tuple[Tensor, Tensor]:
    k = runtime.kernels(x, x_residual, weight, scale)
    return k.fused_add_rms_norm_static_fp8_quant(x, x_residual, weight, epsilon, scale)


# activations --------------------------------------------------------------------


def _silu_ok(x: Tensor) -> bool:
    return _rows_ok(x) and x.shape[-1] % 2 == 0


def silu_and_mul(x: Tensor) -> Tensor:
    return runtime.kernels(x).silu_and_mul(x)


def _gelu_ok(x: Tensor, approximate: str = "none") -> bool:
    return approximate in ("none", "tanh") and _rows_ok(x) and x.shape[-1] % 2 == 0


def gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    return runtime.kernels(x).gelu_and_mul(x, approximate)


# rotary ---------------------------------------------------------------------------


def _rotary_ok(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> bool:
    if query.dtype not in _DTYPES or not query.is_cuda or head_size <= 0:
        return False
    dev = query.get_device()
    if (
        positions.dtype not in _POS_DTYPES
        or not positions.is_contiguous()
        or positions.get_device() != dev
    ):
        return False
    c = cos_sin_cache
    if (
        c.dim() != 2
        or not c.is_contiguous()
        or c.get_device() != dev
        or (c.dtype != query.dtype and c.dtype != _F32)
        or c.shape[1] % 2
        or c.shape[1] > head_size
    ):
        return False
    tokens = positions.numel()
    return _qk_ok(query, query, tokens, head_size) and (
        key is None or _qk_ok(key, query, tokens, head_size)
    )


def rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    k = runtime.kernels(positions, query, key, cos_sin_cache)
    return k.rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)


# quant ------------------------------------------------------------------------------


def _static_ok(x: Tensor, scale: Tensor) -> bool:
    return _rows_ok(x) and _scale_ok(scale, x)


def static_scaled_fp8_quant(x: Tensor, scale: Tensor) -> Tensor:
    return runtime.kernels(x, scale).static_scaled_fp8_quant(x, scale)


def _dynamic_ok(x: Tensor, scale_ub: Tensor | None = None) -> bool:
    return _rows_ok(x) and (scale_ub is None or _scale_ok(scale_ub, x))


def dynamic_per_token_scaled_fp8_quant(
    x: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    return runtime.kernels(x, scale_ub).dynamic_per_token_scaled_fp8_quant(x, scale_ub)


def _group_ok(x: Tensor, group_size: int) -> bool:
    return (
        _rows_ok(x)
        and group_size > 0
        and x.shape[-1] % group_size == 0
        and group_lanes(group_size, x.element_size()) > 0
    )


def per_token_group_quant_fp8(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    return runtime.kernels(x).per_token_group_quant_fp8(x, group_size)


def register_all() -> dict[str, IrOpImpl]:
    """Register every implementation (called once, at import)."""
    o = ir.ops
    return {
        "rms_norm": _register(o.rms_norm, rms_norm, _rms_norm_ok, batch_invariant=True),
        "fused_add_rms_norm": _register(
            o.fused_add_rms_norm,
            fused_add_rms_norm,
            _fused_add_ok,
            batch_invariant=True,
        ),
        "rms_norm_static_fp8_quant": _register(
            o.rms_norm_static_fp8_quant,
            rms_norm_static_fp8_quant,
            _rms_norm_quant_ok,
            batch_invariant=True,
        ),
        "fused_add_rms_norm_static_fp8_quant": _register(
            o.fused_add_rms_norm_static_fp8_quant,
            fused_add_rms_norm_static_fp8_quant,
            _fused_add_quant_ok,
            batch_invariant=True,
        ),
        "silu_and_mul": _register(o.silu_and_mul, silu_and_mul, _silu_ok),
        "gelu_and_mul": _register(o.gelu_and_mul, gelu_and_mul, _gelu_ok),
        "rotary_embedding": _register(o.rotary_embedding, rotary_embedding, _rotary_ok),
        "static_scaled_fp8_quant": _register(
            o.static_scaled_fp8_quant, static_scaled_fp8_quant, _static_ok
        ),
        "dynamic_per_token_scaled_fp8_quant": _register(
            o.dynamic_per_token_scaled_fp8_quant,
            dynamic_per_token_scaled_fp8_quant,
            _dynamic_ok,
            batch_invariant=True,
        ),
        "per_token_group_quant_fp8": _register(
            o.per_token_group_quant_fp8, per_token_group_quant_fp8, _group_ok, batch_invariant=True
        ),
    }


IMPLS = register_all()
