"""Registers the ``triton`` provider's implementations of every built-in IR op.

Imported through the ``ir.providers`` entry point (``triton =
"ir_kernels_triton.provider"``). Each implementation has the native
signature. When nothing traces the call (:func:`._runtime.eager`) it runs the
launcher directly; otherwise it calls the ``torch.ops.ir_triton.*`` op
(a ``triton_op`` on GPUs, so Inductor sees the kernels and CUDA graphs
capture them). ``supports_args`` (:mod:`._checks`) states what each kernel
handles; the norms reduce one row per program in an order set by the hidden
size alone, so they are registered ``batch_invariant=True``.
"""

from __future__ import annotations

import logging

from torch import Tensor

from ir_core import ops

from . import _checks
from ._runtime import eager, platform_supported

logger = logging.getLogger(__name__)

PROVIDER = "triton"

try:
    from .kernels import activation as _act
    from .kernels import norm as _norm
    from .kernels import quant as _quant
    from .kernels import rotary as _rope

    _KERNEL_ERROR: str | None = None
except Exception as exc:  # e.g. a Triton too old for a language feature
    _KERNEL_ERROR = f"{type(exc).__name__}: {exc}"
    logger.warning("ir: the triton provider's kernels failed to load: %s", _KERNEL_ERROR)


def supported() -> bool:
    """Static platform check: kernels loaded, and a GPU present or the interpreter on."""
    if _KERNEL_ERROR is not None:
        raise ImportError(f"ir_kernels_triton kernels failed to load: {_KERNEL_ERROR}")
    return platform_supported()


# ------------------------------------------------------------------ norms


@ops.rms_norm.register_impl(
    PROVIDER, supported=supported, supports_args=_checks.rms_norm, batch_invariant=True
)
def rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    vs = x.shape[-1] if variance_size is None else variance_size
    if eager(x, weight):
        return _norm.rms_norm(x, weight, epsilon, vs, True)
    return _norm.rms_norm_op(x, weight, epsilon, vs)


@ops.fused_add_rms_norm.register_impl(
    PROVIDER, supported=supported, supports_args=_checks.fused_add_rms_norm, batch_invariant=True
)
def fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    vs = x.shape[-1] if variance_size is None else variance_size
    if eager(x, x_residual, weight):
        return _norm.fused_add_rms_norm(x, x_residual, weight, epsilon, vs, True)
    return _norm.fused_add_rms_norm_op(x, x_residual, weight, epsilon, vs)


@ops.rms_norm_static_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    supports_args=_checks.rms_norm_static_fp8_quant,
    batch_invariant=True,
)
def rms_norm_static_fp8_quant(
    x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> Tensor:
    if eager(x, weight, scale):
        return _norm.rms_norm_static_fp8_quant(x, weight, epsilon, scale, True)
    return _norm.rms_norm_static_fp8_quant_op(x, weight, epsilon, scale)


@ops.fused_add_rms_norm_static_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    supports_args=_checks.fused_add_rms_norm_static_fp8_quant,
    batch_invariant=True,
)
def fused_add_rms_norm_static_fp8_quant(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> tuple[Tensor, Tensor]:
    if eager(x, x_residual, weight, scale):
        return _norm.fused_add_rms_norm_static_fp8_quant(
            x, x_residual, weight, epsilon, scale, True
        )
    return _norm.fused_add_rms_norm_static_fp8_quant_op(x, x_residual, weight, epsilon, scale)


# ------------------------------------------------------------ activations


@ops.silu_and_mul.register_impl(PROVIDER, supported=supported, supports_args=_checks.silu_and_mul)
def silu_and_mul(x: Tensor) -> Tensor:
    if eager(x):
        return _act.silu_and_mul(x, True)
    return _act.silu_and_mul_op(x)


@ops.gelu_and_mul.register_impl(PROVIDER, supported=supported, supports_args=_checks.gelu_and_mul)
def gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    tanh = approximate == "tanh"
    if eager(x):
        return _act.gelu_and_mul(x, tanh, True)
    return _act.gelu_and_mul_op(x, tanh)


# ----------------------------------------------------------------- rotary


@ops.rotary_embedding.register_impl(
    PROVIDER, supported=supported, supports_args=_checks.rotary_embedding
)
def rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    if eager(positions, query, key, cos_sin_cache):
        return _rope.rotary_embedding(
            positions, query, key, head_size, cos_sin_cache, is_neox, True
        )
    q, k = _rope.rotary_embedding_op(positions, query, key, head_size, cos_sin_cache, is_neox)
    return q, (k if key is not None else None)


# ------------------------------------------------------------------ quant


@ops.static_scaled_fp8_quant.register_impl(
    PROVIDER, supported=supported, supports_args=_checks.static_scaled_fp8_quant
)
def static_scaled_fp8_quant(x: Tensor, scale: Tensor) -> Tensor:
    if eager(x, scale):
        return _quant.static_scaled_fp8_quant(x, scale, True)
    return _quant.static_scaled_fp8_quant_op(x, scale)


@ops.dynamic_per_token_scaled_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    supports_args=_checks.dynamic_per_token_scaled_fp8_quant,
    batch_invariant=True,
)
def dynamic_per_token_scaled_fp8_quant(
    x: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    if eager(x, scale_ub):
        return _quant.dynamic_per_token_scaled_fp8_quant(x, scale_ub, True)
    return _quant.dynamic_per_token_scaled_fp8_quant_op(x, scale_ub)


@ops.per_token_group_quant_fp8.register_impl(
    PROVIDER,
    supported=supported,
    supports_args=_checks.per_token_group_quant_fp8,
    batch_invariant=True,
)
def per_token_group_quant_fp8(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    if eager(x):
        return _quant.per_token_group_quant_fp8(x, group_size, True)
    return _quant.per_token_group_quant_fp8_op(x, group_size)
