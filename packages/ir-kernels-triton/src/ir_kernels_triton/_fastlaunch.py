"""A lean eager launcher: reuse the compiled kernel Triton returned.

``kernel[grid](*args)`` goes through ``JITFunction.run`` on every call (argument
binding, specialisation, cache-key hashing, option parsing): tens of
microseconds of host time, more than the kernel itself at small token counts.
Here the first launch for a given *specialisation key* goes through Triton as
usual and the :class:`~triton.compiler.CompiledKernel` it returns is kept;
later launches with the same key call it directly (``compiled[grid](*args)``).

The key is at least as fine as Triton's own specialisation: per tensor its
dtype and whether its data pointer is 16-byte aligned; every other argument
(ints, bools, constexprs, launch options) by exact type and value; the device.
So a cached kernel is only reused where Triton would pick the same one.

Used only on the eager fast path (never under tracing: the caller decides),
never under the interpreter, on NVIDIA GPUs only (ROCm kernels also
specialise on buffer sizes), and only with Triton >= 3.3 (kernels then take
every parameter, constexprs included, as ``bound_args`` do). The first launch
of each key is checked against Triton's own argument binder; on any surprise
that key (or, if the API itself differs, the whole path) falls back to the
normal launcher. ``IR_TRITON_FAST_LAUNCH=0`` turns it off.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import torch

logger = logging.getLogger(__name__)

_SLOW = object()  # cache value: this key always takes the normal launcher
_cache: dict[tuple[Any, ...], Any] = {}
_MAX_ENTRIES = 4096
_available: bool | None = None


def available() -> bool:
    """Whether the fast path may be used in this process (detected once)."""
    global _available
    if _available is None:
        _available = _detect()
    return _available


def _detect() -> bool:
    if os.environ.get("TRITON_INTERPRET") == "1" or os.environ.get("IR_TRITON_FAST_LAUNCH") == "0":
        return False
    if torch.version.hip is not None or not torch.cuda.is_available():
        return False
    try:
        import triton
        from triton.compiler import CompiledKernel
        from triton.runtime.jit import JITFunction

        major, minor = (int(p) for p in triton.__version__.split(".")[:2])
        # run() hands the compiled kernel every bound argument, constexprs included
        passes_all = "*bound_args.values()" in inspect.getsource(JITFunction.run)
    except Exception:  # any surprise: keep Triton's own launcher
        return False
    return (
        (major, minor) >= (3, 3)
        and passes_all
        and callable(getattr(CompiledKernel, "__getitem__", None))
    )


def spec_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """The specialisation key of one launch, or None when an argument is of a
    kind the fast path does not handle (then the normal launcher runs)."""
    parts: list[Any] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            parts.append((a.dtype, a.data_ptr() % 16 == 0))
        elif a is None or isinstance(a, (bool, int, float, str)):
            parts.append((type(a), a) if not isinstance(a, float) else float)
        else:
            return None
    for name, v in kwargs.items():
        if v is not None and not isinstance(v, (bool, int, float, str)):
            return None
        parts.append((name, type(v), v))
    return tuple(parts)


def _all_args(kernel: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """Every kernel parameter in order (positional ones, then constexprs given
    by name), as Triton's launchers take them; None if a parameter is missing."""
    names = kernel.arg_names[len(args) :]
    if any(n not in kwargs for n in names):
        return None
    return (*args, *(kwargs[n] for n in names))


def _checked(kernel: Any, device: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Triton's own binder agrees with :func:`_all_args` for this launch."""
    full = _all_args(kernel, args, kwargs)
    if full is None:
        return False
    binder = kernel.device_caches[device][-1]
    bound = binder(*args, **kwargs)[0]
    values = list(bound.values())
    return len(values) == len(full) and all(
        v is f or (not isinstance(v, torch.Tensor) and type(v) is type(f) and v == f)
        for v, f in zip(values, full, strict=True)
    )


def launch(
    kernel: Any, grid: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """``kernel[grid](*args, **kwargs)``, through the cached compiled kernel when possible."""
    global _available
    if not available() or getattr(kernel, "pre_run_hooks", None):
        kernel[grid](*args, **kwargs)
        return
    key = spec_key(args, kwargs)
    if key is None:
        kernel[grid](*args, **kwargs)
        return
    device = torch.cuda.current_device()
    full_key = (kernel, device, key)
    compiled = _cache.get(full_key)
    if compiled is not None and compiled is not _SLOW:
        g = (*grid, 1, 1)[:3] if len(grid) < 3 else grid
        try:
            compiled[g](*args, *(kwargs[n] for n in kernel.arg_names[len(args) :]))
            return
        except TypeError as exc:  # the launcher rejected the arguments before launching
            logger.info("ir: triton fast launch disabled (%s)", exc)
            _available = False
            _cache.clear()
            kernel[grid](*args, **kwargs)
            return
    result = kernel[grid](*args, **kwargs)
    if compiled is _SLOW:
        return
    try:
        ok = callable(getattr(result, "__getitem__", None)) and _checked(
            kernel, device, args, kwargs
        )
    except Exception as exc:  # the internals differ from what this module expects
        logger.info("ir: triton fast launch disabled (%s: %s)", type(exc).__name__, exc)
        _available = False
        return
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[full_key] = result if ok else _SLOW
