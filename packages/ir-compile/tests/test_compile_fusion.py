"""Fusion passes on IR ops: node counts before/after, numerics after lowering."""

from __future__ import annotations

import torch
from compile_helpers import ir_targets, run_pass, trace

import ir_core as ir
from ir_compile import FUSIONS, IrLoweringPass, run_fusions
from ir_core.ops.quant import unit_scale

ops = ir.ops
EPS = 1e-6


def _inputs(tokens=6, hidden=32):
    torch.manual_seed(0)
    x, r = torch.randn(tokens, hidden), torch.randn(tokens, hidden)
    w = 1.0 + 0.1 * torch.randn(hidden)
    return x, r, w, unit_scale(ops.rms_norm.native(x + r, w, EPS))


def add_norm(x, r, w, s):
    h = x + r
    return ops.rms_norm(h, w, EPS), h * 2  # the residual has another user


def norm_quant(x, r, w, s):
    return ops.static_scaled_fp8_quant(ops.rms_norm(x, w, EPS), s)


def add_norm_quant(x, r, w, s):
    h = x + r
    return ops.static_scaled_fp8_quant(ops.rms_norm(h, w, EPS), s), h


def _fused(fn, args, fusions=FUSIONS):
    gm = trace(fn, *args)
    before = ir_targets(gm)
    counts = run_fusions(gm.graph, fusions)
    gm.recompile()
    return gm, before, ir_targets(gm), counts


def test_add_rms_norm():
    args = _inputs()
    gm, before, after, counts = _fused(add_norm, args)
    assert before == ["rms_norm.default"]
    assert after == ["fused_add_rms_norm.default"]
    assert counts["add_rms_norm"] == 1
    assert not any(n.target is torch.ops.aten.add.Tensor for n in gm.graph.nodes)
    fused_out = gm(*args)
    run_pass(gm, IrLoweringPass())
    for got, want in zip(gm(*args), add_norm(*args), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for got, want in zip(fused_out, add_norm(*args), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_rms_norm_quant():
    args = _inputs()
    gm, before, after, counts = _fused(norm_quant, args)
    assert before == ["rms_norm.default", "static_scaled_fp8_quant.default"]
    assert after == ["rms_norm_static_fp8_quant.default"]
    assert counts["rms_norm_quant"] == 1
    run_pass(gm, IrLoweringPass())
    got = gm(*args)
    assert got.dtype == torch.float8_e4m3fn
    assert torch.equal(got.float(), norm_quant(*args).float())


def test_add_rms_norm_quant_chain():
    args = _inputs()
    gm, before, after, counts = _fused(add_norm_quant, args)
    assert before == ["rms_norm.default", "static_scaled_fp8_quant.default"]
    assert after == ["fused_add_rms_norm_static_fp8_quant.default"]
    assert counts == {"add_rms_norm": 1, "add_rms_norm_quant": 1, "rms_norm_quant": 0}
    run_pass(gm, IrLoweringPass())
    (q, h), (q_ref, h_ref) = gm(*args), add_norm_quant(*args)
    assert torch.equal(q.float(), q_ref.float())
    torch.testing.assert_close(h, h_ref, rtol=0, atol=0)


def test_switches_and_non_matches():
    args = _inputs()
    _, _, after, _ = _fused(add_norm_quant, args, fusions=["rms_norm_quant"])
    assert after == ["rms_norm_static_fp8_quant.default"]  # add stays a plain add
    _, _, after, _ = _fused(add_norm_quant, args, fusions=[])
    assert after == ["rms_norm.default", "static_scaled_fp8_quant.default"]

    def norm_used_twice(x, r, w, s):
        y = ops.rms_norm(x, w, EPS)
        return ops.static_scaled_fp8_quant(y, s), y

    def broadcast_add(x, r, w, s):
        return ops.rms_norm(x + r[0], w, EPS)

    def partial_variance(x, r, w, s):
        return ops.static_scaled_fp8_quant(ops.rms_norm(x, w, EPS, 8), s)

    for fn in (norm_used_twice, broadcast_add, partial_variance):
        _, before, after, _ = _fused(fn, args)
        assert before == after, fn.__name__


def test_lowering_pass_runs_its_fusions_first():
    args = _inputs()
    p = IrLoweringPass(fusions=FUSIONS)
    gm = run_pass(trace(add_norm_quant, *args), p)
    assert ir_targets(gm) == []
    assert [d.op for d in p.decisions] == ["fused_add_rms_norm_static_fp8_quant"]
    assert p.fusion_counts["add_rms_norm_quant"] == 1
