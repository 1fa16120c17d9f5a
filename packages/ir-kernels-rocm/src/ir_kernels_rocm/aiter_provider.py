"""Provider ``aiter``: AMD's AITER kernels for the ops it has.

Wrapped (AITER's public Python names, looked up on the ``aiter`` module when
first needed): ``rmsnorm2d_fwd``, ``rmsnorm2d_fwd_with_add``,
``silu_and_mul``, ``gelu_and_mul``, ``gelu_tanh_and_mul``,
``static_per_tensor_quant``, ``dynamic_per_token_scaled_quant`` and
``per_group_quant_hip``. Rotary embedding is not wrapped: AITER's rope
kernels take separate cos/sin caches in another layout.

Supported only on a ROCm torch with an AMD GPU where ``import aiter``
succeeds and the function exists. The fp8 ops need AITER's fp8 type to be
``float8_e4m3fn`` (the ops' output type): gfx950 and later; on gfx942 AITER
quantises to ``float8_e4m3fnuz``, so they are unsupported there.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ir_core import ops

from . import arch
from ._gate import Gate

logger = logging.getLogger(__name__)

PROVIDER = "aiter"
HALF = (torch.float16, torch.bfloat16)
FP8 = torch.float8_e4m3fn


class _Aiter:
    lock = threading.Lock()
    module: Any = None
    error: str | None = None
    tried = False


def aiter_module() -> Any:
    """The imported ``aiter`` module, or ``None`` (the reason in :func:`aiter_reason`)."""
    if not _Aiter.tried:
        with _Aiter.lock:
            if not _Aiter.tried:
                if importlib.util.find_spec("aiter") is None:
                    _Aiter.error = "AITER is not installed (no module named 'aiter')"
                else:
                    try:
                        _Aiter.module = importlib.import_module("aiter")
                    except Exception as exc:
                        _Aiter.error = f"import aiter failed: {type(exc).__name__}: {exc}"
                        logger.warning(
                            "ir-kernels-rocm: %s; the aiter provider is unsupported", _Aiter.error
                        )
                _Aiter.tried = True
    return _Aiter.module


def aiter_reason(*names: str, fp8: bool = False) -> str | None:
    """Why AITER's ``names`` cannot run here (``None``: they can)."""
    why = arch.rocm_unavailable_reason()
    if why is not None:
        return why
    mod = aiter_module()
    if mod is None:
        return _Aiter.error
    missing = [n for n in names if not callable(getattr(mod, n, None))]
    if missing:
        version = getattr(mod, "__version__", "unknown version")
        return f"aiter ({version}) has no {', '.join(missing)}"
    if fp8:
        fp8_type = getattr(getattr(mod, "dtypes", None), "fp8", None)
        if fp8_type is not FP8:
            return (
                f"AITER's fp8 type on this GPU is {fp8_type}, not torch.float8_e4m3fn "
                "(the ops' output type)"
            )
    return None


def _fn(name: str) -> Callable[..., Any]:
    return getattr(_Aiter.module, name)  # type: ignore[no-any-return]


def _gate(*names: str, fp8: bool = False) -> Gate:
    return Gate(lambda: aiter_reason(*names, fp8=fp8))


#: The ``supported`` gate of each registered implementation, by op name.
GATES: dict[str, Gate] = {}


def _provide(op: Any, gate: Gate, fn: Any, **register_kwargs: Any) -> None:
    """Register ``fn`` as this provider's implementation of ``op``, behind ``gate``."""
    gate.attach(op.register_impl(PROVIDER, supported=gate, **register_kwargs)(fn))
    GATES[op.name] = gate


def _half_2d_ok(x: Tensor) -> bool:
    # AITER's launchers are not known to accept empty inputs: leave those to others.
    return x.is_cuda and x.dtype in HALF and x.dim() >= 1 and x.numel() > 0 and x.is_contiguous()


def _rows(x: Tensor) -> Tensor:
    return x.reshape(-1, x.shape[-1])


# ------------------------------------------------------------ norms


def _norm_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return (
        _half_2d_ok(x)
        and weight is not None
        and weight.is_cuda
        and weight.dtype == x.dtype
        and weight.dim() == 1
        and weight.numel() == x.shape[-1]
        and weight.is_contiguous()
        and (variance_size is None or variance_size == x.shape[-1])
    )


def rms_norm_aiter(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    out = _fn("rmsnorm2d_fwd")(_rows(x), weight, epsilon)
    return out.view(x.shape)  # type: ignore[no-any-return]


_provide(ops.rms_norm, _gate("rmsnorm2d_fwd"), rms_norm_aiter, supports_args=_norm_args)


def _add_norm_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        _norm_args(x, weight, epsilon, variance_size)
        and x_residual.dtype == x.dtype
        and x_residual.shape == x.shape
        and x_residual.is_contiguous()
        and x_residual.is_cuda
    )


def fused_add_rms_norm_aiter(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    out, residual = torch.empty_like(x), torch.empty_like(x)
    _fn("rmsnorm2d_fwd_with_add")(
        _rows(out), _rows(x), _rows(x_residual), _rows(residual), weight, epsilon
    )
    return out, residual


_provide(
    ops.fused_add_rms_norm,
    _gate("rmsnorm2d_fwd_with_add"),
    fused_add_rms_norm_aiter,
    supports_args=_add_norm_args,
)

# ------------------------------------------------------------ activations


def _act(name: str, x: Tensor) -> Tensor:
    out = torch.empty((*x.shape[:-1], x.shape[-1] // 2), dtype=x.dtype, device=x.device)
    _fn(name)(_rows(out), _rows(x))
    return out


def _silu_args(x: Tensor) -> bool:
    return _half_2d_ok(x) and x.shape[-1] % 2 == 0


def silu_and_mul_aiter(x: Tensor) -> Tensor:
    return _act("silu_and_mul", x)


_provide(ops.silu_and_mul, _gate("silu_and_mul"), silu_and_mul_aiter, supports_args=_silu_args)


def _gelu_args(x: Tensor, approximate: str = "none") -> bool:
    return _silu_args(x) and approximate in ("none", "tanh")


def gelu_and_mul_aiter(x: Tensor, approximate: str = "none") -> Tensor:
    return _act("gelu_tanh_and_mul" if approximate == "tanh" else "gelu_and_mul", x)


_provide(
    ops.gelu_and_mul,
    _gate("gelu_and_mul", "gelu_tanh_and_mul"),
    gelu_and_mul_aiter,
    supports_args=_gelu_args,
)

# ------------------------------------------------------------ fp8 quantisation


def _scale_ok(scale: Tensor | None) -> bool:
    return scale is None or (scale.is_cuda and scale.dtype == torch.float32 and scale.numel() == 1)


def _static_args(x: Tensor, scale: Tensor) -> bool:
    return _half_2d_ok(x) and _scale_ok(scale)


def static_scaled_fp8_quant_aiter(x: Tensor, scale: Tensor) -> Tensor:
    out = torch.empty(x.shape, dtype=FP8, device=x.device)
    _fn("static_per_tensor_quant")(_rows(out), _rows(x), scale.reshape(1))
    return out


_provide(
    ops.static_scaled_fp8_quant,
    _gate("static_per_tensor_quant", fp8=True),
    static_scaled_fp8_quant_aiter,
    supports_args=_static_args,
)


def _dynamic_args(x: Tensor, scale_ub: Tensor | None = None) -> bool:
    return _half_2d_ok(x) and _scale_ok(scale_ub)


def dynamic_per_token_scaled_fp8_quant_aiter(
    x: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    out = torch.empty(x.shape, dtype=FP8, device=x.device)
    scales = torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device)
    _fn("dynamic_per_token_scaled_quant")(_rows(out), _rows(x), scales.view(-1, 1), scale_ub)
    return out, scales


_provide(
    ops.dynamic_per_token_scaled_fp8_quant,
    _gate("dynamic_per_token_scaled_quant", fp8=True),
    dynamic_per_token_scaled_fp8_quant_aiter,
    supports_args=_dynamic_args,
)


def _group_args(x: Tensor, group_size: int) -> bool:
    return _half_2d_ok(x) and group_size in (32, 64, 128) and x.shape[-1] % group_size == 0


def per_token_group_quant_fp8_aiter(x: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    y, scales = _fn("per_group_quant_hip")(_rows(x), quant_dtype=FP8, group_size=group_size)
    return y.view(x.shape), scales.view(*x.shape[:-1], x.shape[-1] // group_size)


_provide(
    ops.per_token_group_quant_fp8,
    _gate("per_group_quant_hip", fp8=True),
    per_token_group_quant_fp8_aiter,
    supports_args=_group_args,
)
