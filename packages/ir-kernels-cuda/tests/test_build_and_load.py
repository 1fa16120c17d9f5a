"""The real build (no GPU needed): ``build.build`` compiles and links the
extension for sm_90 through ``torch.utils.cpp_extension`` into a temporary
cache; the library loads (``TORCH_LIBRARY`` schemas and the C++ signatures
agree, or loading fails); a second build is a cache hit; the fake kernels and
``supports_args`` handle fake CUDA tensors of every generated input.

Runs in a subprocess (the loaded ``ir_cuda`` namespace must not leak into
other tests). Skipped, visibly, without nvcc/CUDA headers or a CUDA torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension as cpp_ext


def _cuda_home() -> str | None:
    for cand in (os.environ.get("CUDA_HOME"), cpp_ext.CUDA_HOME, "/usr/local/cuda"):
        if (
            cand
            and Path(cand, "include", "cuda_runtime_api.h").exists()
            and Path(cand, "bin", "nvcc").exists()
        ):
            return cand
    return None


CUDA_HOME = _cuda_home()

SCRIPT = r"""
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
import ir_core as ir
from ir_kernels_cuda import build, runtime

ir.load_providers()
path = build.build("9.0")
torch.ops.load_library(str(path))
runtime._bind()

# The direct (pybind) bindings: importable, every op present; on CPU tensors
# each one converts its arguments and fails in the C++ checks (a RuntimeError
# naming ir_cuda, not a TypeError from the binding).
runtime._import_direct(str(path))
d = runtime._direct
assert d is not None, "the extension's pybind module did not import"
cx = torch.zeros(2, 64)
cw = torch.ones(64)
cs = torch.ones(1)
calls = {
    "rms_norm": (cx, cw, 1e-6, None),
    "fused_add_rms_norm": (cx, cx.clone(), cw, 1e-6, 32),
    "rms_norm_static_fp8_quant": (cx, None, 1e-6, cs),
    "fused_add_rms_norm_static_fp8_quant": (cx, cx.clone(), cw, 1e-6, cs),
    "silu_and_mul": (cx,),
    "gelu_and_mul": (cx, "tanh"),
    "rotary_embedding": (torch.zeros(2, dtype=torch.long), cx, None, 64, torch.zeros(8, 64), True),
    "static_scaled_fp8_quant": (cx, cs),
    "dynamic_per_token_scaled_fp8_quant": (cx, None),
    "per_token_group_quant_fp8": (cx, 32),
}
for name in runtime.INPLACE_OP_NAMES:  # same arguments as the functional forms
    calls[name] = calls[name.rstrip("_")]
assert set(calls) == set(runtime.ALL_OP_NAMES)
for name, call in calls.items():
    try:
        getattr(d, name)(*call)
    except RuntimeError as exc:
        assert "ir_cuda::" in str(exc), (name, exc)
    else:
        raise AssertionError(f"direct {name} accepted CPU tensors")
assert runtime.kernels(cx, None) is d  # plain tensors, nothing tracing: direct
with FakeTensorMode() as m:
    assert runtime.kernels(m.from_tensor(cx)) is runtime.K  # traced: the torch ops

def no_compile(*a):
    raise AssertionError("cache miss on the second build")

build._compile = no_compile
assert build.build("9.0") == path

checked = 0
mode = FakeTensorMode()
for name in runtime.OP_NAMES:
    op = getattr(ir.ops, name)
    impl = op.impls["cuda"]
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for variant in op.test_variants:
            for tokens, hidden in ((3, 128), (0, 64), (5, 1001)):
                torch.manual_seed(0)
                args = op.input_generator(tokens, hidden, dtype, "cpu", **variant)
                expected = op.native(*args)
                with mode:
                    fake = [mode.from_tensor(a).to("cuda") if isinstance(a, torch.Tensor) else a
                            for a in args]
                    assert impl.accepts(*fake), (name, dtype, variant, tokens, hidden)
                    got = impl.fn(*fake)
                exp_l = expected if isinstance(expected, tuple) else (expected,)
                got_l = got if isinstance(got, tuple) else (got,)
                for g, e in zip(got_l, exp_l, strict=True):
                    if e is None:
                        assert g is None
                        continue
                    assert tuple(g.shape) == tuple(e.shape) and g.dtype == e.dtype, (name, g, e)
                    assert g.device.type == "cuda"
                checked += 1
print("CHECKED", checked)
"""


@pytest.mark.slow
@pytest.mark.skipif(
    CUDA_HOME is None or shutil.which("c++") is None,
    reason="no CUDA toolkit (nvcc + headers) or C++ compiler: the extension was NOT built",
)
@pytest.mark.skipif(
    torch.version.cuda is None, reason="CPU-only torch: cannot build a CUDA extension"
)
def test_extension_builds_loads_and_traces(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        IR_CUDA_CACHE=str(tmp_path),
        CUDA_HOME=str(CUDA_HOME),
        MAX_JOBS=os.environ.get("MAX_JOBS", str(os.cpu_count() or 2)),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900
    )
    logs = list(tmp_path.glob("*/build.log"))
    detail = (
        proc.stdout[-3000:] + proc.stderr[-6000:] + "".join(p.read_text()[-6000:] for p in logs)
    )
    assert proc.returncode == 0, detail
    assert "CHECKED" in proc.stdout and int(proc.stdout.split("CHECKED")[1].split()[0]) > 100, (
        detail
    )
    assert len(list(tmp_path.glob("*/ir_cuda_*.so"))) == 1
