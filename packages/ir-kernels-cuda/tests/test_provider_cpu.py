"""CPU-only tests of the cuda provider: registration and schemas, gating,
cache keys, and the failed-build path (one warning, provider unsupported)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import ir_core as ir
from ir_core.impl import IrOpImpl
from ir_kernels_cuda import _fake, build, provider, runtime

NO_GPU = not torch.cuda.is_available()
BUILTIN_OPS = sorted(runtime.OP_NAMES)
INVARIANT = {
    "rms_norm",
    "fused_add_rms_norm",
    "rms_norm_static_fp8_quant",
    "fused_add_rms_norm_static_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
}
#: In-place forms of the C++ library (not registered with ir): name -> mutated arguments.
INPLACE_FORMS = {
    "fused_add_rms_norm_": {"x", "residual"},
    "fused_add_rms_norm_static_fp8_quant_": {"residual"},
    "rotary_embedding_": {"query", "key"},
}


def _cpp_schemas() -> dict[str, Any]:
    """The schemas ops.cpp defines, parsed (no library load needed)."""
    text = (build.source_dir() / "ops.cpp").read_text()
    out = {}
    for m in re.finditer(r'm\.def\(((?:\s*"[^"]*")+)', text):
        schema = "".join(re.findall(r'"([^"]*)"', m.group(1)))
        parsed = torch._C.parse_schema(schema)
        out[parsed.name] = parsed
    return out


def _types(args: Any) -> list[str]:
    return [str(a.type).replace("SymInt", "int") for a in args]


# ------------------------------------------------------------------ registration


def test_entry_point_names_the_provider_module() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="ir.providers")}
    assert eps.get("cuda") == "ir_kernels_cuda.provider"


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_every_op_has_a_cuda_impl_with_the_native_signature(name: str) -> None:
    ir.load_providers()
    op = getattr(ir.ops, name)
    impl = op.impls["cuda"]
    assert impl is provider.IMPLS[name]
    assert impl.batch_invariant is (name in INVARIANT or not op.has_reduction)
    assert impl.inplace is False  # functional: no clones of the activations per call
    assert impl.supports_args is not None  # everything else falls through
    native = torch._C.parse_schema(f"{name}{op.schema}")
    mine = torch._C.parse_schema(f"{name}{ir.schema.infer_schema(impl.fn)}")
    assert _types(mine.arguments) == _types(native.arguments)
    assert [a.name for a in mine.arguments] == [a.name for a in native.arguments]


def test_every_ir_core_op_is_covered() -> None:
    from ir_core.ops import __all__ as core_ops

    assert sorted(core_ops) == BUILTIN_OPS


def _mutated(schema: Any) -> set[str]:
    return {a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write}


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_cpp_schema_matches_the_ir_op(name: str) -> None:
    """ir_cuda.<op> takes the IR op's arguments in the same order and types and
    returns what the IR op returns, so the wrappers pass them straight through;
    like the IR op it is functional (mutates nothing)."""
    cpp = _cpp_schemas()[name]
    native = torch._C.parse_schema(f"{name}{getattr(ir.ops, name).schema}")
    assert _types(cpp.arguments) == _types(native.arguments)
    assert _types(cpp.returns) == _types(native.returns)
    assert _mutated(cpp) == set()


@pytest.mark.parametrize("name", sorted(INPLACE_FORMS))
def test_cpp_inplace_forms_declare_their_mutations(name: str) -> None:
    """``<op>_`` takes the functional op's arguments and writes into its buffers."""
    cpp = _cpp_schemas()
    functional = cpp[name.rstrip("_")]
    assert _types(cpp[name].arguments) == _types(functional.arguments)
    assert _mutated(cpp[name]) == INPLACE_FORMS[name]


def test_cpp_defines_nothing_unexpected() -> None:
    assert set(runtime.INPLACE_OP_NAMES) == set(INPLACE_FORMS)
    assert set(_cpp_schemas()) == {*runtime.ALL_OP_NAMES, "_norm_chunks_per_thread"}


def test_group_lanes_mirrors_the_kernel_rule() -> None:
    # The fewest lanes (power of two dividing the chunks) with <= 4 chunks each.
    assert provider.group_lanes(128, 2) == 4  # 16 chunks of 8 bf16: 4 lanes x 4 chunks
    assert provider.group_lanes(128, 4) == 8  # 32 chunks of 4 fp32
    assert provider.group_lanes(64, 2) == 2
    assert provider.group_lanes(8, 2) == 1  # one chunk
    assert provider.group_lanes(24, 2) == 1  # 3 chunks: one lane keeps them all
    assert provider.group_lanes(96, 2) == 4  # 12 chunks: 4 lanes x 3 chunks
    assert provider.group_lanes(1024, 2) == 32  # 128 chunks: 32 lanes x 4
    assert provider.group_lanes(2048, 2) == 0  # 8 chunks per lane: too many
    assert provider.group_lanes(40, 2) == 0  # 5 chunks: odd and more than 4
    assert provider.group_lanes(4, 2) == 0  # under 16 bytes
    assert provider.group_lanes(0, 2) == 0


# ------------------------------------------------------------------ fake kernels


@pytest.fixture
def python_defined_ir_cuda(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Define the ir_cuda schemas from Python (no C++ library on this machine)
    and register the fake kernels, so the wrappers can be traced."""
    if not NO_GPU:
        pytest.skip("a GPU is present: the real library is tested by test_cuda_gpu.py")
    if not hasattr(torch.ops.ir_cuda, "rms_norm"):
        lib = torch.library.Library("ir_cuda", "DEF")
        for schema in _cpp_schemas().values():
            lib.define(str(schema))
        python_defined_ir_cuda.lib = lib  # type: ignore[attr-defined]  # keep alive
    _fake.register()
    ns = torch.ops.ir_cuda
    monkeypatch.setattr(
        runtime, "K", SimpleNamespace(**{n: getattr(ns, n).default for n in runtime.ALL_OP_NAMES})
    )
    return ns


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_wrappers_and_fakes_give_native_shapes_and_dtypes(
    python_defined_ir_cuda: Any, name: str
) -> None:
    op = getattr(ir.ops, name)
    fn = op.impls["cuda"].fn
    for dtype in (torch.float32, torch.bfloat16):
        for variant in op.test_variants:
            torch.manual_seed(0)
            args = op.input_generator(3, 128, dtype, "cpu", **variant)
            expected = op.native(*args)
            with FakeTensorMode() as mode:
                fake_args = [
                    mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args
                ]
                got = fn(*fake_args)
            exp_l = list(expected) if isinstance(expected, tuple) else [expected]
            got_l = list(got) if isinstance(got, tuple) else [got]
            assert len(got_l) == len(exp_l)
            for g, e in zip(got_l, exp_l, strict=True):
                if e is None:
                    assert g is None
                    continue
                assert tuple(g.shape) == tuple(e.shape), (name, variant)
                assert g.dtype == e.dtype, (name, variant)


# ------------------------------------------------------------------ gating


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU gating")
def test_unsupported_without_gpu_and_explain_says_why() -> None:
    x = torch.randn(4, 64)
    for name in BUILTIN_OPS:
        impl = getattr(ir.ops, name).impls["cuda"]
        assert impl.is_supported() is False
        assert "no CUDA GPU" in (impl.unsupported_reason or "")
    with ir.priority(rms_norm=["cuda", "native"]):
        text = str(ir.ops.rms_norm.explain(x, None, 1e-6))
        assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "native"
    assert re.search(r"cuda\s+skipped\s+unsupported here: no CUDA GPU", text), text


def test_supports_args_rejects_cpu_tensors() -> None:
    x = torch.randn(4, 64)
    assert not provider._rms_norm_ok(x, None, 1e-6)
    assert not provider._silu_ok(x)
    assert not provider._static_ok(x, torch.ones(1))


def test_import_and_provider_loading_do_not_build() -> None:
    code = (
        "import ir_core as ir; ir.load_providers(); "
        "from ir_kernels_cuda import runtime; "
        "assert ir.ops.rms_norm.impls['cuda'] is not None; "
        "print(runtime._status, runtime.library_path())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None"]  # ensure_loaded never ran: nothing built


# ------------------------------------------------------------------ cache keys


def _copy_sources(dst: Path) -> list[Path]:
    dst.mkdir()
    out = []
    for p in build.source_files():
        q = dst / p.name
        q.write_bytes(p.read_bytes())
        out.append(q)
    return out


def test_cache_key_covers_sources_arch_and_toolchain(tmp_path: Path) -> None:
    srcs = _copy_sources(tmp_path / "src")
    base = build.cache_key("9.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs)
    assert base == build.cache_key("9.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs)
    assert base != build.cache_key("8.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs)
    assert base != build.cache_key("9.0", torch_version="2.12.0", cuda_version="13.0", sources=srcs)
    assert base != build.cache_key("9.0", torch_version="2.11.0", cuda_version="12.8", sources=srcs)
    norm = next(p for p in srcs if p.name == "norm.cu")
    norm.write_text(norm.read_text() + "\n// edited\n")
    assert base != build.cache_key("9.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs)
    header = next(p for p in srcs if p.name == "common.cuh")
    before = build.cache_key("9.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs)
    header.write_text(header.read_text() + "\n")
    assert before != build.cache_key(
        "9.0", torch_version="2.11.0", cuda_version="13.0", sources=srcs
    )


def test_sources_ship_in_the_package() -> None:
    names = {p.name for p in build.source_files()}
    assert {
        "common.cuh",
        "launch.h",
        "ops.cpp",
        "norm.cu",
        "activation.cu",
        "rotary.cu",
        "quant.cu",
    } <= names
    assert build.source_dir().parent == Path(build.__file__).resolve().parent


def test_target_lives_under_ir_cuda_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    t = build.target("9.0")
    assert t.directory.parent == tmp_path
    assert t.directory.name.startswith("sm90-torch")
    assert t.key[:16] in t.directory.name and t.name == f"ir_cuda_{t.key[:16]}"
    assert build.target("8.0").directory != t.directory
    monkeypatch.delenv(build.ENV_CACHE)
    assert build.cache_root() == Path.home() / ".cache" / "ir-kernels-cuda"


def test_gencode_flags() -> None:
    assert build.gencode_flags("9.0") == ["-gencode=arch=compute_90,code=sm_90"]
    assert build.gencode_flags("10.0") == ["-gencode=arch=compute_100,code=sm_100"]
    with pytest.raises(ValueError, match="bad GPU architecture"):
        build.gencode_flags("sm90")


def test_cached_library_is_reused_without_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    t = build.target("9.0")
    t.directory.mkdir(parents=True)
    t.library.write_bytes(b"not really a library")

    def boom(*_: Any) -> None:
        raise AssertionError("compiled although the library was cached")

    monkeypatch.setattr(build, "_compile", boom)
    assert build.build("9.0") == t.library


# ------------------------------------------------------------------ failed build


@pytest.fixture
def fresh_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(runtime, "gpu_problem", lambda: None)  # pretend an sm_90 GPU
    monkeypatch.setattr(build, "current_arch", lambda: "9.0")
    runtime._reset_for_tests()
    yield runtime
    runtime._reset_for_tests()


def test_failed_build_warns_once_and_leaves_the_provider_unsupported(
    fresh_runtime: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    compiled: list[str] = []

    def failing_compile(t: build.BuildTarget, verbose: bool) -> None:
        compiled.append(t.name)
        raise RuntimeError("Error building extension: nvcc fatal : Unsupported gpu architecture")

    monkeypatch.setattr(build, "_compile", failing_compile)
    caplog.set_level(logging.WARNING)
    assert fresh_runtime.ensure_loaded() is False
    assert fresh_runtime.ensure_loaded() is False  # cached: no second attempt, no second warning
    assert len(compiled) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    log = build.target("9.0").log
    assert str(log) in warnings[0].getMessage()
    assert "Unsupported gpu architecture" in log.read_text()
    reason = fresh_runtime.unavailable_reason()
    assert reason is not None and str(log) in reason

    # an implementation wired like the registered ones reports it in explain()
    impl = IrOpImpl(
        ir.ops.rms_norm,
        "cuda_probe",
        provider.rms_norm,
        supported=provider.supported,
        supports_args=provider._rms_norm_ok,
        inplace=False,
        batch_invariant=True,
        package="ir-kernels-cuda",
    )
    assert impl.is_supported() is False
    assert str(log) in (impl.unsupported_reason or "")
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1

    with pytest.raises(RuntimeError, match="unavailable"):
        _ = fresh_runtime.K.rms_norm


def test_toolchain_crash_is_contained(
    fresh_runtime: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(t: build.BuildTarget, verbose: bool) -> None:
        raise OSError("CUDA_HOME environment variable is not set")

    monkeypatch.setattr(build, "_compile", crash)
    caplog.set_level(logging.WARNING)
    assert fresh_runtime.ensure_loaded() is False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "compiler log" in warnings[0].getMessage()
    assert "CUDA_HOME" in build.target("9.0").log.read_text()


def test_cuda_home_without_headers_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch.utils.cpp_extension as cpp_ext

    if not build._has_toolkit("/usr/local/cuda"):
        pytest.skip("no CUDA toolkit in /usr/local/cuda on this machine")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setattr(cpp_ext, "CUDA_HOME", str(tmp_path))  # a guess without headers
    build._fix_cuda_home()
    assert cpp_ext.CUDA_HOME == "/usr/local/cuda"
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))  # an explicit choice is left alone
    monkeypatch.setattr(cpp_ext, "CUDA_HOME", str(tmp_path))
    build._fix_cuda_home()
    assert str(tmp_path) == cpp_ext.CUDA_HOME


def test_kernels_uses_the_direct_bindings_only_when_nothing_traces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import TorchDispatchMode

    direct = object()
    x = torch.zeros(2, 8)
    monkeypatch.setattr(runtime, "_direct", None)
    assert runtime.kernels(x) is runtime.K  # no bindings: the torch ops
    monkeypatch.setattr(runtime, "_direct", direct)
    assert runtime.kernels(x, None, torch.nn.Parameter(torch.ones(8))) is direct
    with FakeTensorMode() as mode:
        assert runtime.kernels(mode.from_tensor(x)) is runtime.K

    class Passthrough(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            return func(*args, **(kwargs or {}))

    with Passthrough():
        assert runtime.kernels(x) is runtime.K
    seen = []

    @torch.compile(backend="eager", fullgraph=False)
    def traced(t: torch.Tensor) -> torch.Tensor:
        seen.append(runtime.kernels(t) is direct)
        return t + 1

    traced(x)
    assert seen == [False]  # while dynamo traces, never the direct path


def test_set_knob_needs_the_loaded_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    from ir_kernels_cuda import runtime

    monkeypatch.setattr(runtime, "_library", None)
    with pytest.raises(RuntimeError, match="not loaded"):
        runtime.set_knob("fp8_div", 1)
