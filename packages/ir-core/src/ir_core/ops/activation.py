"""Gated activations: ``silu_and_mul`` and ``gelu_and_mul``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..op import register_op
from ._inputs import activation


@register_op(tags=("activation",))
def silu_and_mul(x: Tensor) -> Tensor:
    """``silu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2``, in float32, cast back."""
    d = x.shape[-1] // 2
    xf = x.float()
    return (F.silu(xf[..., :d]) * xf[..., d:]).to(x.dtype)


@register_op(tags=("activation",))
def gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    """``gelu(x[..., :d], approximate) * x[..., d:]``; ``approximate`` is ``"none"`` or ``"tanh"``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu_and_mul: approximate must be 'none' or 'tanh', got {approximate!r}")
    d = x.shape[-1] // 2
    xf = x.float()
    return (F.gelu(xf[..., :d], approximate=approximate) * xf[..., d:]).to(x.dtype)


@silu_and_mul.register_input_generator
def _silu_inputs(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[object, ...]:
    return (activation(tokens, 2 * hidden, dtype, device, scale=2.0),)


@gelu_and_mul.register_input_generator
def _gelu_inputs(
    tokens: int,
    hidden: int,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    approximate: str = "none",
) -> tuple[object, ...]:
    return (activation(tokens, 2 * hidden, dtype, device, scale=2.0), approximate)


gelu_and_mul.test_variants = [{}, {"approximate": "tanh"}]


def mlp_intermediate(hidden: int) -> int:
    """The MLP's intermediate size for a model hidden size (3.5 x, as Llama-class
    models: 4096 -> 14336): the width ``d`` of a gated activation's halves in
    ``ir bench``, whose input rows are ``2 * d`` wide."""
    return hidden * 7 // 2


silu_and_mul.bench_width = mlp_intermediate
gelu_and_mul.bench_width = mlp_intermediate
