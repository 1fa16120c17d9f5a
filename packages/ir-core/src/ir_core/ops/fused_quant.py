"""Fusion targets: RMS norm followed by static fp8 quantisation.

Their native implementations are literally the unfused chains, so the
compiler's fusion passes change no numbers; kernels may skip the rounding
between norm and quant (within the fp8 tolerance of one ulp).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..op import register_op
from ._inputs import activation, weight_like
from .layernorm import fused_add_rms_norm, rms_norm
from .quant import static_scaled_fp8_quant, unit_scale


@register_op(has_reduction=True, tags=("norm", "quant", "fused"))
def rms_norm_static_fp8_quant(
    x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> Tensor:
    """``static_scaled_fp8_quant(rms_norm(x, weight, epsilon), scale)``."""
    out: Tensor = static_scaled_fp8_quant.native(rms_norm.native(x, weight, epsilon), scale)
    return out


@register_op(has_reduction=True, allow_inplace=True, tags=("norm", "quant", "fused"))
def fused_add_rms_norm_static_fp8_quant(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
) -> tuple[Tensor, Tensor]:
    """``fused_add_rms_norm`` then static fp8 quantisation of the normalised
    output; returns ``(fp8 values, new residual)``."""
    out, residual = fused_add_rms_norm.native(x, x_residual, weight, epsilon)
    return static_scaled_fp8_quant.native(out, scale), residual


def _scale_for(tokens: int, x: Tensor, weight: Tensor, device: torch.device | str) -> Tensor:
    if tokens == 0:
        return torch.tensor([0.01], device=device)
    return unit_scale(rms_norm.native(x, weight, 1e-6))


@rms_norm_static_fp8_quant.register_input_generator
def _norm_quant_inputs(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[object, ...]:
    x, w = activation(tokens, hidden, dtype, device), weight_like(hidden, dtype, device)
    return (x, w, 1e-6, _scale_for(tokens, x, w, device))


@fused_add_rms_norm_static_fp8_quant.register_input_generator
def _add_norm_quant_inputs(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[object, ...]:
    x, r = activation(tokens, hidden, dtype, device), activation(tokens, hidden, dtype, device)
    w = weight_like(hidden, dtype, device)
    return (x, r, w, 1e-6, _scale_for(tokens, (x.float() + r.float()).to(dtype), w, device))
