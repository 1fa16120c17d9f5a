"""Building the ``ir_cuda`` torch extension: sources, cache key, compile.

The sources ship inside the wheel (:func:`source_dir`). They are compiled
with ``torch.utils.cpp_extension.load`` (ninja) on first use or ahead of time
(``python -m ir_kernels_cuda build``), never at import. Builds are cached in
``$IR_CUDA_CACHE`` (default ``~/.cache/ir-kernels-cuda``), one directory per
cache key: a hash of every source file, the GPU architecture, the torch and
CUDA versions, the Python ABI and the compiler flags. Each build directory
keeps ``build.log``, the compiler output of its last build.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_CACHE = "IR_CUDA_CACHE"
#: Lowest compute capability the kernels are written for.
MIN_CAPABILITY = (8, 0)
#: Compiled translation units (the rest of the source directory are headers).
COMPILED_SUFFIXES = (".cpp", ".cu")
SOURCE_SUFFIXES = (".cpp", ".cu", ".cuh", ".h")
CXX_FLAGS = ("-O3",)
CUDA_FLAGS = ("-O3", "-lineinfo")


class BuildError(RuntimeError):
    """The extension could not be built; ``log_path`` holds the compiler output."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(message)
        self.log_path = log_path


def source_dir() -> Path:
    """Directory of the C++/CUDA sources (``ops.cpp``, ``*.cu``, headers).

    The ROCm package hipifies these same files, so keep them portable.
    """
    return Path(__file__).resolve().parent / "csrc"


def source_files() -> list[Path]:
    """Every source and header file, sorted by name."""
    return sorted(p for p in source_dir().iterdir() if p.suffix in SOURCE_SUFFIXES)


def compiled_sources() -> list[Path]:
    """The translation units handed to the compiler."""
    return [p for p in source_files() if p.suffix in COMPILED_SUFFIXES]


def arch_string(capability: tuple[int, int]) -> str:
    """``(9, 0)`` -> ``"9.0"`` (the TORCH_CUDA_ARCH_LIST spelling)."""
    return f"{capability[0]}.{capability[1]}"


def gencode_flags(arch: str) -> list[str]:
    """nvcc flags generating SASS for exactly ``arch`` (e.g. ``"9.0"``)."""
    major, _, minor = arch.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"ir-kernels-cuda: bad GPU architecture {arch!r} (expected e.g. '9.0')")
    sm = f"{major}{minor}"
    return [f"-gencode=arch=compute_{sm},code=sm_{sm}"]


def cuda_flags(arch: str) -> list[str]:
    """All nvcc flags this package passes for ``arch`` (torch adds its own)."""
    return [*CUDA_FLAGS, *gencode_flags(arch)]


def cache_root() -> Path:
    """``$IR_CUDA_CACHE``, else ``~/.cache/ir-kernels-cuda``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ir-kernels-cuda"


def _toolchain() -> tuple[str, str]:
    import torch

    return torch.__version__, str(torch.version.cuda)


def cache_key(
    arch: str,
    *,
    torch_version: str | None = None,
    cuda_version: str | None = None,
    sources: list[Path] | None = None,
) -> str:
    """sha256 over the sources (names and bytes), ``arch``, torch and CUDA
    versions, the Python ABI tag and the compiler flags."""
    if torch_version is None or cuda_version is None:
        tv, cv = _toolchain()
        torch_version, cuda_version = torch_version or tv, cuda_version or cv
    h = hashlib.sha256()
    for p in sources if sources is not None else source_files():
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    for part in (
        arch,
        torch_version,
        cuda_version,
        sys.implementation.cache_tag,
        " ".join(CXX_FLAGS),
        " ".join(cuda_flags(arch)),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class BuildTarget:
    """Where the extension for one cache key lives."""

    arch: str
    key: str
    directory: Path

    @property
    def name(self) -> str:
        """Extension (and library file) name; unique per key."""
        return f"ir_cuda_{self.key[:16]}"

    @property
    def library(self) -> Path:
        return self.directory / f"{self.name}.so"

    @property
    def log(self) -> Path:
        return self.directory / "build.log"


def target(arch: str) -> BuildTarget:
    """The cache location for ``arch`` with the installed sources and toolchain."""
    key = cache_key(arch)
    tv, _ = _toolchain()
    safe_tv = "".join(c if c.isalnum() or c in ".-" else "_" for c in tv)
    return BuildTarget(
        arch, key, cache_root() / f"sm{arch.replace('.', '')}-torch{safe_tv}-{key[:16]}"
    )


def current_arch() -> str:
    """Architecture of the current CUDA device (raises if there is none)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("ir-kernels-cuda: no CUDA GPU; pass an architecture (e.g. --arch 9.0)")
    return arch_string(torch.cuda.get_device_capability())


def _has_toolkit(home: str | None) -> bool:
    return (
        bool(home)
        and Path(str(home), "include", "cuda_runtime_api.h").exists()
        and Path(str(home), "bin", "nvcc").exists()
    )


def _fix_cuda_home() -> None:
    """When torch guessed a CUDA_HOME without headers (e.g. from an ``nvcc``
    wrapper in /usr/local/bin) and none is set, use /usr/local/cuda[-X.Y]."""
    import glob

    import torch.utils.cpp_extension as cpp_ext

    if os.environ.get("CUDA_HOME") or _has_toolkit(cpp_ext.CUDA_HOME):
        return
    for cand in ["/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]:
        if _has_toolkit(cand):
            logger.info(
                "ir-kernels-cuda: CUDA_HOME %s has no CUDA headers; using %s",
                cpp_ext.CUDA_HOME,
                cand,
            )
            cpp_ext.CUDA_HOME = cand
            os.environ["CUDA_HOME"] = cand
            return


def _compile(t: BuildTarget, verbose: bool) -> None:
    """Run the torch extension build (ninja) into ``t.directory``; loads the library."""
    from torch.utils.cpp_extension import load

    _fix_cuda_home()
    load(
        name=t.name,
        sources=[str(p) for p in compiled_sources()],
        extra_cflags=list(CXX_FLAGS),
        extra_cuda_cflags=cuda_flags(t.arch),
        build_directory=str(t.directory),
        verbose=verbose,
        is_python_module=False,
    )


def build(arch: str | None = None, *, verbose: bool = False, force: bool = False) -> Path:
    """Build the extension for ``arch`` (default: the current GPU) unless cached.

    Returns the shared library's path. ``MAX_JOBS`` limits ninja's parallelism.
    Raises :class:`BuildError` (with the log path) when compilation fails.
    """
    t = target(arch or current_arch())
    if t.library.exists() and not force:
        return t.library
    t.directory.mkdir(parents=True, exist_ok=True)
    logger.info(
        "ir-kernels-cuda: building the ir_cuda extension for sm_%s in %s (first use; "
        "this takes a minute)",
        t.arch.replace(".", ""),
        t.directory,
    )
    start = time.perf_counter()
    try:
        _compile(t, verbose)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        t.log.write_text(
            f"ir-kernels-cuda build of {t.name} for sm_{t.arch} failed\n"
            f"sources: {source_dir()}\n\n{type(exc).__name__}: {exc}\n"
        )
        raise BuildError(
            f"building the ir_cuda extension failed ({type(exc).__name__}); compiler log: {t.log}",
            t.log,
        ) from exc
    took = time.perf_counter() - start
    t.log.write_text(
        f"ir-kernels-cuda build of {t.name} for sm_{t.arch}: ok in {took:.1f} s\n"
        f"sources: {source_dir()}\n"
    )
    logger.info("ir-kernels-cuda: built %s in %.1f s", t.library, took)
    return t.library
