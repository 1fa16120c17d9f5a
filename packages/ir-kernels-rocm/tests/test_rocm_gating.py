"""Gating: unsupported on this machine with a reason that ``explain`` and
``ir explain`` show; a failed build warns once; AITER checks."""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import types
from collections.abc import Iterator

import pytest
import torch

import ir_core as ir
from ir_core import platforms
from ir_core.cli import main as ir_main

# Load through the entry points first, as a real process does, so the
# implementations are attributed to their distribution.
ir.load_providers()

from ir_kernels_rocm import aiter_provider, arch, build, provider  # noqa: E402


def impls_of(name: str) -> list[ir.IrOpImpl]:
    return [op.impls[name] for op in ir.ops.all_ops().values() if name in op.impls]


@pytest.fixture
def fresh_gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the build/AITER outcome and re-arm every rocm/aiter ``supported``
    gate (ir-core caches the first answer); everything is restored afterwards."""
    ir.load_providers()
    saved = [
        (impl, impl._supported, impl._unsupported_reason)
        for p in ("rocm", "aiter")
        for impl in impls_of(p)
    ]
    monkeypatch.setattr(build._State, "done", False)
    monkeypatch.setattr(build._State, "features", frozenset())
    monkeypatch.setattr(build._State, "error", None)
    monkeypatch.setattr(aiter_provider._Aiter, "module", None)
    monkeypatch.setattr(aiter_provider._Aiter, "error", None)
    monkeypatch.setattr(aiter_provider._Aiter, "tried", False)
    for mod, name in ((provider, "rocm"), (aiter_provider, "aiter")):
        for impl in impls_of(name):
            impl._supported = mod.GATES[impl.op.name]
            impl._unsupported_reason = None
    yield
    for impl, sup, reason in saved:
        impl._supported, impl._unsupported_reason = sup, reason
    platforms.set_platform(None)


pytestmark = pytest.mark.usefixtures("fresh_gates")

ROCM_TORCH = torch.version.hip is not None
no_rocm_here = pytest.mark.skipif(
    ROCM_TORCH, reason="checks the behaviour on non-ROCm torch builds"
)


@no_rocm_here
def test_unsupported_here_with_reason() -> None:
    for name in ("rocm", "aiter"):
        for impl in impls_of(name):
            assert not impl.is_supported(), impl
            assert "not a ROCm (HIP) build" in (impl.unsupported_reason or ""), impl


@no_rocm_here
def test_no_build_attempted_without_rocm(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("must not build")

    monkeypatch.setattr(build, "compile_extension", boom)
    assert all(not impl.is_supported() for impl in impls_of("rocm"))
    assert not build._State.done


@no_rocm_here
def test_explain_says_why() -> None:
    platforms.set_platform("rocm")
    x, w = torch.randn(2, 64), torch.rand(64)
    e = ir.ops.rms_norm.explain(x, w, 1e-6)
    assert e.priority[:2] == ("aiter", "rocm")  # the platform default
    status = {c.provider: c for c in e.entries}
    for p in ("aiter", "rocm"):
        assert status[p].status == "skipped"
        assert (
            "unsupported here: torch" in status[p].reason
            and "not a ROCm (HIP) build" in status[p].reason
        )
    assert e.chosen not in ("aiter", "rocm") and e.chosen is not None
    assert str(e).count("not a ROCm (HIP) build") == 2


@no_rocm_here
def test_ir_explain_cli_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        ir_main(
            [
                "explain",
                "silu_and_mul",
                "--shape",
                "2x64",
                "--dtype",
                "float32",
                "--device",
                "cpu",
                "--priority",
                "silu_and_mul=aiter,rocm,native",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    lines = {
        ln.split()[0]: ln for ln in out.splitlines() if ln.strip().startswith(("aiter", "rocm"))
    }
    assert "not a ROCm (HIP) build" in lines["aiter"], out
    assert "not a ROCm (HIP) build" in lines["rocm"], out


def _pretend_rocm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arch, "rocm_unavailable_reason", lambda: None)
    monkeypatch.setattr(arch, "gfx_arch", lambda device=None: "gfx942:sramecc+:xnack-")
    monkeypatch.setattr(arch, "device_wavefront_size", lambda device=None: 64)


def test_failed_build_warns_once_and_explains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    _pretend_rocm(monkeypatch)
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    calls: list[build.BuildPlan] = []

    def failing(p: build.BuildPlan) -> None:
        calls.append(p)
        raise RuntimeError("Error building extension 'ir_rocm': hipcc not found")

    monkeypatch.setattr(build, "compile_extension", failing)
    with caplog.at_level(logging.WARNING):
        results = [impl.is_supported() for impl in impls_of("rocm")]
    assert results and not any(results)
    assert len(calls) == 1, "one build attempt per process"
    assert calls[0].wavefront == 64 and "-DIR_WARP_SIZE=64" in calls[0].defines()
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "ir_rocm" in r.getMessage()
    ]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "hipcc not found" in warnings[0].getMessage()
    reason = ir.ops.silu_and_mul.impls["rocm"].unsupported_reason or ""
    assert "failed to build" in reason and "hipcc not found" in reason


def test_successful_build_enables_built_features_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    _pretend_rocm(monkeypatch)
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(build, "compile_extension", lambda p: None)
    real_plan = build.plan

    def partial_plan(gfx: str, wavefront: int, **kw: object) -> build.BuildPlan:
        p = real_plan(gfx, wavefront, **kw)  # type: ignore[arg-type]
        return build.BuildPlan(
            p.arch,
            p.wavefront,
            p.kernel_files,
            p.glue_files,
            frozenset({"norm"}),
            p.key,
            p.directory,
        )

    monkeypatch.setattr(build, "plan", partial_plan)
    assert ir.ops.rms_norm.impls["rocm"].is_supported()
    assert ir.ops.fused_add_rms_norm.impls["rocm"].is_supported()
    silu = ir.ops.silu_and_mul.impls["rocm"]
    assert not silu.is_supported()
    assert "no launcher for 'act'" in (silu.unsupported_reason or "")


def _fake_aiter(monkeypatch: pytest.MonkeyPatch, fp8: torch.dtype) -> types.ModuleType:
    mod = types.ModuleType("aiter")
    mod.__spec__ = importlib.machinery.ModuleSpec("aiter", None)
    mod.__version__ = "0.0.test"  # type: ignore[attr-defined]
    mod.dtypes = types.SimpleNamespace(fp8=fp8)  # type: ignore[attr-defined]
    calls: list[str] = []
    mod.calls = calls  # type: ignore[attr-defined]

    def rmsnorm2d_fwd(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
        calls.append("rmsnorm2d_fwd")
        assert x.dim() == 2
        return ir.ops.rms_norm.native(x, w, eps)

    def rmsnorm2d_fwd_with_add(
        out: torch.Tensor,
        x: torch.Tensor,
        r_in: torch.Tensor,
        r_out: torch.Tensor,
        w: torch.Tensor,
        eps: float,
    ) -> None:
        calls.append("rmsnorm2d_fwd_with_add")
        o, r = ir.ops.fused_add_rms_norm.native(x, r_in, w, eps)
        out.copy_(o)
        r_out.copy_(r)

    def act(name: str, approximate: str | None) -> object:
        def fn(out: torch.Tensor, x: torch.Tensor) -> None:
            calls.append(name)
            ref = (
                ir.ops.silu_and_mul.native(x)
                if approximate is None
                else ir.ops.gelu_and_mul.native(x, approximate)
            )
            out.copy_(ref)

        return fn

    def static_per_tensor_quant(out: torch.Tensor, x: torch.Tensor, scale: torch.Tensor) -> None:
        calls.append("static_per_tensor_quant")
        out.copy_(ir.ops.static_scaled_fp8_quant.native(x, scale))

    def dynamic_per_token_scaled_quant(
        out: torch.Tensor,
        x: torch.Tensor,
        scales: torch.Tensor,
        scale_ub: torch.Tensor | None = None,
    ) -> None:
        calls.append("dynamic_per_token_scaled_quant")
        q, s = ir.ops.dynamic_per_token_scaled_fp8_quant.native(x, scale_ub)
        out.copy_(q)
        scales.copy_(s)

    def per_group_quant_hip(
        x: torch.Tensor,
        scale: object = None,
        quant_dtype: torch.dtype = torch.int8,
        group_size: int = 128,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append("per_group_quant_hip")
        assert quant_dtype == torch.float8_e4m3fn
        return ir.ops.per_token_group_quant_fp8.native(x, group_size)

    mod.rmsnorm2d_fwd = rmsnorm2d_fwd  # type: ignore[attr-defined]
    mod.rmsnorm2d_fwd_with_add = rmsnorm2d_fwd_with_add  # type: ignore[attr-defined]
    mod.silu_and_mul = act("silu_and_mul", None)  # type: ignore[attr-defined]
    mod.gelu_and_mul = act("gelu_and_mul", "none")  # type: ignore[attr-defined]
    mod.gelu_tanh_and_mul = act("gelu_tanh_and_mul", "tanh")  # type: ignore[attr-defined]
    mod.static_per_tensor_quant = static_per_tensor_quant  # type: ignore[attr-defined]
    mod.dynamic_per_token_scaled_quant = dynamic_per_token_scaled_quant  # type: ignore[attr-defined]
    mod.per_group_quant_hip = per_group_quant_hip  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aiter", mod)
    return mod


def test_aiter_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_rocm(monkeypatch)
    monkeypatch.setitem(sys.modules, "aiter", None)  # import aiter raises ImportError
    monkeypatch.setattr(aiter_provider.importlib.util, "find_spec", lambda name: None)
    impl = ir.ops.rms_norm.impls["aiter"]
    assert not impl.is_supported()
    assert "AITER is not installed" in (impl.unsupported_reason or "")


def test_aiter_fp8_needs_e4m3fn(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_rocm(monkeypatch)
    _fake_aiter(monkeypatch, torch.float8_e4m3fnuz)  # gfx942
    assert ir.ops.rms_norm.impls["aiter"].is_supported()
    assert ir.ops.silu_and_mul.impls["aiter"].is_supported()
    quant = ir.ops.static_scaled_fp8_quant.impls["aiter"]
    assert not quant.is_supported()
    assert "float8_e4m3fnuz" in (quant.unsupported_reason or "")


def test_aiter_missing_function_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_rocm(monkeypatch)
    mod = _fake_aiter(monkeypatch, torch.float8_e4m3fn)
    del mod.gelu_tanh_and_mul
    impl = ir.ops.gelu_and_mul.impls["aiter"]
    assert not impl.is_supported()
    assert "has no gelu_tanh_and_mul" in (impl.unsupported_reason or "")


def test_aiter_wrappers_call_aiter_with_its_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrappers' argument plumbing, against a stand-in with AITER's
    documented signatures (run on CPU tensors, bypassing supports_args)."""
    _pretend_rocm(monkeypatch)
    mod = _fake_aiter(monkeypatch, torch.float8_e4m3fn)
    assert aiter_provider.aiter_module() is mod
    torch.manual_seed(0)
    x, r, w = torch.randn(2, 3, 64), torch.randn(2, 3, 64), torch.rand(64)
    cases = [
        (ir.ops.rms_norm, (x, w, 1e-6)),
        (ir.ops.fused_add_rms_norm, (x, r, w, 1e-6)),
        (ir.ops.silu_and_mul, (x,)),
        (ir.ops.gelu_and_mul, (x, "none")),
        (ir.ops.gelu_and_mul, (x, "tanh")),
        (ir.ops.static_scaled_fp8_quant, (x, torch.tensor([0.01]))),
        (ir.ops.dynamic_per_token_scaled_fp8_quant, (x, None)),
        (ir.ops.per_token_group_quant_fp8, (x, 32)),
    ]
    for op, args in cases:
        got = op.impls["aiter"].fn(*args)
        want = op.native(*args)
        for g, e in zip(
            got if isinstance(got, tuple) else (got,),
            want if isinstance(want, tuple) else (want,),
            strict=True,
        ):
            assert g.shape == e.shape and g.dtype == e.dtype, op.name
            assert torch.equal(
                g.view(torch.uint8) if g.dtype.itemsize == 1 else g,
                e.view(torch.uint8) if e.dtype.itemsize == 1 else e,
            ), op.name
    assert mod.calls == [
        "rmsnorm2d_fwd",
        "rmsnorm2d_fwd_with_add",
        "silu_and_mul",
        "gelu_and_mul",
        "gelu_tanh_and_mul",
        "static_per_tensor_quant",
        "dynamic_per_token_scaled_quant",
        "per_group_quant_hip",
    ]


def test_aiter_supports_args_reject_cpu_and_fp32() -> None:
    x, w = torch.randn(2, 64), torch.rand(64)
    impl = ir.ops.rms_norm.impls["aiter"]
    assert not impl.accepts(x, w, 1e-6, None)
    assert not ir.ops.rms_norm.impls["rocm"].accepts(x, w, 1e-6, None)
