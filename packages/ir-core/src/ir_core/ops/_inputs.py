"""Random inputs shared by the ops' input generators (never zeros: zeros hide
unwritten outputs and wrong indexing)."""

from __future__ import annotations

import torch


def activation(
    tokens: int, hidden: int, dtype: torch.dtype, device: torch.device | str, scale: float = 1.0
) -> torch.Tensor:
    """A ``[tokens, hidden]`` activation drawn from N(0, scale^2)."""
    return (torch.randn(tokens, hidden, device=device, dtype=torch.float32) * scale).to(dtype)


def weight_like(hidden: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """A norm weight around 1 (as trained models have), not exactly 1."""
    return (1.0 + 0.1 * torch.randn(hidden, device=device, dtype=torch.float32)).to(dtype)
