"""A lean eager launcher: reuse the compiled kernel Triton returned.

``kernel[grid](*args)`` goes through ``JITFunction.run`` on every call (argument
binding, specialisation, cache-key hashing, option parsing): tens of
microseconds of host time, more than the kernel itself at small token counts.
Here the first launch for a given *specialisation key* goes through Triton as
usual and the :class:`~triton.compiler.CompiledKernel` it returns is kept;
later launches with the same key hand the arguments straight to its launcher.

The key is at least as fine as Triton's own specialisation (Triton keys a
tensor by dtype and 16-byte alignment of its data pointer, an int by its
width class, whether it is 1 and whether it is a multiple of 16, a bool or a
float by type only, a constexpr by value): here a tensor by dtype and
alignment, a float by type, every other argument (ints, bools, None,
constexprs, launch options) by exact type and value; plus the current device.
So a cached kernel is only reused where Triton would pick the same one
(``test_triton_fastlaunch.py`` checks this against Triton's own binder). Ints
keyed by value cost nothing here: no kernel of this package takes the token
count as an argument (it is in the grid), so a call site sees one key per
dtype, alignment and hidden size.

Per cached key the launcher, the loaded function, the packed metadata and the
trailing constexpr values are resolved once; a launch is then the key, one
dict lookup, the current raw stream and the launcher call. The launcher is
called the way ``CompiledKernel.__getitem__``'s runner calls it (detected
from Triton's source once; otherwise, and whenever a Triton launch hook is
installed, the runner ``compiled[grid](...)`` itself is used, which builds
the hooks' launch metadata). The device is the current CUDA device, as in
Triton's launcher.

Used only on the eager fast path (never under tracing: the caller decides),
never under the interpreter, on NVIDIA GPUs only (ROCm kernels also
specialise on buffer sizes), and only with Triton >= 3.3 (kernels then take
every parameter, constexprs included, as ``bound_args`` do). The first launch
of each key is checked against Triton's own argument binder; on any surprise
that key (or, if the API itself differs, the whole path) falls back to the
normal launcher. Not covered (as Triton would, on its own launcher): a change
of ``knobs`` (debug, instrumentation) or of a kernel's global values after the
first launch of a key. ``IR_TRITON_FAST_LAUNCH=0`` turns it off.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

_SLOW = object()  # cache value: this key always takes the normal launcher
#: ``(kernel, device, key)`` -> ``(run, function, packed metadata, constexpr tail, compiled)``
_cache: dict[tuple[Any, ...], Any] = {}
_MAX_ENTRIES = 4096
_available: bool | None = None
#: Call ``compiled.run(...)`` directly (the runner's protocol was recognised).
_direct_run = False
_TENSOR = torch.Tensor
_PARAMETER = torch.nn.Parameter
_NONE = type(None)
_SCALARS = (int, bool, str, _NONE)
_current_device: Callable[[], int] = torch.cuda.current_device


def _no_stream(device: int) -> int:  # replaced by torch's raw-stream getter when detected
    raise RuntimeError("ir: triton fast launch: no stream getter")


_raw_stream: Callable[[int], int] = _no_stream
_runtime_knobs: Any = None
_hook_chain: Any = None


def available() -> bool:
    """Whether the fast path may be used in this process (detected once)."""
    global _available
    if _available is None:
        _available = _detect()
    return _available


def _squash(src: str) -> str:
    return " ".join(src.split())


def _detect() -> bool:
    global _direct_run, _current_device, _raw_stream, _runtime_knobs, _hook_chain
    if os.environ.get("TRITON_INTERPRET") == "1" or os.environ.get("IR_TRITON_FAST_LAUNCH") == "0":
        return False
    if torch.version.hip is not None or not torch.cuda.is_available():
        return False
    try:
        import triton
        from triton.compiler import CompiledKernel
        from triton.runtime.jit import JITFunction

        major, minor = (int(p) for p in triton.__version__.split(".")[:2])
        run_src = _squash(inspect.getsource(JITFunction.run))
        # run() hands the compiled kernel every bound argument, constexprs included
        passes_all = "*bound_args.values()" in run_src
    except Exception:  # any surprise: keep Triton's own launcher
        return False
    ok = (
        (major, minor) >= (3, 3)
        and passes_all
        and callable(getattr(CompiledKernel, "__getitem__", None))
    )
    if not ok:
        return False
    torch.cuda.current_device()  # CUDA initialised before the raw getters below
    try:
        get_src = _squash(inspect.getsource(CompiledKernel.__getitem__))
        knobs: Any = getattr(triton, "knobs", None)
        _direct_run = (
            "self.run(grid[0], grid[1], grid[2], stream, self.function, self.packed_metadata, "
            "launch_metadata,"
            in get_src
            and "kernel.run(grid_0, grid_1, grid_2, stream, kernel.function, "
            "kernel.packed_metadata, launch_metadata,"
            in run_src
            and hasattr(getattr(knobs, "runtime", None), "launch_enter_hook")
            and hasattr(torch._C, "_cuda_getCurrentRawStream")
            and hasattr(torch._C, "_cuda_getDevice")
        )
        if _direct_run:
            _runtime_knobs = knobs.runtime
            _hook_chain = getattr(knobs, "HookChain", None)
            _raw_stream = torch._C._cuda_getCurrentRawStream
            _current_device = torch._C._cuda_getDevice
    except Exception:  # the runner is still usable; only the shortcut is off
        _direct_run = False
    return True


def _hooks_idle() -> bool:
    """No Triton launch hook is installed (then the launch metadata, which only
    hooks read, need not be built). Triton < 3.5 keeps ``None`` when unset,
    later versions an empty ``HookChain``."""
    rt = _runtime_knobs
    enter, exit_ = rt.launch_enter_hook, rt.launch_exit_hook
    return (enter is None or (enter.__class__ is _hook_chain and not enter.calls)) and (
        exit_ is None or (exit_.__class__ is _hook_chain and not exit_.calls)
    )


#: kwargs value types -> whether the fast path handles every one (memo)
_kw_types_ok: dict[tuple[type, ...], bool] = {}


def spec_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """The specialisation key of one launch, or None when an argument is of a
    kind the fast path does not handle (then the normal launcher runs).

    Positional arguments: a tensor by dtype and 16-byte alignment, a float by
    type, any other scalar by type and value. Keyword arguments (constexprs
    and launch options) by their names, values and value types, as three
    tuples built in C (a call site passes the same names each call, so this
    is as fine as one entry a name; about 30 list appends fewer than keying
    them one by one, and the types' check is memoised per types tuple)."""
    key: list[Any] = []
    append = key.append
    for a in args:
        cls = a.__class__
        if cls is _TENSOR or cls is _PARAMETER:
            append(a.dtype)
            append(not a.data_ptr() & 15)
        elif cls is float:  # Triton passes every non-constexpr float as fp32
            append(float)
        elif cls in _SCALARS:
            append(cls)
            append(a)
        else:
            return None
    values = tuple(kwargs.values())
    types = tuple(map(type, values))
    ok = _kw_types_ok.get(types)
    if ok is None:
        ok = _kw_types_ok[types] = all(c in _SCALARS or c is float for c in types)
    if not ok:
        return None
    append(tuple(kwargs))
    append(values)
    append(types)
    return tuple(key)


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


def _entry(compiled: Any, kernel: Any, nargs: int, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """What a cached launch needs, resolved once."""
    tail = tuple(kwargs[n] for n in kernel.arg_names[nargs:])
    if _direct_run:
        run = compiled.run  # a property: loads the module on first access
        return (run, compiled.function, compiled.packed_metadata, tail, compiled)
    return (None, None, None, tail, compiled)


def _disable(exc: BaseException) -> None:
    global _available
    logger.info("ir: triton fast launch disabled (%s: %s)", type(exc).__name__, exc)
    _available = False
    _cache.clear()


def launch(
    kernel: Any, grid: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """``kernel[grid](*args, **kwargs)``, through the cached compiled kernel when possible."""
    if not (_available or (_available is None and available())) or getattr(
        kernel, "pre_run_hooks", None
    ):
        kernel[grid](*args, **kwargs)
        return
    key = spec_key(args, kwargs)
    if key is None:
        kernel[grid](*args, **kwargs)
        return
    device = _current_device()
    full_key = (kernel, device, key)
    entry = _cache.get(full_key)
    if entry is not None and entry is not _SLOW:
        run, function, metadata, tail, compiled = entry
        n = len(grid)
        g0, g1, g2 = grid[0], grid[1] if n > 1 else 1, grid[2] if n > 2 else 1
        try:
            if run is not None and _hooks_idle():
                # as CompiledKernel.__getitem__'s runner, without the hooks' metadata
                run(
                    g0,
                    g1,
                    g2,
                    _raw_stream(device),
                    function,
                    metadata,
                    None,
                    None,
                    None,
                    *args,
                    *tail,
                )
            else:
                compiled[(g0, g1, g2)](*args, *tail)
            return
        except TypeError as exc:  # the launcher rejected the arguments before launching
            _disable(exc)
            kernel[grid](*args, **kwargs)
            return
    result = kernel[grid](*args, **kwargs)
    if entry is _SLOW:
        return
    try:
        ok = callable(getattr(result, "__getitem__", None)) and _checked(
            kernel, device, args, kwargs
        )
        new = _entry(result, kernel, len(args), kwargs) if ok else _SLOW
    except Exception as exc:  # the internals differ from what this module expects
        _disable(exc)
        return
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[full_key] = new


def stats() -> dict[str, Any]:
    """What the fast path holds (for profiles and tests)."""
    slow = sum(v is _SLOW for v in _cache.values())
    return {
        "available": available(),
        "direct_run": _direct_run,
        "keys": len(_cache),
        "normal_launcher_keys": slow,
    }
