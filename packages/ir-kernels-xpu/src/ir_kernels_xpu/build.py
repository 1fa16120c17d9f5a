"""Build of the ``ir_xpu`` SYCL extension on first use (never at import).

``torch.utils.cpp_extension.load`` compiles ``csrc/ir_xpu_ops.sycl`` with
Intel's ``icpx -fsycl`` (torch >= 2.8 on an XPU build of torch), into a
directory keyed by the source hash and the torch version; ninja caches the
objects across processes. A failed build logs one warning and makes the
``xpu`` provider unsupported; :func:`unavailable_reason` says why.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import shutil
import threading
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

ENV_CACHE = "IR_XPU_CACHE_DIR"
ENV_VERBOSE = "IR_XPU_BUILD_VERBOSE"
SOURCE = "ir_xpu_ops.sycl"
MIN_TORCH = (2, 8)


def source_file() -> Path:
    """The SYCL source shipped with this package."""
    return Path(str(importlib.resources.files("ir_kernels_xpu") / "csrc" / SOURCE))


def _torch_version() -> tuple[int, int]:
    parts = torch.__version__.split("+", 1)[0].split(".")
    return int(parts[0]), int(parts[1])


def xpu_unavailable_reason() -> str | None:
    """Why the ``xpu`` provider cannot run in this process (``None``: it can,
    subject to the build)."""
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu._is_compiled():
        return f"torch {torch.__version__} is not built with XPU support"
    if not xpu.is_available():
        return "torch is an XPU build but sees no Intel GPU (torch.xpu.is_available() is False)"
    if _torch_version() < MIN_TORCH:
        return f"SYCL extensions need torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]}, this is {torch.__version__}"
    if shutil.which("icpx") is None:
        return "the SYCL compiler icpx is not on PATH (install the Intel oneAPI DPC++ compiler)"
    return None


def cache_root() -> Path:
    """``$IR_XPU_CACHE_DIR``, else ``$XDG_CACHE_HOME/ir/xpu`` (``~/.cache/ir/xpu``)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ir" / "xpu"


def build_key(source: Path | None = None) -> str:
    """sha256 of the source and the torch version (hex)."""
    h = hashlib.sha256((source or source_file()).read_bytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()


def build_directory(key: str) -> Path:
    return cache_root() / f"torch{torch.__version__}-{key[:16]}"


def compile_extension(key: str) -> None:
    """Build and load the extension (registers ``torch.ops.ir_xpu``); raises on failure."""
    from torch.utils import cpp_extension

    directory = build_directory(key)
    directory.mkdir(parents=True, exist_ok=True)
    logger.info("ir-kernels-xpu: building ir_xpu in %s", directory)
    cpp_extension.load(
        name=f"ir_xpu_{key[:16]}",
        sources=[str(source_file())],
        extra_cflags=["-O3"],
        extra_sycl_cflags=["-O3"],
        build_directory=str(directory),
        with_sycl=True,
        is_python_module=False,
        verbose=os.environ.get(ENV_VERBOSE, "") not in ("", "0"),
    )


class _State:
    lock = threading.Lock()
    done = False
    error: str | None = None


def unavailable_reason() -> str | None:
    """Why ``torch.ops.ir_xpu`` cannot be used here, building it first on an
    XPU machine (``None``: it is loaded)."""
    why = xpu_unavailable_reason()
    if why is not None:
        return why
    if not _State.done:
        with _State.lock:
            if not _State.done:
                try:
                    compile_extension(build_key())
                except Exception as exc:
                    _State.error = (
                        f"the ir_xpu extension failed to build: {type(exc).__name__}: {exc}"
                    )
                    logger.warning(
                        "ir-kernels-xpu: %s; the xpu provider is unsupported in this process "
                        "(set %s=1 to see the compiler output)",
                        _State.error.splitlines()[0][:500],
                        ENV_VERBOSE,
                    )
                _State.done = True
    return _State.error
