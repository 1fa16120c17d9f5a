"""The hipify step: CUDA sources in, HIP sources out.

1. The kernel files of ir-kernels-cuda and this package's glue are copied
   into ``<dest>/cuda``.
2. ``torch.utils.hipify`` translates them into ``<dest>/hip`` (``.cu`` ->
   ``.hip``, headers -> ``*_hip.*``, CUDA API names -> HIP ones). Its output
   starts with hipify's breadcrumb, so ``cpp_extension.load`` does not
   translate it a second time.
3. A few rewrites that torch's tables lack (they differ between torch
   versions, or concern AMD semantics rather than names) are applied to the
   translated text: see :data:`ROCM_REWRITES`.

Pure Python: runs (and is tested) on machines without ROCm.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Bumped whenever the rewrites change (part of the build cache key).
REWRITE_VERSION = "1"

COMPAT_HEADER = "ir_rocm_compat.h"

#: (pattern, replacement) applied to every translated file, in order.
ROCM_REWRITES: tuple[tuple[str, str], ...] = (
    # Warp-synchronous intrinsics: HIP's *_sync variants need a 64-bit mask
    # (and are absent before ROCm 6.2). A wavefront runs in lockstep, so the
    # plain intrinsics are what the sync ones lower to; width defaults to the
    # wavefront size.
    (r"\b__shfl_xor_sync\s*\(\s*[^,()]+,\s*", "__shfl_xor("),
    (r"\b__shfl_down_sync\s*\(\s*[^,()]+,\s*", "__shfl_down("),
    (r"\b__shfl_up_sync\s*\(\s*[^,()]+,\s*", "__shfl_up("),
    (r"\b__shfl_sync\s*\(\s*[^,()]+,\s*", "__shfl("),
    (r"\b__ballot_sync\s*\(\s*[^,()]+,\s*", "__ballot("),
    (r"\b__any_sync\s*\(\s*[^,()]+,\s*", "__any("),
    (r"\b__all_sync\s*\(\s*[^,()]+,\s*", "__all("),
    # fp8: torch's float8_e4m3fn is the OCP format, which gfx942 has no
    # conversion instruction for and older hip_fp8.h lacks; the compat
    # header converts in software (saturating, round to nearest even).
    (r"#include\s*[<\"]cuda_fp8\.h[>\"]", f'#include "{COMPAT_HEADER}"'),
    (r"\b__nv_cvt_float_to_fp8\b", "ir_rocm_cvt_float_to_fp8"),
    (r"\b__nv_cvt_float2_to_fp8x2\b", "ir_rocm_cvt_float2_to_fp8x2"),
    (r"\b__NV_SATFINITE\b", "IR_ROCM_SATFINITE"),
    (r"\b__NV_NOSAT\b", "IR_ROCM_NOSAT"),
    (r"\b__NV_E4M3\b", "IR_ROCM_E4M3"),
    (r"\b__nv_fp8_storage_t\b", "uint8_t"),
    (r"\b__nv_fp8x2_storage_t\b", "uint16_t"),
)

_COMPILED = tuple((re.compile(p), r) for p, r in ROCM_REWRITES)

#: Identifiers that must not survive translation (checked by :func:`leftover_cuda_names`).
CUDA_ONLY_NAMES = (
    "cudaStream_t",
    "cuda_runtime",
    "cuda_bf16.h",
    "cuda_fp16.h",
    "cuda_fp8.h",
    "__nv_bfloat16",
    "__nv_bfloat162",
    "__shfl_xor_sync",
    "__nv_cvt_float",
    "__NV_SATFINITE",
)


@dataclass(frozen=True)
class HipSources:
    """Result of :func:`hipify_sources`."""

    #: ``<dest>/hip``: pass as an include path.
    include_dir: Path
    #: Translation units to compile (``.hip`` kernels and the ``.cpp`` glue).
    compile: tuple[Path, ...]
    #: Every translated file (headers included).
    translated: tuple[Path, ...]


def apply_rewrites(text: str) -> str:
    """Apply :data:`ROCM_REWRITES` to translated source text."""
    for pattern, repl in _COMPILED:
        text = pattern.sub(repl, text)
    return text


def leftover_cuda_names(text: str) -> list[str]:
    """CUDA-only identifiers still present in ``text`` (comments included)."""
    return [n for n in CUDA_ONLY_NAMES if n in text]


def hipify_sources(
    files: list[Path], dest: Path, *, compat_header: Path | None = None
) -> HipSources:
    """Translate ``files`` (CUDA kernels, headers and glue ``.cpp``) into
    ``dest/hip`` and return what to compile.

    ``dest`` must not exist yet or be empty (each build gets its own
    directory: hipify keeps per-path state for the life of the process).
    ``compat_header`` is copied next to the translated files.
    """
    from torch.utils.hipify import hipify_python

    cuda_dir, hip_dir = dest / "cuda", dest / "hip"
    if hip_dir.exists():
        raise FileExistsError(f"{hip_dir} exists; hipify needs a fresh directory")
    cuda_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, cuda_dir / f.name)
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        result = hipify_python.hipify(
            project_directory=str(cuda_dir),
            output_directory=str(hip_dir),
            includes=["*"],
            show_detailed=False,
            show_progress=False,
            is_pytorch_extension=True,
            hip_clang_launch=True,
        )
    logger.debug("ir-kernels-rocm: hipify output:\n%s", log.getvalue())
    translated: list[Path] = []
    compile_units: list[Path] = []
    for f in files:
        entry = result.get(os.path.abspath(hip_dir / f.name))
        if entry is None or not entry.hipified_path:
            status = getattr(entry, "status", "no result")
            raise RuntimeError(f"hipify produced no translation of {f.name} ({status})")
        path = Path(entry.hipified_path)
        text = path.read_text(encoding="utf-8")
        new = apply_rewrites(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
        translated.append(path)
        if path.suffix in (".hip", ".cpp", ".cc"):
            compile_units.append(path)
    # Leave only translated files: cpp_extension.load hipifies its include
    # directories again and would translate the CUDA originals over ours.
    keep = {p.resolve() for p in translated}
    for leftover in hip_dir.iterdir():
        if leftover.is_file() and leftover.resolve() not in keep:
            leftover.unlink()
    if compat_header is not None:
        text = compat_header.read_text(encoding="utf-8")
        (hip_dir / compat_header.name).write_text(
            hipify_python.HIPIFY_C_BREADCRUMB + text, encoding="utf-8"
        )
    return HipSources(hip_dir, tuple(compile_units), tuple(translated))
