"""Rotary position embedding: ``rotary_embedding``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..op import register_op
from ._inputs import activation


def _rotate(t: Tensor, cos: Tensor, sin: Tensor, head_size: int, is_neox: bool) -> Tensor:
    shape, dtype = t.shape, t.dtype
    rotary_dim = 2 * cos.shape[-1]
    heads = t.shape[-2] if (t.dim() >= 3 and t.shape[-1] == head_size) else t.shape[-1] // head_size
    t = t.reshape(cos.shape[0], heads, head_size).float()
    rot, rest = t[..., :rotary_dim], t[..., rotary_dim:]
    c, s = cos.unsqueeze(1), sin.unsqueeze(1)
    if is_neox:  # halves rotate together
        x1, x2 = rot.chunk(2, dim=-1)
        out = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)
    else:  # GPT-J: interleaved pairs
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
        out = torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).flatten(-2)
    return torch.cat((out, rest), dim=-1).to(dtype).reshape(shape)


@register_op(activations=("query", "key"), allow_inplace=True, tags=("rotary",))
def rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    """Rotate the first ``rotary_dim = cos_sin_cache.shape[-1]`` features of each
    head of ``query`` (and ``key``) by the angles of ``positions``.

    ``query``/``key`` are ``[tokens, heads * head_size]`` (or
    ``[tokens, heads, head_size]``); ``cos_sin_cache`` is
    ``[max_position, rotary_dim]``, cos in the first half, sin in the second.
    ``is_neox`` rotates the two halves of the rotary part (NeoX style);
    otherwise interleaved pairs (GPT-J style). A ``rotary_dim`` smaller than
    ``head_size`` leaves the rest of each head unchanged (partial rotary).
    Computed in float32, cast back.
    """
    cos_sin = cos_sin_cache.index_select(0, positions.flatten()).float()
    cos, sin = cos_sin.chunk(2, dim=-1)
    q = _rotate(query, cos, sin, head_size, is_neox)
    k = None if key is None else _rotate(key, cos, sin, head_size, is_neox)
    return q, k


def cos_sin_cache(
    max_position: int,
    rotary_dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The standard RoPE cache ``[max_position, rotary_dim]`` (cos | sin)."""
    inv_freq = 1.0 / (
        base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64, device=device) / rotary_dim)
    )
    freqs = torch.outer(torch.arange(max_position, dtype=torch.float64, device=device), inv_freq)
    return torch.cat((freqs.cos(), freqs.sin()), dim=-1).to(dtype)


@rotary_embedding.register_input_generator
def _rotary_inputs(
    tokens: int,
    hidden: int,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    is_neox: bool = True,
    partial: bool = False,
    with_key: bool = True,
    head_size: int = 64,
) -> tuple[object, ...]:
    heads = max(1, hidden // head_size)
    kv_heads = max(1, heads // 4)
    rotary_dim = head_size // 2 if partial else head_size
    max_position = 4096
    positions = torch.randint(0, max_position, (tokens,), device=device)
    query = activation(tokens, heads * head_size, dtype, device)
    key = activation(tokens, kv_heads * head_size, dtype, device) if with_key else None
    cache = cos_sin_cache(max_position, rotary_dim, dtype=dtype, device=device)
    return (positions, query, key, head_size, cache, is_neox)


rotary_embedding.test_variants = [
    {},
    {"is_neox": False},
    {"partial": True},
    {"with_key": False},
    {"head_size": 128},
]


def _rotary_bytes(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> int:
    qk = query.numel() * query.element_size() + (
        0 if key is None else key.numel() * key.element_size()
    )
    rows = positions.numel() * cos_sin_cache.shape[-1] * cos_sin_cache.element_size()
    return 2 * qk + rows + positions.numel() * positions.element_size()


rotary_embedding.bytes_moved = _rotary_bytes
