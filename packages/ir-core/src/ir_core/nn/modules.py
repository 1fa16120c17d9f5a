"""``torch.nn`` building blocks for engines, each calling one IR op.

Every module is a thin shell: its ``forward`` calls ``ir_core.ops.<op>`` on
the tensor as it comes (the ops work over the last dimension with any
leading dimensions; a provider that needs another layout says so in its
``supports_args``). No reshape is inserted, so compiler passes written against
IR ops (e.g. residual add + ``rms_norm`` -> ``fused_add_rms_norm``) see the
op right after its producer. Which implementation runs is the
dispatcher's choice (priority, ``supports_args``, batch-invariant mode), in
eager mode and under ``torch.compile``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import ops
from ..ops.rotary import cos_sin_cache

__all__ = ["FusedAddRMSNorm", "GeluAndMul", "RMSNorm", "RotaryEmbedding", "SiluAndMul"]


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension (``ir.ops.rms_norm``).

    ``forward(x)`` returns ``rms_norm(x)``; ``forward(x, residual)`` adds the
    residual first and returns ``(rms_norm(x + residual), x + residual)``
    through ``ir.ops.fused_add_rms_norm``.

    Args:
        hidden_size: size of the normalised (last) dimension.
        eps: the epsilon added to the mean of squares.
        weight: an existing parameter to share (e.g. a Hugging Face module's);
            default: a new parameter of ones, or none when ``has_weight`` is False.
        has_weight: whether the norm has a learned scale at all.
        variance_size: average the squares over the first ``variance_size``
            features only (default: all).
    """

    def __init__(
        self,
        hidden_size: int,
        eps: float = 1e-6,
        *,
        weight: nn.Parameter | None = None,
        has_weight: bool = True,
        variance_size: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.eps = float(eps)
        self.variance_size = variance_size
        if weight is not None:
            if tuple(weight.shape) != (self.hidden_size,):
                raise ValueError(
                    f"RMSNorm: weight has shape {tuple(weight.shape)}, "
                    f"expected ({self.hidden_size},)"
                )
            self.weight: nn.Parameter | None = weight
        elif has_weight:
            self.weight = nn.Parameter(torch.ones(self.hidden_size, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if residual is None:
            y: Tensor = ops.rms_norm(x, self.weight, self.eps, self.variance_size)
            return y
        out, res = ops.fused_add_rms_norm(x, residual, self.weight, self.eps, self.variance_size)
        return out, res

    def extra_repr(self) -> str:
        vs = "" if self.variance_size is None else f", variance_size={self.variance_size}"
        return f"{self.hidden_size}, eps={self.eps}{vs}, weight={self.weight is not None}"


class FusedAddRMSNorm(RMSNorm):
    """Residual add then RMS norm (``ir.ops.fused_add_rms_norm``):
    ``forward(x, residual) -> (rms_norm(x + residual), x + residual)``."""

    def forward(self, x: Tensor, residual: Tensor | None = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if residual is None:
            raise TypeError("FusedAddRMSNorm.forward needs a residual; use RMSNorm without one")
        out = super().forward(x, residual)
        assert isinstance(out, tuple)
        return out


class SiluAndMul(nn.Module):
    """``silu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2`` (``ir.ops.silu_and_mul``)."""

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = ops.silu_and_mul(x)
        return out


class GeluAndMul(nn.Module):
    """``gelu(x[..., :d], approximate) * x[..., d:]`` (``ir.ops.gelu_and_mul``);
    ``approximate`` is ``"none"`` or ``"tanh"``."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(
                f"GeluAndMul: approximate must be 'none' or 'tanh', got {approximate!r}"
            )
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = ops.gelu_and_mul(x, self.approximate)
        return out

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class RotaryEmbedding(nn.Module):
    """Rotary position embedding with a precomputed cos/sin cache
    (``ir.ops.rotary_embedding``).

    ``forward(positions, query, key)`` rotates ``query`` ``[tokens, heads *
    head_size]`` (or ``[tokens, heads, head_size]``) and ``key`` by the angles
    of ``positions`` ``[tokens]`` and returns ``(query, key)``.

    Args:
        head_size: features per head.
        rotary_dim: features rotated per head (``<= head_size``; partial rotary
            leaves the rest unchanged). Default: ``head_size``.
        max_position: rows of the cache (largest position + 1).
        base: the RoPE base (theta).
        is_neox: rotate the two halves (NeoX / Llama style) rather than
            interleaved pairs (GPT-J style).
        cache: use this ``[max_position, rotary_dim]`` cache (cos | sin)
            instead of computing the standard one (scaled RoPE variants).
    """

    cos_sin_cache: Tensor

    def __init__(
        self,
        head_size: int,
        rotary_dim: int | None = None,
        max_position: int = 4096,
        base: float = 10000.0,
        is_neox: bool = True,
        *,
        cache: Tensor | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.head_size = int(head_size)
        self.rotary_dim = int(rotary_dim if rotary_dim is not None else head_size)
        if self.rotary_dim > self.head_size or self.rotary_dim % 2:
            raise ValueError(
                f"RotaryEmbedding: rotary_dim {self.rotary_dim} must be even and "
                f"<= head_size {self.head_size}"
            )
        self.is_neox = bool(is_neox)
        if cache is None:
            cache = cos_sin_cache(
                max_position,
                self.rotary_dim,
                base,
                dtype=dtype,
                device=device if device is not None else "cpu",
            )
        elif cache.dim() != 2 or cache.shape[-1] != self.rotary_dim:
            raise ValueError(
                f"RotaryEmbedding: cache has shape {tuple(cache.shape)}, expected "
                f"[max_position, {self.rotary_dim}]"
            )
        self.max_position = int(cache.shape[0])
        self.register_buffer("cos_sin_cache", cache, persistent=False)

    def forward(
        self, positions: Tensor, query: Tensor, key: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        q, k = ops.rotary_embedding(
            positions, query, key, self.head_size, self.cos_sin_cache, self.is_neox
        )
        return q, k

    def extra_repr(self) -> str:
        return (
            f"head_size={self.head_size}, rotary_dim={self.rotary_dim}, "
            f"max_position={self.max_position}, is_neox={self.is_neox}"
        )
