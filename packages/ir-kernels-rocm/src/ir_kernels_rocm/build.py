"""Build of the ``ir_rocm`` torch extension on first use.

Never at import: the first call of :func:`load` (made by a ``rocm``
implementation's ``supported`` check, i.e. on the first dispatch that
considers it) hipifies the CUDA sources into a directory keyed by their
content, the gfx target, the torch and HIP versions, and compiles them with
``torch.utils.cpp_extension.load`` (hipcc on a ROCm torch; ninja caches
the objects, so a second process only loads the library).

A failed build logs one warning and makes every ``rocm`` implementation
unsupported; :func:`unavailable_reason` says why (``ir explain`` shows it).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from . import arch, hip_sources, sources

logger = logging.getLogger(__name__)

ENV_CACHE = "IR_ROCM_CACHE_DIR"
ENV_VERBOSE = "IR_ROCM_BUILD_VERBOSE"
GLUE = "ir_rocm_ops.cpp"
MANIFEST = "compile_units.txt"
#: torch's hipcc flags disable the implicit half/bfloat16 conversions and
#: operators that CUDA code may rely on; undo that, as CUDA compiles them.
HIPCC_COMPAT_FLAGS = (
    "-U__HIP_NO_HALF_CONVERSIONS__",
    "-U__HIP_NO_HALF_OPERATORS__",
    "-U__HIP_NO_BFLOAT16_CONVERSIONS__",
    "-U__HIP_NO_HALF2_OPERATORS__",
)


@dataclass(frozen=True)
class BuildPlan:
    """Everything that decides a build, and where it lives."""

    arch: str
    wavefront: int
    kernel_files: tuple[Path, ...]
    glue_files: tuple[Path, ...]
    features: frozenset[str]
    key: str
    directory: Path

    @property
    def name(self) -> str:
        """The extension's module name (unique per key)."""
        return f"ir_rocm_{self.key[:16]}"

    def defines(self) -> list[str]:
        """Preprocessor flags: ROCm, the wavefront size, one ``IR_HAS_*`` per feature."""
        flags = ["-DUSE_ROCM=1", f"-DIR_WARP_SIZE={self.wavefront}"]
        flags += [f"-DIR_HAS_{f.upper()}=1" for f in sorted(self.features)]
        return flags


def cache_root() -> Path:
    """``$IR_ROCM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ir/rocm`` (``~/.cache/ir/rocm``)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ir" / "rocm"


def plan(
    gfx: str, wavefront: int, *, source_dir: Path | None = None, root: Path | None = None
) -> BuildPlan:
    """The build for target ``gfx`` (pure: reads sources, builds nothing)."""
    src = source_dir or sources.cuda_source_dir()
    kernels = tuple(sources.kernel_files(src))
    if not any(p.suffix == ".cu" for p in kernels):
        raise FileNotFoundError(f"ir-kernels-rocm: no .cu kernel sources in {src}")
    own = sources.own_csrc_dir()
    glue = (own / GLUE, own / hip_sources.COMPAT_HEADER)
    feats = frozenset(sources.features(list(kernels)))
    hip = getattr(torch.version, "hip", None) or "none"
    key = sources.content_hash(
        [*kernels, *glue], gfx, str(wavefront), torch.__version__, hip, hip_sources.REWRITE_VERSION
    )
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", gfx)
    directory = (root or cache_root()) / f"{safe}-torch{torch.__version__}-hip{hip}-{key[:16]}"
    return BuildPlan(gfx, wavefront, kernels, glue, feats, key, directory)


def prepare(p: BuildPlan) -> hip_sources.HipSources:
    """Hipify ``p``'s sources into ``p.directory/src`` (once; atomically, so
    concurrent processes never see half-written files)."""
    final = p.directory / "src"
    manifest = final / MANIFEST
    if manifest.is_file():
        names = manifest.read_text(encoding="utf-8").split()
        hip = final / "hip"
        return hip_sources.HipSources(
            hip, tuple(hip / n for n in names), tuple(sorted(hip.iterdir()))
        )
    p.directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="src-", dir=p.directory))
    result = hip_sources.hipify_sources(
        [*p.kernel_files, p.glue_files[0]], tmp, compat_header=p.glue_files[1]
    )
    (tmp / MANIFEST).write_text("\n".join(u.name for u in result.compile) + "\n", encoding="utf-8")
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return prepare(p)


def compile_extension(p: BuildPlan) -> object:
    """hipify (if needed) and build/load the extension; raises on failure."""
    from torch.utils import cpp_extension

    hip = prepare(p)
    build_dir = p.directory / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = p.defines()
    logger.info(
        "ir-kernels-rocm: building %s for %s (wavefront %d, features %s) in %s",
        p.name,
        p.arch,
        p.wavefront,
        ", ".join(sorted(p.features)),
        p.directory,
    )
    return cpp_extension.load(
        name=p.name,
        sources=[str(s) for s in hip.compile],
        extra_include_paths=[str(hip.include_dir)],
        extra_cflags=["-O3", *flags],
        extra_cuda_cflags=["-O3", f"--offload-arch={p.arch}", *HIPCC_COMPAT_FLAGS, *flags],
        build_directory=str(build_dir),
        with_cuda=True,
        is_python_module=False,
        verbose=os.environ.get(ENV_VERBOSE, "") not in ("", "0"),
    )


class _State:
    lock = threading.Lock()
    done = False
    features: frozenset[str] = frozenset()
    error: str | None = None


def unavailable_reason() -> str | None:
    """Why ``torch.ops.ir_rocm`` cannot be used here, building it first if
    this is a ROCm machine (``None``: it is loaded)."""
    why = arch.rocm_unavailable_reason()
    if why is not None:
        return why
    ensure_loaded()
    return _State.error


def ensure_loaded() -> frozenset[str]:
    """Build/load the extension once per process; returns the features it
    registered (empty after a failure, which is logged once)."""
    if _State.done:
        return _State.features
    with _State.lock:
        if _State.done:
            return _State.features
        try:
            gfx = arch.gfx_arch()
            p = plan(gfx, arch.device_wavefront_size())
            compile_extension(p)
            _State.features = p.features
        except Exception as exc:
            _State.error = (
                f"the ir_rocm extension failed to build: {type(exc).__name__}: {exc}".strip()
            )
            first = _State.error.splitlines()[0][:500]
            logger.warning(
                "ir-kernels-rocm: %s; the rocm provider is unsupported in this process "
                "(set %s=1 to see the compiler output)",
                first,
                ENV_VERBOSE,
            )
        _State.done = True
    return _State.features


def feature_reason(feature: str) -> str | None:
    """Why ``feature`` (``norm``, ``act``, ...) cannot run here (``None``: it can)."""
    why = unavailable_reason()
    if why is not None:
        return why
    if feature not in _State.features:
        return (
            f"the CUDA sources of ir-kernels-cuda define no launcher for {feature!r} "
            f"(built: {', '.join(sorted(_State.features)) or 'none'})"
        )
    return None
