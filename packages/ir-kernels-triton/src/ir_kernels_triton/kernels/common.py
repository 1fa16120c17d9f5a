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
def tree_sum(v, N: tl.constexpr):
    """Sum of the ``N`` (a power of two) elements of the 1-D ``v`` as a fixed
    pairwise tree: level by level, element ``2i`` plus element ``2i+1``.

    ``tl.sum`` adds in an order set by the register layout the compiler picks,
    and that layout follows what it knows about the pointers (vector width
    from 16-byte alignment, divisibility of strides): an aligned and a
    misaligned input, or a kernel compiled by Inductor for a dynamic shape
    (which may not know an input is aligned) would round differently. Each
    level here adds exactly two numbers, so the result is the same whatever
    the layout.
    """
    for _ in tl.static_range(N.bit_length() - 1):
        a, b = tl.split(tl.reshape(v, [v.shape[0] // 2, 2]))
        v = a + b
    return tl.sum(v, axis=0)  # one element left: exact


@triton.jit
def sum_squares(x, N: tl.constexpr):
    """``sum(x * x)`` over the ``N`` (a power of two) elements of ``x`` in a
    layout-independent order: the first level is an explicit fma (so no
    compiler contraction of a multiply into an add can differ between
    layouts), the rest :func:`tree_sum`."""
    if N == 1:
        return tl.sum(x * x, axis=0)
    a, b = tl.split(tl.reshape(x, [N // 2, 2]))
    return tree_sum(tl.fma(a, a, b * b), N // 2)


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
