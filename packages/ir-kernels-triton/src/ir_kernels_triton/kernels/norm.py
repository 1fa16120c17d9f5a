"""RMS norm kernels: ``rms_norm``, ``fused_add_rms_norm`` and their static fp8
quant fusions, all from one kernel specialised by constexpr flags.

One program per row; the block and the chunking depend on the hidden size
only, and the sum of squares (:func:`.common.sum_squares`) is exact in
integers after a fixed first step, not ``tl.sum`` whose order follows the
register layout the compiler picks from pointer alignment. So a row's result, bit for
bit, depends neither on how many rows are in the batch, nor where the row
sits, nor on the input's alignment, nor on whether Inductor or the eager
launcher compiled the kernel.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from .._runtime import FP8_DTYPE, define_op, launch, new_out, rows_of
from . import common as _common
from .common import (
    EXACT_FP8,
    NORM_WEARLY_MAX_ROWS,
    div_by_scale,
    exact_sum,
    norm_launch_shape,
    norm_meta,
    pair_sums,
    sum_squares,
    sum_squares_rows,
    to_fp8,
)


@triton.jit
def _load_row(
    x_ptr,
    r_ptr,
    res_ptr,
    x_off,
    r_off,
    res_off,
    cols,
    mask,
    HAS_RESIDUAL: tl.constexpr,
    STORE_RESIDUAL: tl.constexpr,
):
    """One chunk of a row in float32; with a residual, ``x + r`` rounded to
    x's dtype (the new residual stream, stored when asked)."""
    x = tl.load(x_ptr + x_off + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        r = tl.load(r_ptr + r_off + cols, mask=mask, other=0.0)
        x = (x.to(tl.float32) + r.to(tl.float32)).to(x_ptr.dtype.element_ty)
        if STORE_RESIDUAL:
            tl.store(res_ptr + res_off + cols, x, mask=mask)
    return x.to(tl.float32)


@triton.jit
def _finish(
    y,
    cols,
    mask,
    w_ptr,
    w,
    scale,
    inv_scale,
    out_ptr,
    out_off,
    HAS_WEIGHT: tl.constexpr,
    QUANT: tl.constexpr,
    EXACT: tl.constexpr,
    IN_DTYPE: tl.constexpr,
    RCP: tl.constexpr,
    CLAMP: tl.constexpr,
    W_LOADED: tl.constexpr,
):
    """Weight (``w`` when ``W_LOADED``, else loaded here), optional fp8
    quantisation, store."""
    if HAS_WEIGHT:
        if not W_LOADED:
            w = tl.load(w_ptr + cols, mask=mask, other=0.0)
        y = y * w.to(tl.float32)
    if QUANT:
        # native rounds the norm to x's dtype, then divides by the scale
        y = div_by_scale(y.to(IN_DTYPE).to(tl.float32), scale, inv_scale, RCP)
        y = to_fp8(y, EXACT, CLAMP)
    tl.store(out_ptr + out_off + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _load_scale(scale_ptr, QUANT: tl.constexpr, RCP: tl.constexpr):
    """``(scale, 1 / scale)`` of the fused quant (``(1.0, 1.0)`` without it), as
    the one-row program computes them."""
    scale = 1.0
    inv_scale = 1.0
    if QUANT:
        scale = tl.load(scale_ptr).to(tl.float32)
        if RCP:
            inv_scale = tl.div_rn(1.0, scale)
    return scale, inv_scale


@triton.jit
def _split_row(
    x_ptr,
    w_ptr,
    scale_ptr,
    out_ptr,
    x_stride,
    out_stride,
    n_cols,
    var_cols,
    eps,
    HAS_WEIGHT: tl.constexpr,
    QUANT: tl.constexpr,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    SPLIT: tl.constexpr,
    RCP: tl.constexpr,
    CLAMP: tl.constexpr,
    IMAX: tl.constexpr,
):
    """Program ``(row, s)`` of a split launch (no residual): the row's rstd
    from the whole row, exactly as the one-row program (same loads, same
    :func:`.common.sum_squares`), then columns ``[s * BLOCK / SPLIT, (s + 1) *
    BLOCK / SPLIT)`` finished as there. The slice and its weight are loaded
    with the row, so their latency overlaps the row's."""
    row = tl.program_id(0).to(tl.int64)
    eps = tl.cast(eps, tl.float32)
    SLICE: tl.constexpr = BLOCK // SPLIT
    x_off = row * x_stride
    out_off = row * out_stride
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    scols = tl.program_id(1) * SLICE + tl.arange(0, SLICE)
    smask = scols < n_cols
    scale, inv_scale = _load_scale(scale_ptr, QUANT, RCP)
    w = 0.0
    if HAS_WEIGHT:
        w = tl.load(w_ptr + scols, mask=smask, other=0.0)
    xs = tl.load(x_ptr + x_off + scols, mask=smask, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + x_off + cols, mask=mask, other=0.0).to(tl.float32)
    xv = tl.where(cols < var_cols, x, 0.0)
    rstd = tl.rsqrt(sum_squares(xv, BLOCK, IMAX) / var_cols + eps)
    _finish(
        xs * rstd,
        scols,
        smask,
        w_ptr,
        w,
        scale,
        inv_scale,
        out_ptr,
        out_off,
        HAS_WEIGHT,
        QUANT,
        EXACT,
        x_ptr.dtype.element_ty,
        RCP,
        CLAMP,
        True,
    )


@triton.jit
def _tile_rows(
    x_ptr,
    r_ptr,
    w_ptr,
    scale_ptr,
    out_ptr,
    res_ptr,
    x_stride,
    r_stride,
    out_stride,
    res_stride,
    n_cols,
    var_cols,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    QUANT: tl.constexpr,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    RCP: tl.constexpr,
    CLAMP: tl.constexpr,
    IMAX: tl.constexpr,
    W_EARLY: tl.constexpr,
    ROWS: tl.constexpr,
):
    """``ROWS`` whole rows (held in registers) as one ``[ROWS, BLOCK]`` tile:
    the loads, the residual add, :func:`.common.sum_squares_rows` (each row
    reduced along its own axis with the one-row program's operations) and
    the finish of the one-row program, row by row the same values; the
    weight is loaded once for the tile."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS).to(tl.int64)
    eps = tl.cast(eps, tl.float32)
    x_off = (rows * x_stride)[:, None]
    r_off = (rows * r_stride)[:, None]
    out_off = (rows * out_stride)[:, None]
    res_off = (rows * res_stride)[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    mask = cols < n_cols
    scale, inv_scale = _load_scale(scale_ptr, QUANT, RCP)
    w = tl.zeros([1, BLOCK], dtype=tl.float32)
    if HAS_WEIGHT and W_EARLY:
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    x = _load_row(x_ptr, r_ptr, res_ptr, x_off, r_off, res_off, cols, mask, HAS_RESIDUAL, True)
    xv = tl.where(cols < var_cols, x, 0.0)
    rstd = tl.rsqrt(sum_squares_rows(xv, ROWS, BLOCK, IMAX) / var_cols + eps)
    _finish(
        x * rstd[:, None],
        cols,
        mask,
        w_ptr,
        w,
        scale,
        inv_scale,
        out_ptr,
        out_off,
        HAS_WEIGHT,
        QUANT,
        EXACT,
        x_ptr.dtype.element_ty,
        RCP,
        CLAMP,
        W_EARLY,
    )


@triton.jit
def rms_norm_kernel(
    x_ptr,
    r_ptr,
    w_ptr,
    scale_ptr,
    out_ptr,
    res_ptr,
    x_stride,
    r_stride,
    out_stride,
    res_stride,
    n_cols,
    var_cols,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    QUANT: tl.constexpr,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    N_CHUNKS: tl.constexpr,
    RCP: tl.constexpr = False,
    CLAMP: tl.constexpr = True,
    IMAX: tl.constexpr = False,
    W_EARLY: tl.constexpr = False,
):
    row = tl.program_id(0).to(tl.int64)
    # Inductor (torch 2.10 to 2.14) types a Python float argument of a user
    # kernel fp64 where Triton's own launcher passes fp32: without this cast
    # the norm would run in fp64 under torch.compile and round differently.
    eps = tl.cast(eps, tl.float32)
    x_off = row * x_stride
    r_off = row * r_stride
    out_off = row * out_stride
    res_off = row * res_stride
    cols = tl.arange(0, BLOCK)
    scale = 1.0
    inv_scale = 1.0
    if QUANT:
        scale = tl.load(scale_ptr).to(tl.float32)
        if RCP:
            inv_scale = tl.div_rn(1.0, scale)
    in_dtype = x_ptr.dtype.element_ty
    if N_CHUNKS == 1:
        mask = cols < n_cols
        w = 0.0
        if HAS_WEIGHT and W_EARLY:  # issued with the row: its latency overlaps the row's
            w = tl.load(w_ptr + cols, mask=mask, other=0.0)
        x = _load_row(x_ptr, r_ptr, res_ptr, x_off, r_off, res_off, cols, mask, HAS_RESIDUAL, True)
        xv = tl.where(cols < var_cols, x, 0.0)
        rstd = tl.rsqrt(sum_squares(xv, BLOCK, IMAX) / var_cols + eps)
        _finish(
            x * rstd,
            cols,
            mask,
            w_ptr,
            w,
            scale,
            inv_scale,
            out_ptr,
            out_off,
            HAS_WEIGHT,
            QUANT,
            EXACT,
            in_dtype,
            RCP,
            CLAMP,
            W_EARLY,
        )
    else:
        # Rows too long for registers: per-lane partial sums over fixed chunks
        # (an order set by the hidden size alone), then a second pass that
        # recomputes the row from the inputs.
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(N_CHUNKS):
            cc = c * BLOCK + cols
            x = _load_row(
                x_ptr, r_ptr, res_ptr, x_off, r_off, res_off, cc, cc < n_cols, HAS_RESIDUAL, True
            )
            xv = tl.where(cc < var_cols, x, 0.0)
            acc = tl.fma(xv, xv, acc)  # elementwise: the same in every layout
        rstd = tl.rsqrt(exact_sum(pair_sums(acc, BLOCK), IMAX) / var_cols + eps)
        for c in range(N_CHUNKS):
            cc = c * BLOCK + cols
            mask = cc < n_cols
            x = _load_row(
                x_ptr, r_ptr, res_ptr, x_off, r_off, res_off, cc, mask, HAS_RESIDUAL, False
            )
            _finish(
                x * rstd,
                cc,
                mask,
                w_ptr,
                0.0,
                scale,
                inv_scale,
                out_ptr,
                out_off,
                HAS_WEIGHT,
                QUANT,
                EXACT,
                in_dtype,
                RCP,
                CLAMP,
                False,
            )


@triton.jit
def rms_norm_shaped_kernel(
    x_ptr,
    r_ptr,
    w_ptr,
    scale_ptr,
    out_ptr,
    res_ptr,
    x_stride,
    r_stride,
    out_stride,
    res_stride,
    n_cols,
    var_cols,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    QUANT: tl.constexpr,
    EXACT: tl.constexpr,
    BLOCK: tl.constexpr,
    N_CHUNKS: tl.constexpr,
    RCP: tl.constexpr,
    CLAMP: tl.constexpr,
    IMAX: tl.constexpr,
    W_EARLY: tl.constexpr,
    SPLIT: tl.constexpr,
    ROWS: tl.constexpr,
):
    """:func:`rms_norm_kernel`'s rows in other launch shapes
    (:func:`.common.norm_launch_shape`), a row's arithmetic unchanged; the
    parameters are that kernel's (rows held in registers: ``N_CHUNKS`` is 1),
    then SPLIT and ROWS. ``SPLIT > 1`` (no residual; eager launches of a few
    rows): a 2-D grid (row, slice), each program reduces the whole row and
    finishes 1/SPLIT of it (:func:`_split_row`). Else ``ROWS`` rows a program
    as a ``[ROWS, BLOCK]`` tile (:func:`_tile_rows`; the launcher makes ROWS
    divide the row count). Kept apart from :func:`rms_norm_kernel` so that
    the default launch and its compiled code stay as they were."""
    if SPLIT > 1:
        _split_row(
            x_ptr, w_ptr, scale_ptr, out_ptr, x_stride, out_stride, n_cols, var_cols, eps,
            HAS_WEIGHT, QUANT, EXACT, BLOCK, SPLIT, RCP, CLAMP, IMAX,
        )  # fmt: skip
    else:
        _tile_rows(
            x_ptr, r_ptr, w_ptr, scale_ptr, out_ptr, res_ptr, x_stride, r_stride, out_stride,
            res_stride, n_cols, var_cols, eps, HAS_RESIDUAL, HAS_WEIGHT, QUANT, EXACT, BLOCK,
            RCP, CLAMP, IMAX, W_EARLY, ROWS,
        )  # fmt: skip


#: No launch options beyond the meta-parameters (the default launch).
_NO_EXTRA: dict[str, int] = {}


def _launch_norm(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor | None,
    scale: torch.Tensor | None,
    out: torch.Tensor,
    res_out: torch.Tensor | None,
    epsilon: float,
    variance_size: int,
    direct: bool,
) -> None:
    hidden = x.shape[-1]
    rows = out.numel() // hidden if hidden else 0
    if isinstance(rows, int) and rows == 0:
        return
    # base pointers and row strides (supports_args admits row-collapsible tensors only)
    x2, xs = rows_of(x, hidden, direct)
    r2, rs = rows_of(residual, hidden, direct) if residual is not None else (x2, xs)
    out2, os_ = rows_of(out, hidden, direct)
    res2, ress = rows_of(res_out, hidden, direct) if res_out is not None else (out2, os_)
    quant_only = scale is not None and residual is None
    plain = scale is None and residual is None
    block, chunks, warps, rcp, clamp, imax, w_early = norm_meta(hidden, quant_only, plain)
    # When the weight is loaded changes no bit, so it may follow the row count;
    # a symbolic count (dynamic-shape tracing) gets the many-rows choice.
    w_early = w_early and isinstance(rows, int) and rows < NORM_WEARLY_MAX_ROWS
    kernel: Any = rms_norm_kernel
    grid: tuple[Any, ...] = (rows,)
    extra = _NO_EXTRA
    if _common.NORM_SHAPE_KNOBS:  # row-count-dependent shapes (common.py: split, few-row warps)
        few_warps, split, per, maxnreg = norm_launch_shape(
            block, chunks, rows, quant_only, direct, residual is not None
        )
        warps = few_warps or warps
        extra = {"maxnreg": maxnreg} if maxnreg else {}
        if split > 1 or per > 1:
            kernel = rms_norm_shaped_kernel
            grid = (rows, split) if split > 1 else (rows // per,)
            extra["SPLIT"] = split
            extra["ROWS"] = per
    launch(
        kernel,
        grid,
        direct,
        x2,
        r2,
        weight if weight is not None else x2,
        scale if scale is not None else x2,
        out2,
        res2,
        xs,
        rs,
        os_,
        ress,
        hidden,
        variance_size,
        epsilon,
        HAS_RESIDUAL=residual is not None,
        HAS_WEIGHT=weight is not None,
        QUANT=scale is not None,
        EXACT=EXACT_FP8,
        BLOCK=block,
        N_CHUNKS=chunks,
        RCP=rcp,
        CLAMP=clamp,
        IMAX=imax,
        W_EARLY=w_early,
        num_warps=warps,
        **extra,
    )


def rms_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    variance_size: int,
    direct: bool = False,
) -> torch.Tensor:
    """``rms_norm`` with ``variance_size`` resolved (the hidden size when unset)."""
    out = new_out(x, None, direct)
    _launch_norm(x, None, weight, None, out, None, epsilon, variance_size, direct)
    return out


def fused_add_rms_norm(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    variance_size: int,
    direct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rms_norm(x + x_residual), x + x_residual)``, the sum rounded to x's dtype."""
    out = new_out(x, None, direct)
    res = new_out(x, None, direct)
    _launch_norm(x, x_residual, weight, None, out, res, epsilon, variance_size, direct)
    return out, res


def rms_norm_static_fp8_quant(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    scale: torch.Tensor,
    direct: bool = False,
) -> torch.Tensor:
    """RMS norm (rounded to x's dtype, as native) then ``clamp(y / scale)`` as float8_e4m3fn."""
    out = new_out(x, FP8_DTYPE, direct)
    _launch_norm(x, None, weight, scale, out, None, epsilon, x.shape[-1], direct)
    return out


def fused_add_rms_norm_static_fp8_quant(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    scale: torch.Tensor,
    direct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add, RMS norm, static fp8 quant: ``(fp8 out, new residual)``."""
    out = new_out(x, FP8_DTYPE, direct)
    res = new_out(x, None, direct)
    _launch_norm(x, x_residual, weight, scale, out, res, epsilon, x.shape[-1], direct)
    return out, res


# The torch ops (traced and compiled calls): the same launchers behind
# ``torch.ops.ir_triton.*``.


@define_op("rms_norm")
def rms_norm_op(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, variance_size: int
) -> torch.Tensor:
    return rms_norm(x, weight, epsilon, variance_size)


@define_op("fused_add_rms_norm")
def fused_add_rms_norm_op(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    variance_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    return fused_add_rms_norm(x, x_residual, weight, epsilon, variance_size)


@define_op("rms_norm_static_fp8_quant")
def rms_norm_static_fp8_quant_op(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, scale: torch.Tensor
) -> torch.Tensor:
    return rms_norm_static_fp8_quant(x, weight, epsilon, scale)


@define_op("fused_add_rms_norm_static_fp8_quant")
def fused_add_rms_norm_static_fp8_quant_op(
    x: torch.Tensor,
    x_residual: torch.Tensor,
    weight: torch.Tensor | None,
    epsilon: float,
    scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    return fused_add_rms_norm_static_fp8_quant(x, x_residual, weight, epsilon, scale)
