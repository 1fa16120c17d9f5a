"""Rotary position embedding (NeoX and GPT-J styles, partial rotary).

A 2D grid of (token, block of heads): the first blocks of a token cover the
query heads, the rest the key heads. Each program holds a ``[heads,
head_size]`` tile, loads every feature and its rotation partner (the other
half for NeoX, the neighbour of the pair for GPT-J), and writes the whole head
(features past the rotary dimension are copied) to fresh outputs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._runtime import define_op, launch, new_out

#: Elements per program (heads x padded head size).
_TILE = 2048


@triton.jit
def _rope_tile(
    src,
    dst,
    src_tok,
    dst_tok,
    src_head_stride,
    head0,
    n_heads,
    head_size,
    cos_row,
    sin_row,
    rot_dim,
    IS_NEOX: tl.constexpr,
    HEADS: tl.constexpr,
    DIM: tl.constexpr,
):
    h = head0 + tl.arange(0, HEADS)[:, None]
    d = tl.arange(0, DIM)[None, :]
    mask = (h < n_heads) & (d < head_size)
    half = rot_dim // 2
    in_rot = d < rot_dim
    if IS_NEOX:
        first = d < half
        partner = tl.where(first, d + half, d - half)
        freq = tl.where(first, d, d - half)
        sign = tl.where(first, -1.0, 1.0)
    else:
        even = (d % 2) == 0
        partner = tl.where(even, d + 1, d - 1)
        freq = d // 2
        sign = tl.where(even, -1.0, 1.0)
    src_heads = src + src_tok + h * src_head_stride
    x = tl.load(src_heads + d, mask=mask, other=0.0).to(tl.float32)
    rot_mask = mask & in_rot
    xp = tl.load(src_heads + partner, mask=rot_mask, other=0.0).to(tl.float32)
    c = tl.load(cos_row + freq, mask=in_rot, other=1.0).to(tl.float32)
    s = tl.load(sin_row + freq, mask=in_rot, other=0.0).to(tl.float32)
    y = tl.where(in_rot, x * c + (sign * xp) * s, x)
    tl.store(dst + dst_tok + h * head_size + d, y.to(dst.dtype.element_ty), mask=mask)


@triton.jit
def rotary_kernel(
    pos_ptr,
    q_ptr,
    k_ptr,
    cache_ptr,
    q_out_ptr,
    k_out_ptr,
    q_tok_stride,
    q_head_stride,
    k_tok_stride,
    k_head_stride,
    cache_stride,
    q_heads,
    k_heads,
    head_size,
    rot_dim,
    q_blocks,
    IS_NEOX: tl.constexpr,
    HEADS: tl.constexpr,
    DIM: tl.constexpr,
    HAS_KEY: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    pos = tl.load(pos_ptr + tok).to(tl.int64)
    cos_row = cache_ptr + pos * cache_stride
    sin_row = cos_row + rot_dim // 2
    if blk < q_blocks:
        _rope_tile(
            q_ptr,
            q_out_ptr,
            tok * q_tok_stride,
            tok * q_heads * head_size,
            q_head_stride,
            blk * HEADS,
            q_heads,
            head_size,
            cos_row,
            sin_row,
            rot_dim,
            IS_NEOX,
            HEADS,
            DIM,
        )
    elif HAS_KEY:  # without a key nothing touches k_out_ptr (not even in the compiled code)
        _rope_tile(
            k_ptr,
            k_out_ptr,
            tok * k_tok_stride,
            tok * k_heads * head_size,
            k_head_stride,
            (blk - q_blocks) * HEADS,
            k_heads,
            head_size,
            cos_row,
            sin_row,
            rot_dim,
            IS_NEOX,
            HEADS,
            DIM,
        )


_rope_meta: dict[tuple[int, int, int], tuple[int, int, int, int, int]] = {}


def _meta(head_size: int, qh: int, kh: int) -> tuple[int, int, int, int, int]:
    """``(DIM, HEADS, query blocks, key blocks, num_warps)`` for ``qh`` query
    and ``kh`` key heads of ``head_size``, cached: ``triton.next_power_of_2``
    and ``triton.cdiv`` are constexpr functions, 2-3 us of host time a call."""
    key = (head_size, qh, kh)
    meta = _rope_meta.get(key)
    if meta is None:
        dim = triton.next_power_of_2(head_size)
        heads_blk = min(max(1, _TILE // dim), triton.next_power_of_2(max(qh, kh)))
        warps = max(1, min(8, heads_blk * dim // 512))
        meta = (dim, heads_blk, triton.cdiv(qh, heads_blk), triton.cdiv(kh, heads_blk), warps)
        _rope_meta[key] = meta
    return meta


def _heads(t: torch.Tensor, head_size: int) -> tuple[int, int, int]:
    """``(heads, token stride, head stride)`` of a ``[T, H*D]`` or ``[T, H, D]`` tensor."""
    if t.dim() == 3:
        return t.shape[1], t.stride(0), t.stride(1)
    return t.shape[1] // head_size, t.stride(0), head_size


def rotary_embedding(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor | None,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
    direct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotated copies of ``query`` and ``key`` (contiguous, same shapes)."""
    q_out = new_out(query, None, direct)
    k_out = None if key is None else new_out(key, None, direct)
    tokens = positions.numel()
    if isinstance(tokens, int) and tokens == 0:
        return q_out, k_out
    qh, q_ts, q_hs = _heads(query, head_size)
    if key is not None and k_out is not None:
        kh, k_ts, k_hs = _heads(key, head_size)
        k_in, k_o = key, k_out
    else:
        # No key: no key blocks (k_blocks == 0) and HAS_KEY=False compiles the
        # key branch out. The pointers are placeholders; traced calls get a
        # separate empty output so that no argument the kernel may write
        # aliases q_out (functionalization clones each written argument and
        # copies every clone back: an aliased, unwritten clone would overwrite
        # the rotated query).
        kh, k_ts, k_hs, k_in = 0, 0, 0, query
        k_o = q_out if direct else q_out.new_empty(0)
    # int(): sizes that are SymInts under dynamic-shape tracing are specialised
    dim, heads_blk, q_blocks, k_blocks, warps = _meta(int(head_size), int(qh), int(kh))
    launch(
        rotary_kernel,
        (tokens, q_blocks + k_blocks),
        direct,
        positions,
        query,
        k_in,
        cos_sin_cache,
        q_out,
        k_o,
        q_ts,
        q_hs,
        k_ts,
        k_hs,
        cos_sin_cache.stride(0),
        qh,
        kh,
        head_size,
        cos_sin_cache.shape[-1],
        q_blocks,
        IS_NEOX=is_neox,
        HEADS=heads_blk,
        DIM=dim,
        HAS_KEY=key is not None,
        num_warps=warps,
    )
    return q_out, k_out


@define_op("rotary_embedding")
def rotary_embedding_op(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor | None,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch schemas have no optional returns: without a key, the second output is empty."""
    q, k = rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)
    return q, (k if k is not None else query.new_empty(0))
