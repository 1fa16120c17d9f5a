"""Where the CUDA sources of ir-kernels-cuda live, and which of them the HIP
build takes.

The ROCm build reuses the *kernel* files of ir-kernels-cuda (``*.cu``,
``*.cuh``, ``*.h``) unchanged and brings its own torch glue
(``csrc/ir_rocm_ops.cpp``), so it depends only on the plain-struct launch
API of ``launch.h`` and never on the CUDA package's op namespace.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

#: Extensions taken from the CUDA source directory.
KERNEL_SUFFIXES = (".cu", ".cuh", ".h", ".hpp")

#: Launch functions of ``launch.h`` and the feature each one enables.
LAUNCHERS: dict[str, str] = {
    "launch_norm": "norm",
    "launch_act_and_mul": "act",
    "launch_rotary": "rotary",
    "launch_static_fp8_quant": "static_quant",
    "launch_dynamic_per_token_fp8_quant": "dynamic_quant",
    "launch_per_token_group_fp8_quant": "group_quant",
}

_DEFINITION = re.compile(r"^\s*void\s+(launch_\w+)\s*\([^;{}]*\)\s*\{", re.MULTILINE)


def own_csrc_dir() -> Path:
    """This package's C++ sources (the HIP torch glue and the compat header)."""
    return Path(str(importlib.resources.files("ir_kernels_rocm") / "csrc"))


def cuda_source_dir() -> Path:
    """The directory holding ir-kernels-cuda's ``.cu``/``.cuh``/``.h`` sources.

    Asks ``ir_kernels_cuda.build.source_dir()`` first (the agreed contract),
    then looks beside the installed package (``ir_kernels_cuda/csrc``) and in
    a source checkout (``packages/ir-kernels-cuda/csrc``).

    Raises FileNotFoundError naming every place it looked.
    """
    tried: list[str] = []
    try:
        build = importlib.import_module("ir_kernels_cuda.build")
        found = Path(build.source_dir())
        if found.is_dir():
            return found
        tried.append(f"ir_kernels_cuda.build.source_dir() = {found}")
    except Exception as exc:  # not written yet, or the package is absent
        tried.append(
            f"ir_kernels_cuda.build.source_dir() unavailable ({type(exc).__name__}: {exc})"
        )
    try:
        pkg = importlib.import_module("ir_kernels_cuda")
        pkg_dir = Path(str(importlib.resources.files(pkg)))
        for candidate in (pkg_dir / "csrc", pkg_dir.parent.parent / "csrc"):
            if candidate.is_dir() and any(candidate.glob("*.cu*")):
                return candidate
            tried.append(str(candidate))
    except Exception as exc:
        tried.append(f"import ir_kernels_cuda failed ({type(exc).__name__}: {exc})")
    raise FileNotFoundError(
        "ir-kernels-rocm: the CUDA sources of ir-kernels-cuda were not found; tried: "
        + "; ".join(tried)
    )


def kernel_files(src: Path) -> list[Path]:
    """The kernel sources of ``src``: every ``.cu``/``.cuh``/``.h``/``.hpp`` file
    except the CUDA package's own torch glue (files that register a
    ``TORCH_LIBRARY``), sorted by name."""
    out = []
    for path in sorted(src.iterdir()):
        if not path.is_file() or path.suffix not in KERNEL_SUFFIXES:
            continue
        if "TORCH_LIBRARY" in path.read_text(encoding="utf-8", errors="replace"):
            continue
        out.append(path)
    return out


def defined_launchers(files: list[Path]) -> set[str]:
    """Names of the ``launch_*`` functions that ``files`` define (not just declare)."""
    found: set[str] = set()
    for path in files:
        if path.suffix == ".cu":
            found.update(_DEFINITION.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found & set(LAUNCHERS)


def features(files: list[Path]) -> set[str]:
    """Feature names (``norm``, ``act``, ...) whose launchers ``files`` define."""
    return {LAUNCHERS[name] for name in defined_launchers(files)}


def content_hash(files: list[Path], *extra: str) -> str:
    """sha256 over file names and contents (and ``extra`` strings), hex."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    for e in extra:
        h.update(e.encode())
        h.update(b"\0")
    return h.hexdigest()
