"""Helpers shared by the kernels: launch shapes and the fp8 conversion."""

from __future__ import annotations

import os
from typing import Any

import triton
import triton.language as tl

from .._runtime import INTERPRET

#: Largest row held in registers at once; longer rows are processed in chunks.
MAX_ROW_BLOCK = 16384
#: Chunk width for rows longer than MAX_ROW_BLOCK.
CHUNK_BLOCK = 8192
FP8_MAX = 448.0
#: Under the interpreter, round to the e4m3 grid before converting: Triton
#: 3.9's interpreter mis-rounds float32 -> e4m3 when rounding carries into the
#: exponent (7.85 -> 4.0), while exactly representable values convert right.
EXACT_FP8: bool = INTERPRET


def row_block(n_cols: int) -> tuple[int, int]:
    """``(BLOCK, N_CHUNKS)`` for a per-row reduction over ``n_cols`` features.

    Depends on the row length only, never on the number of rows, so the
    reduction order (and each row's result, bit for bit) is batch invariant.
    """
    block = triton.next_power_of_2(max(int(n_cols), 1))
    if block <= MAX_ROW_BLOCK:
        return block, 1
    return CHUNK_BLOCK, triton.cdiv(int(n_cols), CHUNK_BLOCK)


def row_warps(block: int) -> int:
    """Warps for one row of ``block`` elements: about 16 elements a thread."""
    return max(1, min(16, block // 512))


_row_meta: dict[int, tuple[int, int, int]] = {}


def row_meta(n_cols: int) -> tuple[int, int, int]:
    """``(BLOCK, N_CHUNKS, num_warps)`` for a row of ``n_cols``, cached per size
    (the launch path stays lean). A function of the row length alone."""
    if not isinstance(n_cols, int):  # a SymInt under dynamic-shape tracing: specialise
        n_cols = int(n_cols)
    meta = _row_meta.get(n_cols)
    if meta is None:
        block, chunks = row_block(n_cols)
        meta = _row_meta[n_cols] = (block, chunks, row_warps(block))
    return meta


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value not in ("0", "false", "no")


def _env_map(name: str) -> dict[int, int]:
    """``"8192:8,4096:4"`` -> ``{8192: 8, 4096: 4}`` (malformed entries are ignored)."""
    out: dict[int, int] = {}
    for item in os.environ.get(name, "").split(","):
        key, _, value = item.partition(":")
        if key.strip().isdigit() and value.strip().isdigit():
            out[int(key)] = int(value)
    return out


# Tuning knobs of the norm kernels, read once at import (scripts/gpu/triton_exp.py
# measures each choice). Every one is a function of the row length alone, so the
# batch invariance of the norms holds whatever they are set to.
#: ``IR_TRITON_NORM_WARPS="8192:8,4096:8"``: num_warps per row block (a power of
#: two), overriding :func:`row_warps`.
NORM_WARPS: dict[int, int] = _env_map("IR_TRITON_NORM_WARPS")
#: The same for ``rms_norm_static_fp8_quant`` (quant, no residual). Default
#: :func:`quant_row_warps`: half of :func:`row_warps` (H100, 16384 x 8192: 8 warps
#: 142 us, 16 warps 158 us; x 4096: 4 warps 74 us, 8 warps 80 us).
NORM_QUANT_WARPS: dict[int, int] = _env_map("IR_TRITON_NORM_QUANT_WARPS")
#: ``IR_TRITON_NORM_PLAIN_WARPS``: the same for ``rms_norm`` alone (no residual,
#: no quant), where it differs from :func:`row_warps`. Default 8192: 8 (H100,
#: session 4, scripts/gpu/triton_exp.py: 1024 x 8192 in a CUDA graph 8.65 us
#: against 9.51 with 16 warps, Inductor 8.34; do_bench 4096 x 8192 48.1 vs
#: 48.0 and 16384 x 8192 183.6 vs 182.8; 1 x 8192 2.22 vs 2.27). The residual
#: forms were not measured with 8 warps and keep :func:`row_warps`.
NORM_PLAIN_WARPS: dict[int, int] = _env_map("IR_TRITON_NORM_PLAIN_WARPS") or {8192: 8}
#: ``IR_TRITON_NORM_RCP``: the fused quant divides by the scale through its
#: reciprocal and one correction step (:func:`div_by_scale`) instead of ``div_rn``.
NORM_RCP: bool = _env_flag("IR_TRITON_NORM_RCP", True)
#: ``IR_TRITON_FP8_CLAMP``: clamp to +-448 before the e4m3 conversion even where
#: the conversion saturates by itself (same bits; off saves two instructions an element).
FP8_CLAMP: bool = _env_flag("IR_TRITON_FP8_CLAMP", False)
#: ``IR_TRITON_NORM_WEARLY``: rows held in registers (``N_CHUNKS == 1``) load the
#: weight together with the row, before the reduction, so that its latency
#: overlaps the row's instead of following the sum (a one-row norm is a chain
#: of latencies: H100, rms_norm 1 x 2048, 1.89 us against Inductor's 1.66,
#: whose kernel loads every input up front). Same bits either way, so the
#: choice may follow the row count: only launches of fewer than
#: :data:`NORM_WEARLY_MAX_ROWS` rows load early (H100, ir bench: with the weight
#: early at every row count rms_norm 16384 x 8192 took 199 us against 184 for
#: the cuda kernel, and the sweep measured 1024 x 2048 at 3.58 us early, 3.42
#: late; 128 x 4096 2.26 early, 2.42 late). 0: the weight is always loaded
#: after the sum (the layout before this change).
NORM_WEARLY: bool = _env_flag("IR_TRITON_NORM_WEARLY", True)
#: Row count from which the norms load the weight after the sum (see above).
NORM_WEARLY_MAX_ROWS = 256
#: ``IR_TRITON_NORM_IMAX``: the exact sum's maximum as an integer reduction.
NORM_IMAX: bool = _env_flag("IR_TRITON_NORM_IMAX", True)

# Row-count-dependent launch shapes of the norms (on by default: the row
# split and the quant form's few-row warps, as measured in session 4; the
# others off; the scripts/gpu/triton_exp.py sweep measures each). None of them changes a
# row's arithmetic: the sum of squares is exact (:func:`sum_squares`), so
# its bits do not depend on the register layout, hence not on num_warps
# either; every element is finished by the same instructions whichever
# program does it (the alignment test and the sweep's bits column check
# this on a GPU, test_triton_launch_shapes.py under the interpreter).
#: Row counts below this are "few rows" for the knobs below.
NORM_FEW_ROWS: int = int(os.environ.get("IR_TRITON_NORM_FEW_ROWS", "256") or 0)
#: ``IR_TRITON_NORM_FEW_WARPS="4096:16"``: num_warps per row block when fewer
#: than :data:`NORM_FEW_ROWS` rows are launched (a few rows are a chain of
#: latencies: shorter per-thread work helps there, while many rows want
#: fewer warps for more rows resident per SM). ``IR_TRITON_NORM_QUANT_FEW_WARPS``:
#: the same for ``rms_norm_static_fp8_quant``.
NORM_FEW_WARPS: dict[int, int] = _env_map("IR_TRITON_NORM_FEW_WARPS")
#: Default for the quant form: 2048: 4 (H100, session 4, CUDA graph: 16 x 2048
#: 1.94 us against 2.21 with 2 warps, 128 x 2048 2.18 vs 2.38; Inductor 2.05, 2.17).
NORM_QUANT_FEW_WARPS: dict[int, int] = _env_map("IR_TRITON_NORM_QUANT_FEW_WARPS") or {2048: 4}
#: ``IR_TRITON_NORM_SPLIT=N`` (0: off): eager launches of the norms without
#: residual, rows held in registers, fewer than :data:`NORM_FEW_ROWS` rows:
#: each row is spread over ``SPLIT`` programs (doubled, up to
#: :data:`NORM_SPLIT_MAX`, while ``rows * SPLIT < N``); every one reduces
#: the whole row (the same code, the same bits) and finishes 1/SPLIT of it.
#: A one-row norm runs on one SM, whose issue rate bounds the finish (about
#: 15 instructions an element with the fp8 quant). ``IR_TRITON_NORM_QUANT_SPLIT``:
#: the same for ``rms_norm_static_fp8_quant``.
#: Default 256 for both (H100, session 4, CUDA graph, against no split:
#: rms_norm_static_fp8_quant 1 x 8192 2.08 us with 4 programs a row vs 2.64,
#: 16 x 2048 1.93 (with 4 warps) vs 2.21, 128 x 4096 2.55 vs 2.60; rms_norm
#: 1 x 4096 1.75 vs 1.85, 16 x 4096 1.96 (2 programs) vs 1.99).
NORM_SPLIT: int = int(os.environ.get("IR_TRITON_NORM_SPLIT", "256") or 0)
NORM_QUANT_SPLIT: int = int(os.environ.get("IR_TRITON_NORM_QUANT_SPLIT", "256") or 0)
#: ``IR_TRITON_NORM_SPLIT_MAX``: most programs a row is split over; each
#: finishes at least :data:`NORM_SPLIT_MIN_COLS` columns. Default 4 (the
#: quant form at 1 x 8192: 2.08 us with 4, 2.19 with 8).
NORM_SPLIT_MAX: int = int(os.environ.get("IR_TRITON_NORM_SPLIT_MAX", "4") or 1)
NORM_SPLIT_MIN_COLS = 512
#: ``IR_TRITON_NORM_ROWS="2048:2"``: rows per program (a ``[ROWS, BLOCK]``
#: tile, every row reduced along its own axis as alone) per row block, for
#: launches of at least :data:`NORM_FEW_ROWS` rows whose count ROWS divides
#: (the cross-warp steps and the weight load are shared by the rows, as
#: Inductor's XBLOCK > 1). Rows held in registers only.
NORM_ROWS: dict[int, int] = _env_map("IR_TRITON_NORM_ROWS")
NORM_QUANT_ROWS: dict[int, int] = _env_map("IR_TRITON_NORM_QUANT_ROWS")
#: ``IR_TRITON_NORM_MAXNREG="8192:32"``: Triton's ``maxnreg`` (registers a
#: thread, ptxas may spill) per row block, for eager launches (Inductor's
#: wrapper takes no ``maxnreg``) of at least :data:`NORM_FEW_ROWS` rows (it
#: is about programs resident an SM). rms_norm 8192, 16 warps: 40 registers
#: a thread (sm_90, offline compile), 3 programs an SM, 1024 rows in 2.6
#: waves; capped at 32 (one spill): 4 programs, 1.9 waves.
#: ``IR_TRITON_NORM_QUANT_MAXNREG``: ``rms_norm_static_fp8_quant``.
NORM_MAXNREG: dict[int, int] = _env_map("IR_TRITON_NORM_MAXNREG")
NORM_QUANT_MAXNREG: dict[int, int] = _env_map("IR_TRITON_NORM_QUANT_MAXNREG")


#: Whether any of the knobs above is set (else the launcher skips
#: :func:`norm_launch_shape`, keeping the default launch path as lean as before).
NORM_SHAPE_KNOBS: bool = bool(
    NORM_FEW_WARPS
    or NORM_QUANT_FEW_WARPS
    or NORM_SPLIT
    or NORM_QUANT_SPLIT
    or NORM_ROWS
    or NORM_QUANT_ROWS
    or NORM_MAXNREG
    or NORM_QUANT_MAXNREG
)


def norm_launch_shape(
    block: int, chunks: int, rows: Any, quant_only: bool, direct: bool, residual: bool
) -> tuple[int | None, int, int, int | None]:
    """``(num_warps override or None, SPLIT, ROWS, maxnreg or None)`` of a
    norm launch of ``rows`` rows (the knobs above; all off: ``(None, 1, 1,
    None)``, the shape of any launch of at least :data:`NORM_FEW_ROWS` rows
    under the defaults). Splitting needs an eager launch (``direct``: fresh outputs,
    nothing aliased) without residual: the programs of one row then write
    disjoint columns and read only inputs. ``maxnreg`` needs an eager launch
    too. A symbolic ``rows`` (dynamic-shape tracing) gets ``(None, 1, 1,
    None)``, with no guard on it."""
    if rows.__class__ is not int:
        return None, 1, 1, None
    few = rows < NORM_FEW_ROWS
    warps = (NORM_QUANT_FEW_WARPS if quant_only else NORM_FEW_WARPS).get(block) if few else None
    split = 1
    target = NORM_QUANT_SPLIT if quant_only else NORM_SPLIT
    if few and direct and not residual and target > 0 and chunks == 1:
        while (
            split < NORM_SPLIT_MAX
            and rows * split < target
            and block // (2 * split) >= NORM_SPLIT_MIN_COLS
        ):
            split *= 2
    per = 1
    if not few and chunks == 1:
        per = (NORM_QUANT_ROWS if quant_only else NORM_ROWS).get(block, 1)
        if per < 2 or per & (per - 1) or rows % per or block < 4:  # a power of two dividing rows
            per = 1
    maxnreg = None
    if direct and not few:
        maxnreg = (NORM_QUANT_MAXNREG if quant_only else NORM_MAXNREG).get(block)
    return warps, split, per, maxnreg


# Launch rule of the element-wise kernels (gated activations, static fp8 quant).
# No reduction: every element is computed alike in any launch shape, so the
# shape may follow the number of rows too.
#: ``IR_TRITON_EW_GRID``: ``flat`` (default): a 1-D grid in memory order
#: (program ``p`` covers column block ``p % col_blocks`` of row ``p //
#: col_blocks``: neighbouring programs touch neighbouring memory, as
#: Inductor's pointwise kernels do; H100 ncu, silu_and_mul 16384 x 8192: the
#: old 2-D (row, column block) grid, whose neighbouring programs are a row
#: apart, ran at 87 % of DRAM peak against Inductor's 91 % with the same
#: 131072 x 128-thread launch). ``rows``: the old 2-D grid, 1024-column
#: blocks, masked accesses (the layout before this change).
EW_FLAT: bool = os.environ.get("IR_TRITON_EW_GRID", "flat").strip().lower() != "rows"
#: ``IR_TRITON_EW_PROGRAMS``: with the flat grid, halve the column block (down
#: to :data:`EW_MIN_BLOCK`, 4 warps) until the launch has at least this many
#: programs, so that one token is spread over more SMs (Inductor, silu_and_mul
#: 1 x 4096: 32 programs of 128 elements, one a thread; ours were 4 of 1024).
#: 0: always 1024-column blocks. 256 programs down to 256 columns won the H100
#: sweep (scripts/gpu/triton_exp.py, CUDA-graph us): gelu_and_mul 1 x 8192 1.31
#: (128 columns: 1.36), 16 x 8192 1.55 (1024 columns, 128 programs: 1.70).
EW_PROGRAMS: int = int(os.environ.get("IR_TRITON_EW_PROGRAMS", "256") or 0)
#: Largest column block of the element-wise kernels, 8 elements a thread with 4
#: warps (H100, CUDA-graph time, 2-D grid: silu_and_mul 1 x 4096 1.32 us against
#: 1.67 with 2048 / 4 warps; static quant 1024 x 4096 3.98 against 4.35).
EW_BLOCK = 1024
#: Smallest column block :data:`EW_PROGRAMS` shrinks to (two elements a thread:
#: one element a thread, 128 columns, was slower or tied at every swept shape).
EW_MIN_BLOCK = 256
_ew_meta: dict[int | tuple[int, int], tuple[int, int, int, bool, bool]] = {}


def ew_meta(n_cols: int, rows: int) -> tuple[int, int, int, bool, bool]:
    """``(BLOCK, column blocks, num_warps, FLAT, EVEN)`` of an element-wise
    kernel writing ``rows`` x ``n_cols`` (cached). ``FLAT``: launch a 1-D grid
    of ``rows * column blocks`` programs, else ``(rows, column blocks)``.
    ``EVEN``: the column block divides ``n_cols``, accesses need no mask. A
    symbolic ``rows`` (traced dynamic shape) gets the many-rows shape, with
    no guard on it.

    The flat grid stays within CUDA's 2**31 - 1 programs wherever the old
    grid's x dimension (the rows) did: with ``n_cols <= BLOCK`` it has one
    program a row; otherwise ``BLOCK >= 128`` and under 2 programs every
    ``BLOCK`` elements, so 2**31 programs need over 2**37 output elements
    (256 GiB in bf16)."""
    if n_cols.__class__ is not int:  # a SymInt under dynamic-shape tracing: specialise
        n_cols = int(n_cols)
    # Only fewer rows than EW_PROGRAMS shrink the block: those are keyed by
    # (columns, rows), every other count (or a symbolic one) by the columns alone.
    key: int | tuple[int, int] = (
        (n_cols, rows) if rows.__class__ is int and rows < EW_PROGRAMS and EW_FLAT else n_cols
    )
    meta = _ew_meta.get(key)
    if meta is None:
        few = key[1] if isinstance(key, tuple) else EW_PROGRAMS
        block = min(EW_BLOCK, triton.next_power_of_2(max(n_cols, 1)))
        warps = max(1, min(4, block // 256))
        if EW_FLAT:
            while block > EW_MIN_BLOCK and few * triton.cdiv(n_cols, block) < EW_PROGRAMS:
                block //= 2
                warps = 4
        even = EW_FLAT and n_cols % block == 0
        meta = _ew_meta[key] = (block, triton.cdiv(n_cols, block), warps, EW_FLAT, even)
    return meta


@triton.jit
def ew_tile(BLOCK: tl.constexpr, COL_BLOCKS: tl.constexpr, FLAT: tl.constexpr):
    """``(row, cols)`` of this program in an element-wise launch of
    :func:`ew_meta`'s shape: with ``FLAT`` a 1-D grid in memory order (column
    blocks of a row are neighbouring programs), else a 2-D (row, column
    block) grid. ``row`` is int64; ``cols`` the block's column indices."""
    if FLAT:
        pid = tl.program_id(0)
        row = (pid // COL_BLOCKS).to(tl.int64)  # a constant divisor: no integer division
        cols = (pid % COL_BLOCKS) * BLOCK + tl.arange(0, BLOCK)
    else:
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return row, cols


#: ``IR_TRITON_GROUP_PROGRAMS``: ``per_token_group_quant_fp8`` halves the groups
#: a program holds (down to one) until the launch has at least this many
#: programs (Inductor, 16 x 2048 in groups of 128: 256 programs of one group,
#: 2 warps, 3.04 us under ncu on an H100 against our 16 whole-row programs,
#: 3.52 us). Group maxima are exact in any order: the bits do not change.
#: 0: tiles of 2048 elements always (the layout before this change).
GROUP_PROGRAMS: int = int(os.environ.get("IR_TRITON_GROUP_PROGRAMS", "128") or 0)
#: ``IR_TRITON_QUANT_RCP``: the static and the dynamic per-token quant divide
#: by the scale through its reciprocal and one correction step
#: (:func:`div_by_scale`, the same bits) instead of ``div_rn`` an element, as
#: the fused norm + quant does by default (``IR_TRITON_NORM_RCP``).
QUANT_RCP: bool = _env_flag("IR_TRITON_QUANT_RCP", True)
#: ``IR_TRITON_DQ_WARPS="2048:8"``: num_warps per row block of
#: ``dynamic_per_token_scaled_fp8_quant`` (default :func:`row_warps`); its
#: maximum is exact in any order, so any value gives the same bits.
DQ_WARPS: dict[int, int] = _env_map("IR_TRITON_DQ_WARPS")


def quant_row_warps(block: int) -> int:
    """Warps of the norm + fp8 quant kernel (no residual): about 32 elements a
    thread, more work in flight a thread for a kernel with more arithmetic an
    element (measured on an H100: 8-15% faster than 16 a thread at >= 16384 rows)."""
    return max(1, min(16, block // 1024))


_norm_meta: dict[tuple[int, bool, bool], tuple[int, int, int, bool, bool, bool, bool]] = {}


def norm_meta(
    n_cols: int, quant_only: bool = False, plain: bool = False
) -> tuple[int, int, int, bool, bool, bool, bool]:
    """``(BLOCK, N_CHUNKS, num_warps, RCP, CLAMP, IMAX, W_EARLY)`` of the norm kernel for
    a row of ``n_cols`` (``quant_only``: the fp8 quant kernel without residual;
    ``plain``: rms_norm alone, no residual, no quant), cached; a function of the
    row length and the op alone, never of the rows."""
    if not isinstance(n_cols, int):  # a SymInt under dynamic-shape tracing: specialise
        n_cols = int(n_cols)
    key = (n_cols, quant_only, plain)
    meta = _norm_meta.get(key)
    if meta is None:
        block, chunks = row_block(n_cols)
        if quant_only:
            warps = NORM_QUANT_WARPS.get(block, quant_row_warps(block))
        elif block in NORM_WARPS:
            warps = NORM_WARPS[block]
        elif plain and block in NORM_PLAIN_WARPS:
            warps = NORM_PLAIN_WARPS[block]
        else:
            warps = row_warps(block)
        meta = _norm_meta[key] = (
            block,
            chunks,
            warps,
            NORM_RCP,
            FP8_CLAMP,
            NORM_IMAX,
            NORM_WEARLY,
        )
    return meta


@triton.jit
def _pow2(n):
    """``2.0 ** n`` in float32 for an int32 ``n`` in [-126, 127] (exact)."""
    return ((n + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def abs_max(v, AXIS: tl.constexpr):
    """``max |v|`` along ``AXIS``, NaN where an element is NaN, as torch's
    ``amax`` (``tl.max`` leaves NaN out, on the GPU and in the interpreter)."""
    return tl.reduce(tl.abs(v), AXIS, _max_nan)


@triton.jit
def _bits_max(v):
    """Largest element of a 1-D float32 ``v`` as raw bits with the sign cleared,
    NaN above inf above every finite value: an int32 max (one warp-wide
    ``redux`` instruction a step) instead of a NaN-propagating float max."""
    return tl.max(v.to(tl.int32, bitcast=True) & 0x7FFFFFFF, axis=0)


@triton.jit
def exact_sum(v, IMAX: tl.constexpr = False):
    """Sum of the non-negative float32 elements of the 1-D ``v``, the same bits
    whatever the register layout.

    ``tl.sum`` adds in an order set by the layout the compiler picks, and that
    layout follows what it knows about the pointers (vector width from 16-byte
    alignment, divisibility of strides): an aligned and a misaligned input, or
    a kernel compiled by Inductor for a dynamic shape (which may not know an
    input is aligned), would round differently. Here every element is turned
    into a 64-bit fixed-point integer relative to the largest one (47
    fraction bits below its leading bit; an exact power-of-two scaling, then
    truncation, element by element) and the integers are summed: integer
    addition is associative, so the order does not matter. The error is below
    ``len(v) * 2**-47`` of the largest element, far under float32 rounding.
    Inf or NaN anywhere gives that value.
    """
    if IMAX:  # the same maximum (up to a NaN's payload) from an integer reduction
        m_bits = _bits_max(v)
        m = m_bits.to(tl.float32, bitcast=True)
        biased = m_bits >> 23
    else:
        m = tl.reduce(v, 0, _max_nan)  # max is exact in any order
        biased = (m.to(tl.int32, bitcast=True) >> 23) & 0xFF
    e = tl.maximum(biased, 1) - 127  # m < 2**(e + 1); zeros and subnormals: e = -126
    e_hi = e >> 1
    e_lo = e - e_hi
    finite = biased != 255
    q = (v * _pow2(-e_hi)) * _pow2(47 - e_lo)  # < 2**48
    q = tl.where(finite, q, 0.0)
    total = tl.sum(q.to(tl.int64), axis=0).to(tl.float32)  # < 2**62: no overflow
    total = (total * _pow2(e_lo - 47)) * _pow2(e_hi)
    return tl.where(finite, total, m)


@triton.jit
def pair_sums(v, N: tl.constexpr):
    """``v[2i] + v[2i+1]``: ``N // 2`` elements of a 1-D ``v`` of ``N``."""
    a, b = tl.split(tl.reshape(v, [N // 2, 2]))
    return a + b


@triton.jit
def sum_squares(x, N: tl.constexpr, IMAX: tl.constexpr = False):
    """``sum(x * x)`` over the ``N`` (a power of two) elements of ``x``,
    bit-identical in every register layout: squares of neighbours summed in
    pairs, then in fours (held by one thread in the usual vectorised layouts;
    the first level an explicit fma, so no compiler contraction can differ),
    then :func:`exact_sum` (``IMAX``: its integer maximum)."""
    if N >= 4:
        a, b = tl.split(tl.reshape(x, [N // 2, 2]))
        total = exact_sum(pair_sums(tl.fma(a, a, b * b), N // 2), IMAX)
    elif N == 2:
        a, b = tl.split(tl.reshape(x, [1, 2]))
        total = exact_sum(tl.fma(a, a, b * b), IMAX)
    else:
        total = exact_sum(x * x, IMAX)
    return total


@triton.jit
def exact_sum_rows(v, IMAX: tl.constexpr = False):
    """:func:`exact_sum` of each row of the 2-D ``v`` (along axis 1), the
    same operations on each row as :func:`exact_sum` on that row alone, so
    the same bits: a ``[ROWS, BLOCK]`` tile reduces every row as a one-row
    program does."""
    if IMAX:
        m_bits = tl.max(v.to(tl.int32, bitcast=True) & 0x7FFFFFFF, axis=1)
        m = m_bits.to(tl.float32, bitcast=True)
        biased = m_bits >> 23
    else:
        m = tl.reduce(v, 1, _max_nan)
        biased = (m.to(tl.int32, bitcast=True) >> 23) & 0xFF
    e = tl.maximum(biased, 1) - 127
    e_hi = e >> 1
    e_lo = e - e_hi
    finite = biased != 255
    q = (v * _pow2(-e_hi)[:, None]) * _pow2(47 - e_lo)[:, None]
    q = tl.where(finite[:, None], q, 0.0)
    total = tl.sum(q.to(tl.int64), axis=1).to(tl.float32)
    total = (total * _pow2(e_lo - 47)) * _pow2(e_hi)
    return tl.where(finite, total, m)


@triton.jit
def sum_squares_rows(x, ROWS: tl.constexpr, N: tl.constexpr, IMAX: tl.constexpr = False):
    """:func:`sum_squares` of each row of the ``[ROWS, N]`` ``x`` (``N >= 4``,
    a power of two): the same pairs, fours and exact sum as one row alone."""
    a, b = tl.split(tl.reshape(x, [ROWS, N // 2, 2]))
    s = tl.fma(a, a, b * b)
    c, d = tl.split(tl.reshape(s, [ROWS, N // 4, 2]))
    return exact_sum_rows(c + d, IMAX)


@triton.jit
def round_to_e4m3(v):
    """Round float32 ``v`` (already within +-448) to the nearest e4m3
    value, ties to even, in float32 arithmetic."""
    a = tl.abs(v)
    bits = a.to(tl.int32, bitcast=True)
    exp = tl.maximum((bits >> 23) - 127, -6)  # e4m3 subnormals share the 2^-6 binade's ulp
    ulp = ((exp - 3 + 127) << 23).to(tl.float32, bitcast=True)  # 3 mantissa bits
    q = a / ulp  # exact: a power-of-two division, q < 16
    r = (q + 8388608.0) - 8388608.0  # round to an integer, ties to even (2^23 trick)
    vbits = v.to(tl.int32, bitcast=True)
    sign = (vbits >> 31) << 31  # arithmetic shift: the sign bit alone (keeps -0.0)
    out = (r * ulp).to(tl.int32, bitcast=True) | sign
    # NaN as 0x7ff00000 (with its sign): the interpreter's float -> e4m3
    # conversion keeps the exponent and the top three mantissa bits, so this
    # NaN becomes the e4m3 NaN 0x7f (0xff), as torch's cast; its quiet NaN
    # 0x7fc00000 would become 0x7c, the number 256.
    out = tl.where(a == a, out, 0x7FF00000 | sign)
    return out.to(tl.float32, bitcast=True)


@triton.jit
def to_fp8(v, EXACT: tl.constexpr, CLAMP: tl.constexpr = True):
    """Saturate float32 ``v`` to +-448 (NaN stays NaN), ready for ``.to(e4m3)``.

    ``CLAMP=False`` leaves the saturation to the conversion itself: on NVIDIA
    (sm_89+) Triton converts with ``cvt.rn.satfinite.e4m3x2.f32``, which maps
    out-of-range values and infinities to +-448 and keeps NaN, the same bits
    as the clamp. The interpreter (``EXACT``) always clamps."""
    if CLAMP or EXACT:
        v = tl.clamp(v, -448.0, 448.0, propagate_nan=tl.PropagateNan.ALL)
    if EXACT:
        v = round_to_e4m3(v)
    return v


@triton.jit
def div_by_scale(y, scale, inv_scale, RCP: tl.constexpr):
    """``y / scale`` rounded to nearest, as torch divides.

    ``RCP``: from ``inv_scale = div_rn(1, scale)`` (one division a program)
    by a product and one fma correction step (Markstein: ``q = y * inv``,
    ``r = fma(-q, scale, y)`` exact, ``q + r * inv`` rounded once), instead of
    a full IEEE division an element (reciprocal, refinement, and a range
    check with a slow-path branch). Products that overflow or are not finite
    keep the uncorrected product (they saturate or stay NaN in fp8); the
    correction is written with the residual negated so that a -0 quotient
    stays -0 (``q + r * inv`` turned it into +0: fp8 0x00 where torch gives
    0x80, found by ``test_quant_reciprocal_division_same_bits``; a guard
    ``q != 0`` cost an instruction an element); a
    ``scale`` outside [2**-120, 2**120] (reciprocal not normal) falls back
    to ``div_rn`` (a branch uniform over the program)."""
    if RCP:
        if (scale >= 7.52316384526264e-37) & (scale <= 1.329227995784916e36):  # 2**-120, 2**120
            q = y * inv_scale
            # The residual negated, r = q * scale - y (exact), and q - r * inv:
            # the same values as q + (y - q * scale) * inv wherever q is
            # nonzero, and a zero quotient keeps its sign for free (-0 - (+0)
            # is -0; the other form's -0 + (+0) gave +0 where torch gives -0).
            r = tl.fma(q, scale, -y)
            q = tl.where(tl.abs(q) < 3.0e38, tl.fma(-r, inv_scale, q), q)
        else:
            q = tl.div_rn(y, scale)
    else:
        q = tl.div_rn(y, scale)
    return q
