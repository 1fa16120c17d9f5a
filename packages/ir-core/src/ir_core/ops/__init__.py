"""The IR ops (the dialect). Each is an :class:`ir_core.op.IrOp`.

Built-in ops are attributes of this module; ops registered later (out of
tree) are reachable the same way, ``ir_core.ops.<name>``.
"""

from __future__ import annotations

from typing import Any

from .. import registry
from ..op import IrOp
from .activation import gelu_and_mul, silu_and_mul
from .fused_quant import fused_add_rms_norm_static_fp8_quant, rms_norm_static_fp8_quant
from .layernorm import fused_add_rms_norm, rms_norm
from .quant import (
    dynamic_per_token_scaled_fp8_quant,
    per_token_group_quant_fp8,
    static_scaled_fp8_quant,
)
from .rotary import rotary_embedding

__all__ = [
    "dynamic_per_token_scaled_fp8_quant",
    "fused_add_rms_norm",
    "fused_add_rms_norm_static_fp8_quant",
    "gelu_and_mul",
    "per_token_group_quant_fp8",
    "rms_norm",
    "rms_norm_static_fp8_quant",
    "rotary_embedding",
    "silu_and_mul",
    "static_scaled_fp8_quant",
]


def __getattr__(name: str) -> IrOp:  # ops registered after import (out of tree)
    if name.startswith("__"):
        raise AttributeError(name)
    return registry.get(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(registry.ops()))


def all_ops() -> dict[str, Any]:
    """Every registered op by name (built in and out of tree)."""
    return registry.ops()
