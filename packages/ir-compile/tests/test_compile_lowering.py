"""IrLoweringPass on make_fx graphs with fake values (no Inductor compile: cheap)."""

from __future__ import annotations

import pytest
import torch
from compile_helpers import ir_targets, run_pass, trace

import ir_core as ir
from ir_compile import IrLoweringError, IrLoweringPass, cache_key

ops = ir.ops


def _rms(x, w):
    return ops.rms_norm(x, w, 1e-6)


def _inputs(tokens=4, hidden=16):
    torch.manual_seed(0)
    return torch.randn(tokens, hidden), 1.0 + 0.1 * torch.randn(hidden)


def test_native_lowering_leaves_no_ir_node_and_matches_eager():
    x, w = _inputs()
    gm = trace(_rms, x, w)
    assert ir_targets(gm) == ["rms_norm.default"]
    p = IrLoweringPass()
    run_pass(gm, p)
    assert ir_targets(gm) == []
    assert [(d.op, d.provider) for d in p.decisions] == [("rms_norm", "native")]
    torch.testing.assert_close(gm(x, w), ops.rms_norm.native(x, w, 1e-6), rtol=0, atol=0)
    # native code became plain ATen ops Inductor can fuse
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert any("rsqrt" in t for t in targets)


def test_priority_chooses_provider(temp_impl):
    def plus_one(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 1

    name = temp_impl(ops.rms_norm, plus_one)
    x, w = _inputs()
    with ir.priority(rms_norm=[name, "native"]):
        gm = run_pass(trace(_rms, x, w), p := IrLoweringPass())
    assert p.decisions[0].provider == name
    torch.testing.assert_close(gm(x, w), ops.rms_norm.native(x, w, 1e-6) + 1)


def test_batch_invariant_mode_and_supports_args(temp_impl):
    def a(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 1

    def b(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 2

    pa = temp_impl(
        ops.rms_norm,
        a,
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[-1] % 2 == 0,
    )
    pb = temp_impl(ops.rms_norm, b, batch_invariant=True)
    with ir.priority(rms_norm=[pa, pb]):
        for hidden, want in ((16, pa), (15, pb)):
            x, w = _inputs(hidden=hidden)
            p = IrLoweringPass()
            run_pass(trace(_rms, x, w), p)
            assert p.decisions[0].provider == want
        with ir.batch_invariant():
            x, w = _inputs(hidden=16)
            p = IrLoweringPass()
            run_pass(trace(_rms, x, w), p)
            assert p.decisions[0].provider == pb


def test_batch_invariant_without_invariant_impl_is_an_error_naming_the_op():
    x, w = _inputs()
    gm = trace(_rms, x, w)
    with ir.batch_invariant(), pytest.raises(IrLoweringError, match="rms_norm"):
        IrLoweringPass()(gm.graph)


def test_symbolic_size_supports_args_is_skipped_without_guard(temp_impl):
    def a(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 1

    def b(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 2

    by_batch = temp_impl(
        ops.rms_norm,
        a,
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[0] <= 64,
    )
    by_dtype = temp_impl(
        ops.rms_norm,
        b,
        supports_args=lambda x, weight, epsilon, variance_size=None: x.dtype == torch.float32,
    )
    x, w = _inputs(tokens=5, hidden=16)
    gm = trace(_rms, x, w, mode="symbolic")
    shape_env = (
        next(n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder").shape[0].node.shape_env
    )
    guards_before = len(shape_env.guards)
    with ir.priority(rms_norm=[by_batch, by_dtype, "native"]):
        p = IrLoweringPass()
        run_pass(gm, p)
    assert p.decisions[0].provider == by_dtype
    assert any(by_batch in note and "symbolic" in note for note in p.notes)
    assert len(shape_env.guards) == guards_before
    for tokens in (3, 100):  # one graph, every size
        x, w = _inputs(tokens=tokens, hidden=16)
        torch.testing.assert_close(gm(x, w), ops.rms_norm.native(x, w, 1e-6) + 2)


@torch.library.custom_op("ir_compile_test::scaled_silu", mutates_args=())
def _scaled_silu(x: torch.Tensor) -> torch.Tensor:
    return ops.silu_and_mul.native(x) * 3


@_scaled_silu.register_fake
def _(x):
    return x.new_empty(*x.shape[:-1], x.shape[-1] // 2)


def test_opaque_kernel_op_stays_one_call(temp_impl):
    name = temp_impl(ops.silu_and_mul, lambda x: torch.ops.ir_compile_test.scaled_silu(x))
    x = torch.randn(3, 8)
    with ir.priority(silu_and_mul=[name]):
        gm = run_pass(trace(lambda t: ops.silu_and_mul(t), x), IrLoweringPass())
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert [n.target for n in calls] == [torch.ops.ir_compile_test.scaled_silu.default]
    torch.testing.assert_close(gm(x), ops.silu_and_mul.native(x) * 3)


def _inplace_fused(x, x_residual, weight, epsilon, variance_size=None):
    out, res = ops.fused_add_rms_norm.native(x, x_residual, weight, epsilon, variance_size)
    x_residual.copy_(res)
    x.copy_(out * 2)  # distinct effect: twice the norm
    return x, x_residual


def _fused_inputs():
    torch.manual_seed(1)
    return torch.randn(4, 16), torch.randn(4, 16), 1.0 + 0.1 * torch.randn(16)


def test_inplace_impl_under_functional_overload_does_not_touch_inputs(temp_impl):
    name = temp_impl(ops.fused_add_rms_norm, _inplace_fused, inplace=True)
    x, r, w = _fused_inputs()
    x0, r0 = x.clone(), r.clone()
    with ir.priority(fused_add_rms_norm=[name]):
        gm = run_pass(
            trace(lambda a, b, c: ops.fused_add_rms_norm(a, b, c, 1e-6), x, r, w), IrLoweringPass()
        )
    out, res = gm(x, r, w)
    ref_out, ref_res = ops.fused_add_rms_norm.native(x0, r0, w, 1e-6)
    torch.testing.assert_close(out, ref_out * 2)
    torch.testing.assert_close(res, ref_res)
    assert torch.equal(x, x0) and torch.equal(r, r0)


@pytest.mark.parametrize("provider", ["inplace", "native"])
def test_maybe_inplace_after_functionalization(temp_impl, provider):
    name = temp_impl(ops.fused_add_rms_norm, _inplace_fused, inplace=True)
    x, r, w = _fused_inputs()

    def f(a, b, c):
        out, res = ops.fused_add_rms_norm.maybe_inplace(a.clone(), b.clone(), c, 1e-6)
        return out + 0, res + 0

    prio = [name] if provider == "inplace" else ["native"]
    with ir.priority(fused_add_rms_norm=prio):
        gm = trace(f, x, r, w, functionalize=True)
        assert ir_targets(gm) == ["fused_add_rms_norm.maybe_inplace"]
        assert "auto_functionalized" in str(gm.graph)
        p = IrLoweringPass()
        run_pass(gm, p)
    assert ir_targets(gm) == []
    assert p.decisions[0].provider == (name if provider == "inplace" else "native")
    out, res = gm(x, r, w)
    ref_out, ref_res = ops.fused_add_rms_norm.native(x, r, w, 1e-6)
    torch.testing.assert_close(out, ref_out * (2 if provider == "inplace" else 1))
    torch.testing.assert_close(res, ref_res)


def test_impl_calling_other_ir_ops_is_lowered_recursively(temp_impl):
    def via_rms(x, x_residual, weight, epsilon, variance_size=None):
        res = x + x_residual
        return ops.rms_norm(res, weight, epsilon, variance_size), res

    name = temp_impl(ops.fused_add_rms_norm, via_rms)
    x, r, w = _fused_inputs()
    with ir.priority(fused_add_rms_norm=[name]):
        p = IrLoweringPass()
        gm = run_pass(trace(lambda a, b, c: ops.fused_add_rms_norm(a, b, c, 1e-6), x, r, w), p)
    assert ir_targets(gm) == []
    assert [(d.op, d.provider) for d in p.decisions] == [
        ("fused_add_rms_norm", name),
        ("rms_norm", "native"),
    ]
    torch.testing.assert_close(gm(x, r, w)[0], ops.fused_add_rms_norm.native(x, r, w, 1e-6)[0])


def test_node_that_cannot_be_lowered_is_an_error_naming_the_op(temp_impl):
    name = temp_impl(ops.silu_and_mul, lambda x: ops.silu_and_mul(x))  # calls itself forever
    x = torch.randn(2, 8)
    with ir.priority(silu_and_mul=[name]):
        gm = trace(lambda t: ops.silu_and_mul(t), x)
        with pytest.raises(IrLoweringError, match="silu_and_mul"):
            IrLoweringPass()(gm.graph)


def test_uuid_covers_priority_mode_impls_and_options(temp_impl):
    base = IrLoweringPass().uuid()
    assert IrLoweringPass().uuid() == base  # stable
    with ir.priority(rms_norm=["native"]):
        assert IrLoweringPass().uuid() != base  # scoped priority (even to the same list)
    ir.set_priority({"silu_and_mul": ["triton", "native"]})
    assert IrLoweringPass().uuid() != base
    ir.set_priority(None)
    assert IrLoweringPass().uuid() == base
    with ir.batch_invariant():
        assert IrLoweringPass().uuid() != base
    assert IrLoweringPass(fusions=["add_rms_norm"]).uuid() != base
    name = temp_impl(ops.gelu_and_mul, lambda x, approximate="none": x[..., : x.shape[-1] // 2])
    with_impl = IrLoweringPass().uuid()
    assert with_impl != base
    ops.gelu_and_mul.unregister_impl(name)
    assert IrLoweringPass().uuid() == base
    assert cache_key() == cache_key()


def test_supports_args_that_needs_real_data_is_skipped(temp_impl):
    def plus_one(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 1

    name = temp_impl(
        ops.rms_norm,
        plus_one,
        supports_args=lambda x, weight, epsilon, variance_size=None: x.data_ptr() % 16 == 0,
    )
    x, w = _inputs()
    with ir.priority(rms_norm=[name, "native"]):
        p = IrLoweringPass()
        gm = run_pass(trace(_rms, x, w), p)
    assert p.decisions[0].provider == "native"
    assert any(name in n and "fake values" in n for n in p.notes)
    torch.testing.assert_close(gm(x, w), ops.rms_norm.native(x, w, 1e-6))
