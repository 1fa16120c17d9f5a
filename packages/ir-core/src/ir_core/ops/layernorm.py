"""Normalisation ops: ``rms_norm`` and ``fused_add_rms_norm``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..op import register_op
from ._inputs import activation, weight_like


@register_op(has_reduction=True, tags=("norm",))
def rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    """RMS normalisation over the last dimension, computed in float32 and cast
    back to ``x.dtype``: ``x / sqrt(mean(x[..., :variance_size]**2) + epsilon) * weight``.

    ``variance_size`` (default: the whole last dimension) limits the mean to
    the first ``variance_size`` features, as some models do.
    """
    if variance_size is not None and variance_size > x.shape[-1]:
        raise ValueError(
            f"rms_norm: variance_size {variance_size} exceeds hidden size {x.shape[-1]}"
        )
    xf = x.float()
    xv = xf if variance_size is None else xf[..., :variance_size]
    out = xf * torch.rsqrt(xv.pow(2).mean(dim=-1, keepdim=True) + epsilon)
    if weight is not None:
        out = out * weight.float()
    return out.to(x.dtype)


@register_op(has_reduction=True, allow_inplace=True, tags=("norm",))
def fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Residual add then RMS norm: returns ``(rms_norm(r), r)`` with
    ``r = x + x_residual`` rounded to ``x.dtype`` (the new residual stream).

    Equals ``rms_norm(x + x_residual, ...)`` in plain torch, so the fusion pass
    that forms it changes no numbers. Inplace implementations may write
    ``rms_norm(r)`` into ``x`` and ``r`` into ``x_residual``.
    """
    residual = (x.float() + x_residual.float()).to(x.dtype)
    return rms_norm.native(residual, weight, epsilon, variance_size), residual


@rms_norm.register_input_generator
def _rms_norm_inputs(
    tokens: int,
    hidden: int,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    weight: bool = True,
    variance_size: str | None = None,
) -> tuple[object, ...]:
    return (
        activation(tokens, hidden, dtype, device),
        weight_like(hidden, dtype, device) if weight else None,
        1e-6,
        max(1, hidden // 2) if variance_size == "half" else None,
    )


rms_norm.test_variants = [{}, {"weight": False}, {"variance_size": "half"}]


@fused_add_rms_norm.register_input_generator
def _fused_add_rms_norm_inputs(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[object, ...]:
    return (
        activation(tokens, hidden, dtype, device),
        activation(tokens, hidden, dtype, device),
        weight_like(hidden, dtype, device),
        1e-6,
        None,
    )
