"""FP8 (e4m3fn) quantisation: static (one scale), dynamic per token and per
token group.

* static: elementwise, launched like the activations (:func:`.common.ew_meta`).
* dynamic per token: one program per row (amax, then quantise), the block and
  chunking set by the row length alone, like the norms.
* per token group: a 2D grid of (row, block of groups); each program holds a
  ``[groups, group_size]`` tile and reduces along the group axis.

Divisions are round-to-nearest (``div_rn``, or for the static and dynamic
quant by default the reciprocal with one exact correction step of
:func:`.common.div_by_scale`, which rounds the same), as torch's, so scales and
quantised values match native bit for bit up to the e4m3 conversion. A NaN in
a row (dynamic) or group makes its scale and outputs NaN, as native's ``amax``
(:func:`.common.abs_max`, NaN-propagating maxima and minima).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._runtime import FP8_DTYPE, define_op, launch, new_out, rows_of
from .common import (
    DQ_WARPS,
    EXACT_FP8,
    FP8_CLAMP,
    FP8_MAX,
    GROUP_PROGRAMS,
    QUANT_RCP,
    abs_max,
    div_by_scale,
    ew_meta,
    ew_tile,
    row_meta,
    to_fp8,
)

#: Elements per program of the group quant tile (at most; fewer where
#: :data:`.common.GROUP_PROGRAMS` asks for more programs).
_GROUP_TILE = 2048
#: Smallest per-token scale (ir_core.ops.quant.MIN_SCALE).
MIN_SCALE = 1.0 / (FP8_MAX * 512.0)
#: Floor of a group's absolute maximum (ir_core.ops.quant.GROUP_EPS).
GROUP_EPS = 1e-10


@triton.jit
def static_quant_kernel(
    x_ptr,
    scale_ptr,
    out_ptr,
    x_stride,
    out_stride,
    n_cols,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    COL_BLOCKS: tl.constexpr = 1,
    CLAMP: tl.constexpr = True,
    FLAT: tl.constexpr = False,
    EVEN: tl.constexpr = False,
    RCP: tl.constexpr = False,
):
    row, cols = ew_tile(BLOCK, COL_BLOCKS, FLAT)
    scale = tl.load(scale_ptr).to(tl.float32)
    inv_scale = 1.0
    if RCP:
        inv_scale = tl.div_rn(1.0, scale)
    src = x_ptr + row * x_stride + cols
    dst = out_ptr + row * out_stride + cols
    if EVEN:  # the block divides n_cols: no mask
        x = tl.load(src).to(tl.float32)
        y = to_fp8(div_by_scale(x, scale, inv_scale, RCP), EXACT, CLAMP)
        tl.store(dst, y.to(out_ptr.dtype.element_ty))
    else:
        mask = cols < n_cols
        x = tl.load(src, mask=mask, other=0.0).to(tl.float32)
        y = to_fp8(div_by_scale(x, scale, inv_scale, RCP), EXACT, CLAMP)
        tl.store(dst, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def dynamic_quant_kernel(
    x_ptr,
    ub_ptr,
    out_ptr,
    scales_ptr,
    x_stride,
    out_stride,
    n_cols,
    min_scale,
    HAS_UB: tl.constexpr,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    N_CHUNKS: tl.constexpr,
    RCP: tl.constexpr = False,
):
    row = tl.program_id(0).to(tl.int64)
    # fp32 as from Triton's launcher, also where Inductor passes the float as fp64
    min_scale = tl.cast(min_scale, tl.float32)
    x_row = x_ptr + row * x_stride
    out_row = out_ptr + row * out_stride
    cols = tl.arange(0, BLOCK)
    if N_CHUNKS == 1:
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        amax = abs_max(x, 0)
    else:
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(N_CHUNKS):
            cc = c * BLOCK + cols
            xc = tl.load(x_row + cc, mask=cc < n_cols, other=0.0).to(tl.float32)
            acc = tl.maximum(acc, tl.abs(xc), propagate_nan=tl.PropagateNan.ALL)
        amax = abs_max(acc, 0)
    if HAS_UB:
        ub = tl.load(ub_ptr).to(tl.float32)
        amax = tl.minimum(amax, ub, propagate_nan=tl.PropagateNan.ALL)
    scale = tl.maximum(tl.div_rn(amax, 448.0), min_scale, propagate_nan=tl.PropagateNan.ALL)
    tl.store(scales_ptr + row, scale)
    inv_scale = 1.0
    if RCP:
        inv_scale = tl.div_rn(1.0, scale)
    if N_CHUNKS == 1:
        y = to_fp8(div_by_scale(x, scale, inv_scale, RCP), EXACT)
        tl.store(out_row + cols, y.to(out_ptr.dtype.element_ty), mask=mask)
    else:
        for c in range(N_CHUNKS):
            cc = c * BLOCK + cols
            m = cc < n_cols
            xc = tl.load(x_row + cc, mask=m, other=0.0).to(tl.float32)
            y = to_fp8(div_by_scale(xc, scale, inv_scale, RCP), EXACT)
            tl.store(out_row + cc, y.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def group_quant_kernel(
    x_ptr,
    out_ptr,
    scales_ptr,
    x_stride,
    out_stride,
    scales_stride,
    n_groups,
    group_size,
    eps,
    EXACT: tl.constexpr,
    GROUPS: tl.constexpr,
    GROUP_BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    # fp32 as from Triton's launcher, also where Inductor passes the float as fp64
    eps = tl.cast(eps, tl.float32)
    groups = tl.program_id(1) * GROUPS + tl.arange(0, GROUPS)
    inner = tl.arange(0, GROUP_BLOCK)
    cols = groups[:, None] * group_size + inner[None, :]
    mask = (groups[:, None] < n_groups) & (inner[None, :] < group_size)
    x = tl.load(x_ptr + row * x_stride + cols, mask=mask, other=0.0).to(tl.float32)
    amax = abs_max(x, 1)
    scale = tl.div_rn(tl.maximum(amax, eps, propagate_nan=tl.PropagateNan.ALL), 448.0)
    tl.store(scales_ptr + row * scales_stride + groups, scale, mask=groups < n_groups)
    y = to_fp8(tl.div_rn(x, scale[:, None]), EXACT)
    tl.store(out_ptr + row * out_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


_group_meta: dict[tuple[int, int, int], tuple[int, int, int, int]] = {}


def _rows_bucket(rows: int) -> int:
    """The rows as far as the group quant's launch shape depends on them:
    counts from :data:`.common.GROUP_PROGRAMS` up (or symbolic ones, under
    dynamic-shape tracing, not guarded on) all launch alike."""
    return min(rows, GROUP_PROGRAMS) if isinstance(rows, int) else GROUP_PROGRAMS


def group_meta(n_groups: int, group_size: int, rows: int) -> tuple[int, int, int, int]:
    """``(GROUPS, GROUP_BLOCK, program blocks a row, num_warps)`` of the group
    quant: tiles of up to 2048 elements (whole groups), halved while ``rows``
    rows give fewer than :data:`.common.GROUP_PROGRAMS` programs."""
    gblock = triton.next_power_of_2(group_size)
    groups = max(1, min(triton.next_power_of_2(n_groups), _GROUP_TILE // gblock))
    warps = max(1, min(8, groups * gblock // 512))
    while groups > 1 and rows * triton.cdiv(n_groups, groups) < GROUP_PROGRAMS:
        groups //= 2
        # small tiles, as Inductor's: about 2 elements a thread, at most 4 warps
        warps = max(1, min(4, groups * gblock // 64))
    return groups, gblock, triton.cdiv(n_groups, groups), warps


def static_scaled_fp8_quant(
    x: torch.Tensor, scale: torch.Tensor, direct: bool = False
) -> torch.Tensor:
    """``clamp(x / scale, -448, 448)`` as float8_e4m3fn."""
    out = new_out(x, FP8_DTYPE, direct)
    n = x.shape[-1]
    rows = out.numel() // n if n else 0
    if isinstance(rows, int) and rows == 0:
        return out
    block, col_blocks, warps, flat, even = ew_meta(n, rows)
    grid = (rows * col_blocks,) if flat else (rows, col_blocks)
    x2, xs = rows_of(x, n, direct)
    out2, os_ = rows_of(out, n, direct)
    launch(
        static_quant_kernel,
        grid,
        direct,
        x2,
        scale,
        out2,
        xs,
        os_,
        n,
        EXACT=EXACT_FP8,
        BLOCK=block,
        COL_BLOCKS=col_blocks,
        CLAMP=FP8_CLAMP,
        FLAT=flat,
        EVEN=even,
        RCP=QUANT_RCP,
        num_warps=warps,
    )
    return out


def dynamic_per_token_scaled_fp8_quant(
    x: torch.Tensor, scale_ub: torch.Tensor | None, direct: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row scales ``max(min(amax, ub) / 448, MIN_SCALE)``; ``(fp8, scales [..., 1])``."""
    out = new_out(x, FP8_DTYPE, direct)
    scales = torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device)
    n = x.shape[-1]
    rows = out.numel() // n if n else 0
    if isinstance(rows, int) and rows == 0:
        return out, scales
    x2, xs = rows_of(x, n, direct)
    out2, os_ = rows_of(out, n, direct)
    block, chunks, warps = row_meta(n)
    if DQ_WARPS:
        warps = DQ_WARPS.get(block, warps)
    launch(
        dynamic_quant_kernel,
        (rows,),
        direct,
        x2,
        scale_ub if scale_ub is not None else scales,
        out2,
        scales,
        xs,
        os_,
        n,
        MIN_SCALE,
        HAS_UB=scale_ub is not None,
        EXACT=EXACT_FP8,
        BLOCK=block,
        N_CHUNKS=chunks,
        RCP=QUANT_RCP,
        num_warps=warps,
    )
    return out, scales


def per_token_group_quant_fp8(
    x: torch.Tensor, group_size: int, direct: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales per ``group_size`` features ``max(amax, 1e-10) / 448``; ``(fp8, scales)``."""
    n = x.shape[-1]
    if not isinstance(n, int):  # a SymInt under dynamic-shape tracing: specialise
        n = int(n)
    n_groups = n // group_size
    out = new_out(x, FP8_DTYPE, direct)
    scales = torch.empty((*x.shape[:-1], n_groups), dtype=torch.float32, device=x.device)
    rows = out.numel() // n if n else 0
    if isinstance(rows, int) and rows == 0:
        return out, scales
    bucket = _rows_bucket(rows)
    meta = _group_meta.get((n, group_size, bucket))
    if meta is None:
        meta = _group_meta[(n, group_size, bucket)] = group_meta(n_groups, group_size, bucket)
    groups, gblock, blocks, warps = meta
    x2, xs = rows_of(x, n, direct)
    out2, os_ = rows_of(out, n, direct)
    s2, ss = rows_of(scales, n_groups, direct)
    launch(
        group_quant_kernel,
        (rows, blocks),
        direct,
        x2,
        out2,
        s2,
        xs,
        os_,
        ss,
        n_groups,
        group_size,
        GROUP_EPS,
        EXACT=EXACT_FP8,
        GROUPS=groups,
        GROUP_BLOCK=gblock,
        num_warps=warps,
    )
    return out, scales


@define_op("static_scaled_fp8_quant")
def static_scaled_fp8_quant_op(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return static_scaled_fp8_quant(x, scale)


@define_op("dynamic_per_token_scaled_fp8_quant")
def dynamic_per_token_scaled_fp8_quant_op(
    x: torch.Tensor,
    scale_ub: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    return dynamic_per_token_scaled_fp8_quant(x, scale_ub)


@define_op("per_token_group_quant_fp8")
def per_token_group_quant_fp8_op(
    x: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return per_token_group_quant_fp8(x, group_size)
