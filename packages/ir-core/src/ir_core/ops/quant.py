"""FP8 (e4m3fn) quantisation ops."""

from __future__ import annotations

import torch
from torch import Tensor

from ..op import register_op
from ._inputs import activation

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
#: Smallest per-token scale, so an all-zero row does not divide by zero.
MIN_SCALE = 1.0 / (FP8_MAX * 512.0)
#: Floor of a group's absolute maximum in per_token_group_quant_fp8.
GROUP_EPS = 1e-10


def _to_fp8(xf: Tensor) -> Tensor:
    return xf.clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)


@register_op(tags=("quant",))
def static_scaled_fp8_quant(x: Tensor, scale: Tensor) -> Tensor:
    """``clamp(x / scale, -448, 448)`` as float8_e4m3fn; ``scale`` is a one-element float32 tensor."""
    return _to_fp8(x.float() / scale.float())


@register_op(has_reduction=True, tags=("quant",))
def dynamic_per_token_scaled_fp8_quant(
    x: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per-row (token) scale ``max(min(amax(|x|), scale_ub) / 448, MIN_SCALE)``;
    returns ``(fp8 values, float32 scales of shape [..., 1])``."""
    xf = x.float()
    amax = xf.abs().amax(dim=-1, keepdim=True)
    if scale_ub is not None:
        amax = torch.minimum(amax, scale_ub.float())
    scales = (amax / FP8_MAX).clamp(min=MIN_SCALE)
    return _to_fp8(xf / scales), scales


@register_op(has_reduction=True, tags=("quant",))
def per_token_group_quant_fp8(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    """Scale per group of ``group_size`` consecutive features of each row:
    ``max(amax(|group|), 1e-10) / 448``. Returns ``(fp8 values, float32 scales
    of shape [..., hidden // group_size])``."""
    hidden = x.shape[-1]
    if hidden % group_size != 0:
        raise ValueError(
            f"per_token_group_quant_fp8: hidden size {hidden} is not a multiple "
            f"of group_size {group_size}"
        )
    groups = x.float().reshape(*x.shape[:-1], hidden // group_size, group_size)
    scales = groups.abs().amax(dim=-1, keepdim=True).clamp(min=GROUP_EPS) / FP8_MAX
    return _to_fp8(groups / scales).reshape(x.shape), scales.squeeze(-1)


def unit_scale(x: Tensor) -> Tensor:
    """A static scale that maps ``x``'s range onto most of the fp8 range."""
    return (x.float().abs().amax().clamp(min=1e-6) / (0.8 * FP8_MAX)).reshape(1)


@static_scaled_fp8_quant.register_input_generator
def _static_inputs(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[object, ...]:
    x = activation(tokens, hidden, dtype, device)
    scale = torch.tensor([0.01], device=device) if tokens == 0 else unit_scale(x)
    return (x, scale)


@dynamic_per_token_scaled_fp8_quant.register_input_generator
def _dynamic_inputs(
    tokens: int,
    hidden: int,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    with_ub: bool = False,
) -> tuple[object, ...]:
    x = activation(tokens, hidden, dtype, device)
    return (x, torch.tensor([1.5], device=device) if with_ub else None)


dynamic_per_token_scaled_fp8_quant.test_variants = [{}, {"with_ub": True}]


@per_token_group_quant_fp8.register_input_generator
def _group_inputs(
    tokens: int,
    hidden: int,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    group_size: int = 128,
) -> tuple[object, ...]:
    hidden = max(group_size, (hidden // group_size) * group_size)
    return (activation(tokens, hidden, dtype, device), group_size)


per_token_group_quant_fp8.test_variants = [{}, {"group_size": 64}]
