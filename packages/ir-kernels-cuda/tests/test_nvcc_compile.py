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


FP8_HARNESS = r"""
#include "common.cuh"
extern "C" void ir_fp8_portable(const float* in, unsigned char* out, long n) {
  for (long i = 0; i < n; ++i) out[i] = ir_cuda::fp8_e4m3_portable(in[i]);
}
"""


def test_portable_fp8_conversion_equals_torch(tmp_path: Path) -> None:
    """The fp8 conversion the ROCm build uses (common.cuh, compiled for the
    host here) is bitwise torch's clamp(-448, 448).to(float8_e4m3fn)."""
    import ctypes

    import torch

    src = tmp_path / "fp8_harness.cu"
    src.write_text(FP8_HARNESS)
    lib = tmp_path / "libfp8.so"
    cmd = [
        NVCC or "nvcc",
        "-shared",
        "-Xcompiler",
        "-fPIC",
        "-std=c++17",
        f"-I{build.source_dir()}",
        str(src),
        "-o",
        str(lib),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    g = torch.Generator().manual_seed(0)
    every_half = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.float16)
    edges = torch.tensor(
        [
            0.0,
            -0.0,
            448.0,
            -448.0,
            449.0,
            463.9,
            464.0,
            465.0,
            1e30,
            float("inf"),
            -float("inf"),
            2**-6,
            2**-7,
            2**-9,
            -(2**-10),
            1.5 * 2**-9,
            2.5 * 2**-9,
        ]
    )
    x = torch.cat(
        [torch.randn(200_000, generator=g) * s for s in (1e-3, 0.05, 1.0, 30.0, 300.0)]
        + [every_half.float(), edges]
    )
    x = x[~torch.isnan(x)].contiguous()
    out = torch.empty(x.numel(), dtype=torch.uint8)
    fn = ctypes.CDLL(str(lib)).ir_fp8_portable
    fn(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()), ctypes.c_long(x.numel()))
    ref = x.clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8)
    bad = (out != ref).nonzero().flatten()
    assert bad.numel() == 0, [(x[i].item(), int(out[i]), int(ref[i])) for i in bad[:5].tolist()]
    nan = torch.tensor([float("nan")])
    fn(ctypes.c_void_p(nan.data_ptr()), ctypes.c_void_p(out.data_ptr()), ctypes.c_long(1))
    assert int(out[0]) & 0x7F == 0x7F  # NaN stays NaN
