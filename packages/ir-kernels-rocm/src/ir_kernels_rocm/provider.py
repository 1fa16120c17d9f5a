"""Provider ``rocm``: the CUDA kernels of ir-kernels-cuda, hipified and built
for the AMD GPU of this process on first use (see :mod:`ir_kernels_rocm.build`).

Importing this module registers the implementations and builds nothing. Each
implementation's ``supported`` check builds the extension the first time a
dispatch considers it; on a machine without ROCm it is simply unsupported and
``explain`` says why.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ir_core import ops

from . import build
from ._gate import Gate

logger = logging.getLogger(__name__)

PROVIDER = "rocm"
FLOATS = (torch.float32, torch.float16, torch.bfloat16)
FP8 = torch.float8_e4m3fn
_ACT = {"silu": 0, "none": 1, "tanh": 2}


def _gate(feature: str) -> Gate:
    return Gate(lambda: build.feature_reason(feature))


#: The ``supported`` gate of each registered implementation, by op name.
GATES: dict[str, Gate] = {}


def _provide(op: Any, gate: Gate, fn: Any, **register_kwargs: Any) -> None:
    """Register ``fn`` as this provider's implementation of ``op``, behind ``gate``."""
    gate.attach(op.register_impl(PROVIDER, supported=gate, **register_kwargs)(fn))
    GATES[op.name] = gate


def _lib() -> object:
    return torch.ops.ir_rocm


# ------------------------------------------------------------ argument checks


def _gpu_float(x: Tensor) -> bool:
    return x.is_cuda and x.dtype in FLOATS and x.dim() >= 1


def _weight_ok(weight: Tensor | None, x: Tensor) -> bool:
    return weight is None or (
        weight.is_cuda
        and weight.dtype == x.dtype
        and weight.dim() == 1
        and weight.numel() == x.shape[-1]
    )


def _scale_ok(scale: Tensor | None) -> bool:
    return scale is None or (scale.is_cuda and scale.dtype == torch.float32 and scale.numel() == 1)


def _norm_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return (
        _gpu_float(x)
        and _weight_ok(weight, x)
        and (variance_size is None or 0 < variance_size <= x.shape[-1])
    )


def _add_norm_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        _norm_args(x, weight, epsilon, variance_size)
        and x_residual.is_cuda
        and x_residual.dtype == x.dtype
        and x_residual.shape == x.shape
    )


def _empty(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return torch.empty(x.shape, dtype=dtype or x.dtype, device=x.device)


# ------------------------------------------------------------ norms


def rms_norm_rocm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    out = _empty(x)
    _lib().rms_norm(out, x, weight, epsilon, variance_size or 0)  # type: ignore[attr-defined]
    return out


_provide(ops.rms_norm, _gate("norm"), rms_norm_rocm, supports_args=_norm_args, batch_invariant=True)


def fused_add_rms_norm_rocm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    out, residual = _empty(x), _empty(x)
    _lib().fused_add_rms_norm(
        out,
        residual,
        x,
        x_residual,
        weight,
        epsilon,  # type: ignore[attr-defined]
        variance_size or 0,
    )
    return out, residual


_provide(
    ops.fused_add_rms_norm,
    _gate("norm"),
    fused_add_rms_norm_rocm,
    supports_args=_add_norm_args,
    batch_invariant=True,
)


def _norm_quant_args(x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor) -> bool:
    return _norm_args(x, weight, epsilon) and _scale_ok(scale)


def rms_norm_static_fp8_quant_rocm(
    x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> Tensor:
    out = _empty(x, FP8)
    _lib().rms_norm_static_fp8_quant(out, x, weight, epsilon, scale)  # type: ignore[attr-defined]
    return out


_provide(
    ops.rms_norm_static_fp8_quant,
    _gate("norm"),
    rms_norm_static_fp8_quant_rocm,
    supports_args=_norm_quant_args,
    batch_invariant=True,
)


def _add_norm_quant_args(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> bool:
    return _add_norm_args(x, x_residual, weight, epsilon) and _scale_ok(scale)


def fused_add_rms_norm_static_fp8_quant_rocm(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> tuple[Tensor, Tensor]:
    out, residual = _empty(x, FP8), _empty(x)
    _lib().fused_add_rms_norm_static_fp8_quant(  # type: ignore[attr-defined]
        out, residual, x, x_residual, weight, epsilon, scale
    )
    return out, residual


_provide(
    ops.fused_add_rms_norm_static_fp8_quant,
    _gate("norm"),
    fused_add_rms_norm_static_fp8_quant_rocm,
    supports_args=_add_norm_quant_args,
    batch_invariant=True,
)

# ------------------------------------------------------------ activations


def _act_out(x: Tensor) -> Tensor:
    return torch.empty((*x.shape[:-1], x.shape[-1] // 2), dtype=x.dtype, device=x.device)


def _silu_args(x: Tensor) -> bool:
    return _gpu_float(x) and x.shape[-1] % 2 == 0


def silu_and_mul_rocm(x: Tensor) -> Tensor:
    out = _act_out(x)
    _lib().act_and_mul(out, x, _ACT["silu"])  # type: ignore[attr-defined]
    return out


_provide(ops.silu_and_mul, _gate("act"), silu_and_mul_rocm, supports_args=_silu_args)


def _gelu_args(x: Tensor, approximate: str = "none") -> bool:
    return _silu_args(x) and approximate in ("none", "tanh")


def gelu_and_mul_rocm(x: Tensor, approximate: str = "none") -> Tensor:
    out = _act_out(x)
    _lib().act_and_mul(out, x, _ACT[approximate])  # type: ignore[attr-defined]
    return out


_provide(ops.gelu_and_mul, _gate("act"), gelu_and_mul_rocm, supports_args=_gelu_args)

# ------------------------------------------------------------ rotary


def _rotary_args(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> bool:
    rotary_dim = cos_sin_cache.shape[-1]
    tensors_ok = (
        query.is_cuda
        and query.dtype in FLOATS
        and query.stride(-1) == 1
        and positions.is_cuda
        and positions.dtype in (torch.int32, torch.int64)
        and cos_sin_cache.is_cuda
        and cos_sin_cache.dim() == 2
        and cos_sin_cache.dtype in (query.dtype, torch.float32)
    )
    key_ok = key is None or (key.is_cuda and key.dtype == query.dtype and key.stride(-1) == 1)
    return (
        tensors_ok
        and key_ok
        and head_size > 0
        and rotary_dim % 2 == 0
        and 0 < rotary_dim <= head_size
    )


def rotary_embedding_rocm(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    _lib().rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)  # type: ignore[attr-defined]
    return query, key


_provide(
    ops.rotary_embedding,
    _gate("rotary"),
    rotary_embedding_rocm,
    supports_args=_rotary_args,
    inplace=True,
)

# ------------------------------------------------------------ fp8 quantisation


def _static_args(x: Tensor, scale: Tensor) -> bool:
    return _gpu_float(x) and _scale_ok(scale)


def static_scaled_fp8_quant_rocm(x: Tensor, scale: Tensor) -> Tensor:
    out = _empty(x, FP8)
    _lib().static_fp8_quant(out, x, scale)  # type: ignore[attr-defined]
    return out


_provide(
    ops.static_scaled_fp8_quant,
    _gate("static_quant"),
    static_scaled_fp8_quant_rocm,
    supports_args=_static_args,
)


def _dynamic_args(x: Tensor, scale_ub: Tensor | None = None) -> bool:
    return _gpu_float(x) and _scale_ok(scale_ub)


def dynamic_per_token_scaled_fp8_quant_rocm(
    x: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    out = _empty(x, FP8)
    scales = torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device)
    _lib().dynamic_per_token_fp8_quant(out, scales, x, scale_ub)  # type: ignore[attr-defined]
    return out, scales


_provide(
    ops.dynamic_per_token_scaled_fp8_quant,
    _gate("dynamic_quant"),
    dynamic_per_token_scaled_fp8_quant_rocm,
    supports_args=_dynamic_args,
    batch_invariant=True,
)


def _group_args(x: Tensor, group_size: int) -> bool:
    return _gpu_float(x) and group_size > 0 and x.shape[-1] % group_size == 0


def per_token_group_quant_fp8_rocm(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    out = _empty(x, FP8)
    scales = torch.empty(
        (*x.shape[:-1], x.shape[-1] // group_size), dtype=torch.float32, device=x.device
    )
    _lib().per_token_group_fp8_quant(out, scales, x, group_size)  # type: ignore[attr-defined]
    return out, scales


_provide(
    ops.per_token_group_quant_fp8,
    _gate("group_quant"),
    per_token_group_quant_fp8_rocm,
    supports_args=_group_args,
    batch_invariant=True,
)
