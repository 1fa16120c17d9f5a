"""Fake (meta) kernels of the ``ir_cuda`` ops, registered once the library is
loaded, so ``torch.compile``, ``make_fx`` and fake tensors can trace calls to
``torch.ops.ir_cuda.*`` (the shapes and dtypes the C++ kernels produce)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

_F = TypeVar("_F", bound=Callable[..., Any])

_registered = False
FP8 = torch.float8_e4m3fn


def _fp8_like(x: Tensor) -> Tensor:
    return x.new_empty(x.shape, dtype=FP8)


def _last(x: Tensor, size: int) -> list[int]:
    return [*x.shape[:-1], size]


def register() -> None:
    """Register every fake kernel (idempotent)."""
    global _registered
    if _registered:
        return

    def fake(qualname: str) -> Callable[[_F], _F]:
        def decorate(fn: _F) -> _F:
            torch.library.register_fake(qualname, fn)
            return fn

        return decorate

    @fake("ir_cuda::rms_norm")
    def _rms_norm(
        x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None
    ) -> Tensor:
        return x.new_empty(x.shape)

    @fake("ir_cuda::fused_add_rms_norm")
    def _fused_add_rms_norm(
        x: Tensor,
        residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        variance_size: int | None,
    ) -> tuple[Tensor, Tensor]:
        return x.new_empty(x.shape), x.new_empty(x.shape)

    @fake("ir_cuda::fused_add_rms_norm_")
    def _fused_add_rms_norm_(
        x: Tensor,
        residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        variance_size: int | None,
    ) -> None:
        return None

    @fake("ir_cuda::rms_norm_static_fp8_quant")
    def _rms_norm_quant(x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor) -> Tensor:
        return _fp8_like(x)

    @fake("ir_cuda::fused_add_rms_norm_static_fp8_quant")
    def _fused_add_quant(
        x: Tensor, residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
    ) -> tuple[Tensor, Tensor]:
        return _fp8_like(x), x.new_empty(x.shape)

    @fake("ir_cuda::fused_add_rms_norm_static_fp8_quant_")
    def _fused_add_quant_(
        x: Tensor, residual: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
    ) -> Tensor:
        return _fp8_like(x)

    @fake("ir_cuda::silu_and_mul")
    def _silu(x: Tensor) -> Tensor:
        return x.new_empty(_last(x, x.shape[-1] // 2))

    @fake("ir_cuda::gelu_and_mul")
    def _gelu(x: Tensor, approximate: str) -> Tensor:
        return x.new_empty(_last(x, x.shape[-1] // 2))

    @fake("ir_cuda::rotary_embedding")
    def _rotary(
        positions: Tensor,
        query: Tensor,
        key: Tensor | None,
        head_size: int,
        cos_sin_cache: Tensor,
        is_neox: bool,
    ) -> tuple[Tensor, Tensor | None]:
        return query.new_empty(query.shape), None if key is None else key.new_empty(key.shape)

    @fake("ir_cuda::rotary_embedding_")
    def _rotary_(
        positions: Tensor,
        query: Tensor,
        key: Tensor | None,
        head_size: int,
        cos_sin_cache: Tensor,
        is_neox: bool,
    ) -> None:
        return None

    @fake("ir_cuda::static_scaled_fp8_quant")
    def _static(x: Tensor, scale: Tensor) -> Tensor:
        return _fp8_like(x)

    @fake("ir_cuda::dynamic_per_token_scaled_fp8_quant")
    def _dynamic(x: Tensor, scale_ub: Tensor | None) -> tuple[Tensor, Tensor]:
        return _fp8_like(x), x.new_empty(_last(x, 1), dtype=torch.float32)

    @fake("ir_cuda::per_token_group_quant_fp8")
    def _group(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
        return _fp8_like(x), x.new_empty(_last(x, x.shape[-1] // group_size), dtype=torch.float32)

    _registered = True
