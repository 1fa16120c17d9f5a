"""``supports_args`` of every Triton implementation: exactly what the kernels
handle. Anything else is declined, so the call falls through to the next
provider (native at the latest) instead of a wrong answer or a crash.

Common to all: tensors live where this mode's kernels run (a CUDA/ROCm GPU;
the CPU under ``TRITON_INTERPRET=1``), all on one device; activations are
fp32, fp16 or bf16 and a stack of rows (unit stride along the last dimension,
one constant stride between rows: contiguous, or row-strided views such as a
slice of a wider buffer). fp8 outputs need a GPU of compute capability >= 8.9
(NVIDIA; ROCm's fnuz fp8 is declined).
"""

from __future__ import annotations

import torch

from ._runtime import FLOAT_DTYPES, fp8_ok, on_device, rows_view

_INDEX_DTYPES = (torch.int32, torch.int64)


def activation(x: torch.Tensor) -> bool:
    """A float activation with at least one dimension, laid out as rows, on the kernels' device."""
    return (
        isinstance(x, torch.Tensor)
        and x.dtype in FLOAT_DTYPES
        and x.dim() >= 1
        and on_device(x)
        and (x.is_contiguous() or rows_view(x) is not None)
    )


def _same_device(x: torch.Tensor, t: torch.Tensor | None) -> bool:
    """``t`` is a tensor on x's device (x already checked to be on the kernels' device)."""
    return isinstance(t, torch.Tensor) and on_device(t) and t.get_device() == x.get_device()


def norm_weight(x: torch.Tensor, weight: torch.Tensor | None) -> bool:
    """None, or a float ``[hidden]`` vector with unit stride (any float dtype)."""
    return weight is None or (
        _same_device(x, weight)
        and weight.dtype in FLOAT_DTYPES
        and weight.dim() == 1
        and weight.shape[0] == x.shape[-1]
        and (weight.stride(0) == 1 or weight.shape[0] <= 1)
    )


def scalar_scale(x: torch.Tensor, scale: torch.Tensor | None) -> bool:
    """A one-element float tensor that broadcasts without changing x's shape."""
    return (
        _same_device(x, scale)
        and scale is not None
        and scale.numel() == 1
        and scale.is_floating_point()
        and scale.dim() <= x.dim()
    )


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    """Float rows of hidden >= 1, optional float weight; 1 <= variance_size <= hidden."""
    return (
        activation(x)
        and x.shape[-1] >= 1
        and norm_weight(x, weight)
        and (variance_size is None or 1 <= variance_size <= x.shape[-1])
    )


def fused_add_rms_norm(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    """As :func:`rms_norm`; the residual has x's shape (any float dtype, row layout)."""
    return (
        rms_norm(x, weight, epsilon, variance_size)
        and activation(x_residual)
        and _same_device(x, x_residual)
        and x_residual.shape == x.shape
    )


def rms_norm_static_fp8_quant(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, scale: torch.Tensor
) -> bool:
    """As :func:`rms_norm`, plus a one-element scale and fp8 support on the device."""
    return rms_norm(x, weight, epsilon) and scalar_scale(x, scale) and fp8_ok(x)


def fused_add_rms_norm_static_fp8_quant(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    scale: torch.Tensor,
) -> bool:
    """As :func:`fused_add_rms_norm`, plus a one-element scale and fp8 support."""
    return (
        fused_add_rms_norm(x, x_residual, weight, epsilon) and scalar_scale(x, scale) and fp8_ok(x)
    )


def silu_and_mul(x: torch.Tensor) -> bool:
    """Float rows with an even, non-zero last dimension."""
    return activation(x) and x.shape[-1] >= 2 and x.shape[-1] % 2 == 0


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> bool:
    """As :func:`silu_and_mul`; ``approximate`` is ``"none"`` or ``"tanh"``."""
    return approximate in ("none", "tanh") and silu_and_mul(x)


def static_scaled_fp8_quant(x: torch.Tensor, scale: torch.Tensor) -> bool:
    """Float rows, a one-element float scale, fp8 support on the device."""
    return activation(x) and scalar_scale(x, scale) and fp8_ok(x)


def dynamic_per_token_scaled_fp8_quant(
    x: torch.Tensor, scale_ub: torch.Tensor | None = None
) -> bool:
    """Float rows of hidden >= 1, optional one-element float upper bound, fp8 support."""
    return (
        activation(x)
        and x.shape[-1] >= 1
        and fp8_ok(x)
        and (scale_ub is None or scalar_scale(x, scale_ub))
    )


def per_token_group_quant_fp8(x: torch.Tensor, group_size: int) -> bool:
    """Float rows whose hidden size is a positive multiple of ``group_size`` (>= 1), fp8 support."""
    return (
        isinstance(group_size, int)
        and group_size >= 1
        and activation(x)
        and x.shape[-1] >= group_size
        and x.shape[-1] % group_size == 0
        and fp8_ok(x)
    )


def _qk(t: torch.Tensor, tokens: int, head_size: int) -> bool:
    """``[tokens, heads * head_size]`` or ``[tokens, heads, head_size]``, unit feature stride."""
    if not (t.dtype in FLOAT_DTYPES and on_device(t) and t.shape[0] == tokens):
        return False
    if t.dim() == 2:
        return t.shape[1] % head_size == 0 and (t.stride(1) == 1 or t.shape[1] <= 1)
    if t.dim() == 3:
        return t.shape[2] == head_size and (t.stride(2) == 1 or head_size == 1)
    return False


def rotary_embedding(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor | None,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
) -> bool:
    """1-D int32/int64 positions with unit stride; query/key as :func:`_qk` with one row per
    position; a 2-D float cache ``[max_position, rotary_dim]``, unit stride along the
    features, rotary_dim even and <= head_size.

    Positions are not range-checked (that needs a device sync): like every
    engine's kernel, they must lie in ``[0, max_position)``.
    """
    if not (
        isinstance(head_size, int)
        and head_size >= 1
        and isinstance(positions, torch.Tensor)
        and positions.dim() == 1
        and positions.dtype in _INDEX_DTYPES
        and (positions.stride(0) == 1 or positions.numel() <= 1)
        and on_device(positions)
    ):
        return False
    tokens = positions.shape[0]
    if not (_same_device(positions, query) and _qk(query, tokens, head_size)):
        return False
    if key is not None and not (_same_device(positions, key) and _qk(key, tokens, head_size)):
        return False
    c = cos_sin_cache
    return (
        _same_device(positions, c)
        and c.dtype in FLOAT_DTYPES
        and c.dim() == 2
        and c.shape[0] >= 1
        and c.shape[1] >= 2
        and c.shape[1] % 2 == 0
        and c.shape[1] <= head_size
        and (c.stride(1) == 1)
    )
