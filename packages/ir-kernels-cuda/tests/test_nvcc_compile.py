"""CI compiles every translation unit with the machine's nvcc (no GPU needed),
so a syntax or template error in the kernels fails CI. Skipped, visibly, when
nvcc is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch.utils.cpp_extension as cpp_ext

from ir_kernels_cuda import build


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    home = cpp_ext.CUDA_HOME
    cand = Path(home, "bin", "nvcc") if home else None
    return str(cand) if cand is not None and cand.exists() else None


NVCC = _nvcc()
pytestmark = pytest.mark.skipif(
    NVCC is None, reason="nvcc not found: the CUDA sources were NOT compiled"
)


def _torch_std() -> str:
    """The C++ standard the installed torch headers need (C++20 from torch 2.10 on)."""
    aten = Path(cpp_ext.include_paths(device_type="cuda")[0], "ATen", "ATen.h")
    return "c++20" if "C++20" in aten.read_text(errors="replace") else "c++17"


def _command(src: Path, out: Path) -> list[str]:
    includes = [f"-I{p}" for p in cpp_ext.include_paths(device_type="cuda")]
    # Kernel files must stay C++17 (portable to older toolchains and hipcc);
    # the torch glue follows the torch headers' standard.
    std = "c++17" if src.suffix == ".cu" else _torch_std()
    flags = [*cpp_ext.COMMON_NVCC_FLAGS, *build.gencode_flags("9.0")] if src.suffix == ".cu" else []
    return [
        NVCC or "nvcc",
        "-c",
        f"-std={std}",
        *flags,
        *includes,
        f"-I{build.source_dir()}",
        str(src),
        "-o",
        str(out),
    ]


def _compile(src: Path, tmp: Path) -> tuple[Path, int, str]:
    proc = subprocess.run(
        _command(src, tmp / f"{src.name}.o"), capture_output=True, text=True, timeout=600
    )
    return src, proc.returncode, proc.stdout + proc.stderr


def test_every_source_compiles_with_nvcc(tmp_path: Path) -> None:
    sources = build.compiled_sources()
    assert {p.name for p in sources} >= {
        "ops.cpp",
        "norm.cu",
        "activation.cu",
        "rotary.cu",
        "quant.cu",
    }
    workers = max(1, min(len(sources), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda s: _compile(s, tmp_path), sources))
    failed = [(src.name, out) for src, rc, out in results if rc != 0]
    for name, out in failed:
        sys.stderr.write(f"--- nvcc {name}\n{out}\n")
    assert not failed, f"nvcc failed on {[n for n, _ in failed]}:\n" + "\n".join(
        o[-3000:] for _, o in failed
    )
