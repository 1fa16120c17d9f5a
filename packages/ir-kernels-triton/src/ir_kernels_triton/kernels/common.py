"""Helpers shared by the kernels: launch shapes and the fp8 conversion."""

from __future__ import annotations

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


@triton.jit
def _pow2(n):
    """``2.0 ** n`` in float32 for an int32 ``n`` in [-126, 127] (exact)."""
    return ((n + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def exact_sum(v):
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
def sum_squares(x, N: tl.constexpr):
    """``sum(x * x)`` over the ``N`` (a power of two) elements of ``x``,
    bit-identical in every register layout: squares of neighbours summed in
    pairs, then in fours (held by one thread in the usual vectorised layouts;
    the first level an explicit fma, so no compiler contraction can differ),
    then :func:`exact_sum`."""
    if N >= 4:
        a, b = tl.split(tl.reshape(x, [N // 2, 2]))
        total = exact_sum(pair_sums(tl.fma(a, a, b * b), N // 2))
    elif N == 2:
        a, b = tl.split(tl.reshape(x, [1, 2]))
        total = exact_sum(tl.fma(a, a, b * b))
    else:
        total = exact_sum(x * x)
    return total


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
    return out.to(tl.float32, bitcast=True)


@triton.jit
def to_fp8(v, EXACT: tl.constexpr):
    """Saturate float32 ``v`` to +-448 (NaN stays NaN), ready for ``.to(e4m3)``."""
    v = tl.clamp(v, -448.0, 448.0, propagate_nan=tl.PropagateNan.ALL)
    if EXACT:
        v = round_to_e4m3(v)
    return v
