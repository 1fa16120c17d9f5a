"""Provider ``xpu``: SYCL kernels for Intel GPUs (see :mod:`ir_kernels_xpu.build`).

Implemented: ``rms_norm``, ``fused_add_rms_norm``, ``silu_and_mul`` and
``gelu_and_mul``. Importing this module registers them and builds nothing;
the first dispatch that considers one builds the extension. Without an
Intel GPU they are unsupported and ``explain`` says why.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ir_core import ops

from . import build
from ._gate import Gate

logger = logging.getLogger(__name__)

PROVIDER = "xpu"
FLOATS = (torch.float32, torch.float16, torch.bfloat16)
_ACT = {"silu": 0, "none": 1, "tanh": 2}

#: The ``supported`` gate of each registered implementation, by op name.
GATES: dict[str, Gate] = {}


def _register(impl: Any, gate: Gate) -> None:
    gate.attach(impl)
    GATES[impl.op.name] = gate


def _gate() -> Gate:
    return Gate(build.unavailable_reason)


def _lib() -> Any:
    return torch.ops.ir_xpu


def _xpu_float(x: Tensor) -> bool:
    return x.device.type == "xpu" and x.dtype in FLOATS and x.dim() >= 1


def _norm_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    weight_ok = weight is None or (
        weight.device == x.device
        and weight.dtype == x.dtype
        and weight.dim() == 1
        and weight.numel() == x.shape[-1]
    )
    return (
        _xpu_float(x) and weight_ok and (variance_size is None or 0 < variance_size <= x.shape[-1])
    )


def rms_norm_xpu(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    _lib().rms_norm(out, x, weight, epsilon, variance_size or 0)
    return out


_g = _gate()
_register(
    ops.rms_norm.register_impl(
        PROVIDER, supported=_g, supports_args=_norm_args, batch_invariant=True
    )(rms_norm_xpu),
    _g,
)


def _add_norm_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        _norm_args(x, weight, epsilon, variance_size)
        and x_residual.device == x.device
        and x_residual.dtype == x.dtype
        and x_residual.shape == x.shape
    )


def fused_add_rms_norm_xpu(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    residual = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    _lib().fused_add_rms_norm(out, residual, x, x_residual, weight, epsilon, variance_size or 0)
    return out, residual


_g = _gate()
_register(
    ops.fused_add_rms_norm.register_impl(
        PROVIDER, supported=_g, supports_args=_add_norm_args, batch_invariant=True
    )(fused_add_rms_norm_xpu),
    _g,
)


def _act_out(x: Tensor) -> Tensor:
    return torch.empty((*x.shape[:-1], x.shape[-1] // 2), dtype=x.dtype, device=x.device)


def _silu_args(x: Tensor) -> bool:
    return _xpu_float(x) and x.shape[-1] % 2 == 0


def silu_and_mul_xpu(x: Tensor) -> Tensor:
    out = _act_out(x)
    _lib().act_and_mul(out, x, _ACT["silu"])
    return out


_g = _gate()
_register(
    ops.silu_and_mul.register_impl(PROVIDER, supported=_g, supports_args=_silu_args)(
        silu_and_mul_xpu
    ),
    _g,
)


def _gelu_args(x: Tensor, approximate: str = "none") -> bool:
    return _silu_args(x) and approximate in ("none", "tanh")


def gelu_and_mul_xpu(x: Tensor, approximate: str = "none") -> Tensor:
    out = _act_out(x)
    _lib().act_and_mul(out, x, _ACT[approximate])
    return out


_g = _gate()
_register(
    ops.gelu_and_mul.register_impl(PROVIDER, supported=_g, supports_args=_gelu_args)(
        gelu_and_mul_xpu
    ),
    _g,
)
del _g
