"""The ``example`` provider: ``rms_norm`` and ``fused_add_rms_norm`` in plain
PyTorch, row by row, claimed batch-invariant.

Rules every provider follows (ir-core checks them at registration):

* the implementation's signature equals the native one exactly (names,
  order, defaults, annotations);
* ``supported`` is a static platform check, never an on/off switch (priority
  is the switch);
* ``supports_args`` takes the same parameters and rejects what the
  implementation cannot do; the dispatcher then tries the next provider;
* ``batch_invariant=True`` is a promise that each output row is bit-identical
  whatever batch it is in; ``ir_core.testing.check_batch_invariance`` proves it.

Why this implementation is batch-invariant: each row's sum of squares is one
float32 reduction over that row's contiguous features only. ATen's CPU sum
over the last dimension reduces a row in one thread (rows are split across
threads, never one row's features, below its 32768-element grain), so the
order of additions is the row's own whatever the batch. ``supports_args``
keeps to that case (CPU; contiguous, or 2-d with unit-stride rows; at most
16384 features).
"""

from __future__ import annotations

import torch
from torch import Tensor

import ir_core as ir

PROVIDER = "example"
MAX_HIDDEN = 16384


def _row_ok(x: Tensor) -> bool:
    """A CPU float activation seen as rows of unit stride (any leading dimensions)."""
    return (
        x.device.type == "cpu"
        and ((x.dim() >= 1 and x.is_contiguous()) or (x.dim() == 2 and x.stride(-1) == 1))
        and x.dtype in (torch.float32, torch.float16, torch.bfloat16)
        and 0 < x.shape[-1] <= MAX_HIDDEN
    )


def _rms(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
    xf = x.float()
    mean_sq = (xf * xf).sum(dim=-1, keepdim=True) / x.shape[-1]
    out = xf * torch.rsqrt(mean_sq + epsilon)
    if weight is not None:
        out = out * weight.float()
    return out.to(x.dtype)


def _rms_norm_supports(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return variance_size is None and _row_ok(x)


@ir.ops.rms_norm.register_impl(PROVIDER, supports_args=_rms_norm_supports, batch_invariant=True)
def rms_norm_example(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    """RMS norm of each contiguous CPU row (no ``variance_size``)."""
    return _rms(x, weight, epsilon)


def _fused_supports(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        variance_size is None and _row_ok(x) and _row_ok(x_residual) and x.shape == x_residual.shape
    )


@ir.ops.fused_add_rms_norm.register_impl(
    PROVIDER, supports_args=_fused_supports, batch_invariant=True
)
def fused_add_rms_norm_example(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Residual add (rounded to ``x.dtype``) then the RMS norm above."""
    residual = (x.float() + x_residual.float()).to(x.dtype)
    return _rms(residual, weight, epsilon), residual
