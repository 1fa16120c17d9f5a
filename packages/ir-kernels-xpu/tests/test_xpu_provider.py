"""ir-kernels-xpu without an Intel GPU: registration, schema conformance,
gating and its explanation, the failed-build path, the priority default, and
a host syntax check of the SYCL source."""

from __future__ import annotations

import inspect
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import ir_core as ir
from ir_core import platforms
from ir_core.cli import main as ir_main
from ir_core.schema import infer_schema

# Load through the entry points first, as a real process does, so the
# implementations are attributed to their distribution.
ir.load_providers()

from ir_kernels_xpu import build, provider  # noqa: E402


@pytest.fixture
def fresh_gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the build outcome and re-arm every xpu ``supported`` gate;
    everything is restored afterwards."""
    impls = [op.impls["xpu"] for op in ir.ops.all_ops().values() if "xpu" in op.impls]
    saved = [(impl, impl._supported, impl._unsupported_reason) for impl in impls]
    monkeypatch.setattr(build._State, "done", False)
    monkeypatch.setattr(build._State, "error", None)
    for impl in impls:
        impl._supported = provider.GATES[impl.op.name]
        impl._unsupported_reason = None
    yield
    for impl, sup, reason in saved:
        impl._supported, impl._unsupported_reason = sup, reason
    platforms.set_platform(None)


XPU_OPS = {"rms_norm", "fused_add_rms_norm", "silu_and_mul", "gelu_and_mul"}


def _impls() -> list[ir.IrOpImpl]:
    return [op.impls["xpu"] for op in ir.ops.all_ops().values() if "xpu" in op.impls]


def test_registered_ops_and_package() -> None:
    assert {i.op.name for i in _impls()} == XPU_OPS == set(provider.GATES)
    pkg = ir.provider_packages()["xpu"]
    assert pkg.loaded and pkg.error is None and pkg.providers == {"xpu"}


def test_signatures_match_native() -> None:
    for impl in _impls():
        op = impl.op
        assert inspect.signature(impl.fn) == op.signature, op.name
        assert infer_schema(impl.fn) == op.schema, op.name
        assert list(inspect.signature(impl.supports_args).parameters) == op.param_names, op.name
        assert impl.package == "ir-kernels-xpu"
    assert ir.ops.rms_norm.impls["xpu"].batch_invariant
    assert ir.ops.fused_add_rms_norm.impls["xpu"].batch_invariant


@pytest.mark.skipif(
    hasattr(torch, "xpu") and torch.xpu._is_compiled(), reason="checks non-XPU torch builds"
)
@pytest.mark.usefixtures("fresh_gates")
def test_unsupported_here_and_explained(capsys: pytest.CaptureFixture[str]) -> None:
    for impl in _impls():
        assert not impl.is_supported()
        assert "not built with XPU support" in (impl.unsupported_reason or "")
    assert not build._State.done  # nothing was built
    platforms.set_platform("xpu")
    e = ir.ops.rms_norm.explain(torch.randn(2, 64), torch.rand(64), 1e-6)
    assert e.priority[0] == "xpu"  # the platform default
    xpu = next(c for c in e.entries if c.provider == "xpu")
    assert xpu.status == "skipped" and "not built with XPU support" in xpu.reason
    assert e.chosen not in (None, "xpu")
    assert (
        ir_main(
            [
                "explain",
                "gelu_and_mul",
                "--shape",
                "2x64",
                "--dtype",
                "float32",
                "--device",
                "cpu",
                "--priority",
                "gelu_and_mul=xpu,native",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert any(
        ln.strip().startswith("xpu") and "not built with XPU support" in ln
        for ln in out.splitlines()
    )


@pytest.mark.usefixtures("fresh_gates")
def test_failed_build_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(build, "xpu_unavailable_reason", lambda: None)
    calls: list[str] = []

    def failing(key: str) -> None:
        calls.append(key)
        raise RuntimeError("icpx: error: unsupported option")

    monkeypatch.setattr(build, "compile_extension", failing)
    with caplog.at_level(logging.WARNING):
        assert not any(impl.is_supported() for impl in _impls())
    assert calls == [build.build_key()]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unsupported option" in warnings[0].getMessage()
    reason = ir.ops.silu_and_mul.impls["xpu"].unsupported_reason or ""
    assert "failed to build" in reason and "unsupported option" in reason


@pytest.mark.usefixtures("fresh_gates")
def test_successful_build_supports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "xpu_unavailable_reason", lambda: None)
    monkeypatch.setattr(build, "compile_extension", lambda key: None)
    assert all(impl.is_supported() for impl in _impls())


def test_supports_args_reject_non_xpu_tensors() -> None:
    x = torch.randn(2, 64)
    assert not ir.ops.silu_and_mul.impls["xpu"].accepts(x)
    assert not ir.ops.rms_norm.impls["xpu"].accepts(x, None, 1e-6, None)


def test_build_key_and_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    key = build.build_key()
    assert key == build.build_key() and len(key) == 64
    changed = tmp_path / "x.sycl"
    changed.write_text(build.source_file().read_text() + "\n// edit\n")
    assert build.build_key(changed) != key
    assert build.build_directory(key).parent == tmp_path
    assert torch.__version__ in build.build_directory(key).name


def test_xpu_platform_default() -> None:
    xpu = {p.name: p for p in platforms.BUILTIN_PLATFORMS}["xpu"]
    assert tuple(xpu.default_priority["*"]) == ("xpu", "triton", "native")
    assert xpu.device_type == "xpu"


SYCL_STUB = """#pragma once
#include <cmath>
#include <cstddef>
namespace sycl {
template <int N> struct range { explicit range(size_t) {} };
template <int N> struct nd_range { nd_range(range<N>, range<N>) {} };
struct group_t {};
template <int N> struct nd_item {
  size_t get_group(int) const { return 0; }
  group_t get_group() const { return {}; }
  size_t get_local_id(int) const { return 0; }
  size_t get_local_range(int) const { return 1; }
  size_t get_global_id(int) const { return 0; }
};
template <class T = void> struct plus { T operator()(T a, T b) const { return a + b; } };
template <class G, class T, class Op> T reduce_over_group(G, T v, Op) { return v; }
inline float rsqrt(float v) { return 1.0f / std::sqrt(v); }
inline float exp(float v) { return std::exp(v); }
inline float erf(float v) { return std::erf(v); }
inline float tanh(float v) { return std::tanh(v); }
struct half { half(float) {} operator float() const { return 0.f; } };
namespace ext::oneapi { struct bfloat16 { bfloat16(float) {} operator float() const { return 0.f; } }; }
namespace info::device { struct max_work_group_size {}; }
struct device { template <class T> size_t get_info() const { return 1024; } };
struct handler { template <class R, class K> void parallel_for(R, K k) { nd_item<1> it; k(it); } };
struct queue {
  device get_device() const { return {}; }
  template <class F> void submit(F f) { handler h; f(h); }
};
}
"""
XPU_STREAM_STUB = """#pragma once
#include <sycl/sycl.hpp>
#include <c10/core/Device.h>
namespace c10::xpu {
struct XPUStream { sycl::queue& queue() const { static sycl::queue q; return q; } };
inline XPUStream getCurrentXPUStream(c10::DeviceIndex = -1) { return {}; }
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_sycl_source_host_syntax(tmp_path: Path) -> None:
    """The C++ of the SYCL source (torch glue, templates, kernel functors)
    against torch's headers, with the SYCL API stubbed: catches C++ errors
    here; SYCL semantics need icpx and an Intel GPU."""
    (tmp_path / "sycl").mkdir()
    (tmp_path / "sycl" / "sycl.hpp").write_text(SYCL_STUB)
    (tmp_path / "c10" / "xpu").mkdir(parents=True)
    (tmp_path / "c10" / "xpu" / "XPUStream.h").write_text(XPU_STREAM_STUB)
    inc = Path(torch.__file__).parent / "include"
    std = "-std=c++20" if torch.__version__ >= "2.10" else "-std=c++17"
    cmd = [
        "g++",
        std,
        "-fsyntax-only",
        "-x",
        "c++",
        f"-I{tmp_path}",
        f"-I{inc}",
        f"-I{inc / 'torch/csrc/api/include'}",
        str(build.source_file()),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-4000:]
