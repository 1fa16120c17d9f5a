"""Process-wide state of the ``ir_cuda`` extension: is it usable here, and the
bound kernels (``torch.ops.ir_cuda.*`` overloads) once it is loaded.

:func:`ensure_loaded` runs at most one build attempt per process, the first
time an ``ir`` dispatch evaluates the ``cuda`` provider's ``supported`` check
(never at import). Without a CUDA GPU of compute capability 8.0 or newer the
provider is simply unsupported. A failed build logs ONE warning naming the
compiler log and leaves the provider unsupported; nothing raises.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch

from . import build

if TYPE_CHECKING:
    from torch import Tensor

logger = logging.getLogger(__name__)

_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_compiling = torch.compiler.is_compiling
_dispatch_modes = torch._C._len_torch_dispatch_stack
_function_modes = torch._C._len_torch_function_stack
_functorch = torch._C._are_functorch_transforms_active

#: The ``ir_cuda`` ops named after an IR op: functional, same arguments.
OP_NAMES = (
    "rms_norm",
    "fused_add_rms_norm",
    "rms_norm_static_fp8_quant",
    "fused_add_rms_norm_static_fp8_quant",
    "silu_and_mul",
    "gelu_and_mul",
    "rotary_embedding",
    "static_scaled_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
)
#: Their in-place forms (torch's trailing underscore): the caller's buffers
#: receive the results; not used by the provider, which is functional.
INPLACE_OP_NAMES = (
    "fused_add_rms_norm_",
    "fused_add_rms_norm_static_fp8_quant_",
    "rotary_embedding_",
)
#: Everything bound as attributes of :data:`K` (and of the direct module).
ALL_OP_NAMES = OP_NAMES + INPLACE_OP_NAMES

_lock = threading.Lock()
_status: bool | None = None  # None: not tried yet
_reason: str | None = None
_library: str | None = None
_direct: Any = None  # the extension's pybind module (eager fast path), if importable


class Kernels(Protocol):
    """The bound ``torch.ops.ir_cuda.*`` overloads (same arguments and results
    as the IR ops), and the in-place forms."""

    rms_norm: Callable[..., Tensor]
    fused_add_rms_norm: Callable[..., tuple[Tensor, Tensor]]
    rms_norm_static_fp8_quant: Callable[..., Tensor]
    fused_add_rms_norm_static_fp8_quant: Callable[..., tuple[Tensor, Tensor]]
    silu_and_mul: Callable[..., Tensor]
    gelu_and_mul: Callable[..., Tensor]
    rotary_embedding: Callable[..., tuple[Tensor, Tensor | None]]
    static_scaled_fp8_quant: Callable[..., Tensor]
    dynamic_per_token_scaled_fp8_quant: Callable[..., tuple[Tensor, Tensor]]
    per_token_group_quant_fp8: Callable[..., tuple[Tensor, Tensor]]
    fused_add_rms_norm_: Callable[..., None]
    fused_add_rms_norm_static_fp8_quant_: Callable[..., Tensor]
    rotary_embedding_: Callable[..., None]


class _Unloaded:
    """Stands in for :data:`K` until the extension is loaded: the first
    attribute access loads it (or raises, naming why it cannot)."""

    def __getattr__(self, name: str) -> Any:
        if not ensure_loaded():
            raise RuntimeError(f"ir_cuda.{name}: the cuda provider is unavailable: {_reason}")
        return getattr(K, name)


#: The kernels: ``K.rms_norm(...)`` is ``torch.ops.ir_cuda.rms_norm.default(...)``.
K: Kernels = cast(Kernels, _Unloaded())


def gpu_problem() -> str | None:
    """Why this machine cannot run the kernels at all, or None."""
    import torch

    if torch.version.cuda is None:
        return "torch was built without CUDA"
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    cap = torch.cuda.get_device_capability()
    if cap < build.MIN_CAPABILITY:
        return (
            f"GPU {torch.cuda.get_device_name()} is sm_{cap[0]}{cap[1]}; the kernels need "
            f"sm_{build.MIN_CAPABILITY[0]}{build.MIN_CAPABILITY[1]} or newer"
        )
    return None


def _bind() -> None:
    global K
    import torch

    from . import _fake

    _fake.register()
    ns = torch.ops.ir_cuda
    K = cast(Kernels, SimpleNamespace(**{name: getattr(ns, name).default for name in ALL_OP_NAMES}))


def _import_direct(path: str) -> None:
    """Import the loaded library's pybind module (same functions as the
    ``ir_cuda`` ops, without the dispatcher). Optional: on any failure the
    torch ops serve every call."""
    global _direct
    try:
        import importlib.machinery
        import importlib.util

        name = Path(path).stem
        loader = importlib.machinery.ExtensionFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        if spec is None:
            raise ImportError(f"no module spec for {path}")
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)  # multi-phase init (pybind11 3) fills it here
        missing = [n for n in ALL_OP_NAMES if not hasattr(module, n)]
        if missing:
            raise ImportError(f"the module lacks {missing}")
        _direct = module
    except Exception as exc:  # optional: the torch ops path always works
        _direct = None
        logger.debug("ir-kernels-cuda: no direct bindings (%s: %s)", type(exc).__name__, exc)


def kernels(*tensors: Tensor | None) -> Kernels:
    """The kernels for this call: the direct bindings when nothing traces or
    transforms it (not compiling, no dispatch/function modes, no functorch,
    plain tensors), else the ``torch.ops.ir_cuda`` ops (:data:`K`). Both run
    the same C++ functions with the same checks."""
    d = _direct
    if d is None or _compiling() or _dispatch_modes() or _function_modes() or _functorch():
        return K
    for t in tensors:
        if t is not None and type(t) is not _Tensor and type(t) is not _Parameter:
            return K
    return d  # type: ignore[no-any-return]  # (no cast(): one call less per op)


def _load() -> tuple[bool, str | None]:
    problem = gpu_problem()
    if problem is not None:
        return False, problem
    try:
        import torch

        path = build.build()
        torch.ops.load_library(str(path))  # type: ignore[no-untyped-call]
        global _library
        _library = str(path)
        _bind()
        _import_direct(str(path))
    except build.BuildError as exc:
        logger.warning(
            "ir-kernels-cuda: %s. The 'cuda' provider is unsupported in this process; "
            "other providers run instead.",
            exc,
        )
        return False, f"the ir_cuda extension failed to build; compiler log: {exc.log_path}"
    except Exception as exc:  # a broken toolchain or library must never crash the process
        log = _safe_log_path()
        logger.warning(
            "ir-kernels-cuda: loading the ir_cuda extension failed (%s: %s). The 'cuda' "
            "provider is unsupported in this process. Compiler log: %s",
            type(exc).__name__,
            exc,
            log,
        )
        return (
            False,
            f"the ir_cuda extension failed to load ({type(exc).__name__}: {exc}); log: {log}",
        )
    return True, None


def _safe_log_path() -> str:
    try:
        return str(build.target(build.current_arch()).log)
    except Exception:
        return str(build.cache_root())


def ensure_loaded() -> bool:
    """Build (if not cached) and load the extension once; True when usable."""
    global _status, _reason
    if _status is not None:
        return _status
    with _lock:
        if _status is None:
            ok, reason = _load()
            _reason = reason
            _status = ok
    return _status


def unavailable_reason() -> str | None:
    """Why :func:`ensure_loaded` returned False (None if usable or not tried)."""
    return _reason


def library_path() -> str | None:
    """Path of the loaded shared library, if loaded."""
    return _library


_KNOB_UNKNOWN = -(2**31)  # ir_cuda_knob_set's answer for an unknown name


@functools.lru_cache(maxsize=4)
def _knob_setter(path: str) -> Any:
    fn = ctypes.CDLL(path).ir_cuda_knob_set
    fn.argtypes = (ctypes.c_char_p, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def set_knob(name: str, value: int) -> int:
    """Set a launch knob of the loaded extension (names and values in
    ``csrc/launch.h``; 0 is the automatic choice) and return its previous
    value. No knob changes a result bit, only the launch; for benchmarks and
    tests (not safe against launches on other threads). Raises RuntimeError
    when the extension is not loaded, ValueError for an unknown name."""
    path = library_path()
    if path is None:
        raise RuntimeError("ir_cuda: the extension is not loaded (call ensure_loaded() first)")
    previous = int(_knob_setter(path)(name.encode(), int(value)))
    if previous == _KNOB_UNKNOWN:
        raise ValueError(f"ir_cuda: no launch knob named {name!r} (see csrc/launch.h)")
    return previous


def _reset_for_tests() -> None:
    """Forget the outcome so tests can exercise :func:`ensure_loaded` again."""
    global _status, _reason, K, _direct
    with _lock:
        _status, _reason, K, _direct = None, None, cast(Kernels, _Unloaded()), None
