"""``ir_core.nn``: ``torch.nn`` modules that call IR ops, and
:mod:`ir_core.nn.hf`, which moves a Hugging Face ``transformers`` model onto
them (``transformers`` is imported only there, and only when used).

    from ir_core import nn as irnn
    norm = irnn.RMSNorm(4096, eps=1e-6)
    y = norm(x)                      # ir.ops.rms_norm
    y, residual = norm(x, residual)  # ir.ops.fused_add_rms_norm
"""

from __future__ import annotations

from .modules import FusedAddRMSNorm, GeluAndMul, RMSNorm, RotaryEmbedding, SiluAndMul

__all__ = ["FusedAddRMSNorm", "GeluAndMul", "RMSNorm", "RotaryEmbedding", "SiluAndMul"]
