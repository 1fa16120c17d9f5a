"""Gated activations: ``silu_and_mul`` and ``gelu_and_mul`` (erf and tanh).

Each program reads one block of the gate half and the matching block of the
up half of one row and writes one block of the output; the programs form a
1-D grid in memory order (or the old 2-D (row, column block) grid), shaped by
:func:`.common.ew_meta`. No reduction, so trivially batch invariant.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._runtime import define_op, launch, rows_of
from .common import ew_meta, ew_tile

ACT_SILU = 0
ACT_GELU = 1
ACT_GELU_TANH = 2


@triton.jit
def _gate(a, ACT: tl.constexpr):
    if ACT == 0:  # silu(a) = a * sigmoid(a)
        g = a / (1.0 + tl.exp(-a))
    elif ACT == 1:  # exact gelu
        g = 0.5 * a * (1.0 + tl.erf(a * 0.7071067811865476))
    else:
        # tanh gelu: 0.5 * a * (1 + tanh(u)) == a * sigmoid(2u), u = sqrt(2/pi) * (a + 0.044715 a^3);
        # the sigmoid form needs no tanh (absent from the interpreter) and keeps precision
        u = 0.7978845608028654 * (a + 0.044715 * a * a * a)
        g = a / (1.0 + tl.exp(-2.0 * u))
    return g


@triton.jit
def gated_act_kernel(
    x_ptr,
    out_ptr,
    x_stride,
    out_stride,
    d,
    ACT: tl.constexpr,
    BLOCK: tl.constexpr,
    COL_BLOCKS: tl.constexpr = 1,
    FLAT: tl.constexpr = False,
    EVEN: tl.constexpr = False,
):
    row, cols = ew_tile(BLOCK, COL_BLOCKS, FLAT)
    x_row = x_ptr + row * x_stride
    out = out_ptr + row * out_stride + cols
    if EVEN:  # the block divides d: no mask
        a = tl.load(x_row + cols).to(tl.float32)
        b = tl.load(x_row + d + cols).to(tl.float32)
        tl.store(out, (_gate(a, ACT) * b).to(out_ptr.dtype.element_ty))
    else:
        mask = cols < d
        a = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(x_row + d + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(out, (_gate(a, ACT) * b).to(out_ptr.dtype.element_ty), mask=mask)


def _launch_act(x: torch.Tensor, act: int, direct: bool) -> torch.Tensor:
    d = x.shape[-1] // 2
    out = torch.empty((*x.shape[:-1], d), dtype=x.dtype, device=x.device)
    rows = out.numel() // d if d else 0
    if isinstance(rows, int) and rows == 0:
        return out
    x2, xs = rows_of(x, x.shape[-1], direct)
    out2, os_ = rows_of(out, d, direct)
    block, col_blocks, warps, flat, even = ew_meta(d, rows)
    grid = (rows * col_blocks,) if flat else (rows, col_blocks)
    launch(
        gated_act_kernel,
        grid,
        direct,
        x2,
        out2,
        xs,
        os_,
        d,
        ACT=act,
        BLOCK=block,
        COL_BLOCKS=col_blocks,
        FLAT=flat,
        EVEN=even,
        num_warps=warps,
    )
    return out


def silu_and_mul(x: torch.Tensor, direct: bool = False) -> torch.Tensor:
    """``silu(x[..., :d]) * x[..., d:]``."""
    return _launch_act(x, ACT_SILU, direct)


def gelu_and_mul(x: torch.Tensor, tanh: bool, direct: bool = False) -> torch.Tensor:
    """``gelu(x[..., :d]) * x[..., d:]``, tanh approximation when ``tanh``."""
    return _launch_act(x, ACT_GELU_TANH if tanh else ACT_GELU, direct)


@define_op("silu_and_mul")
def silu_and_mul_op(x: torch.Tensor) -> torch.Tensor:
    return silu_and_mul(x)


@define_op("gelu_and_mul")
def gelu_and_mul_op(x: torch.Tensor, tanh: bool) -> torch.Tensor:
    return gelu_and_mul(x, tanh)
