"""End to end through torch.compile and Inductor's CPU backend (compile-heavy: few, small)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch._dynamo.utils import counters
from torch._inductor import config as inductor_config
from torch._inductor.custom_graph_pass import CustomGraphPass

import ir_compile
import ir_core as ir
from ir_compile.lowering import IrLoweringPass

ops = ir.ops
EPS = 1e-6


def _fresh_cache_cm():
    utils = torch._inductor.utils
    return getattr(utils, "fresh_cache", None) or utils.fresh_inductor_cache


@pytest.fixture(autouse=True)
def _fresh_dynamo_and_caches(tmp_path):
    """Each test compiles from scratch: on a cache hit the passes do not run
    (the compiled code is reused), so there would be no decisions to check."""
    torch._dynamo.reset()
    with _fresh_cache_cm()(dir=str(tmp_path)):
        yield
    torch._dynamo.reset()


class Recorder(CustomGraphPass):
    """A user's post-grad pass: records the IR ops it sees."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def __call__(self, graph: torch.fx.Graph) -> None:
        from ir_compile._graph import ir_overload

        self.seen.append([str(o) for n in graph.nodes if (o := ir_overload(n)) is not None])

    def uuid(self) -> str:
        return "ir-compile-test-recorder-1"


def block(x, r, w):
    h = x + r
    y = ops.rms_norm(h, w, EPS)
    return ops.silu_and_mul(torch.cat([y, 0.5 * y], dim=-1)), h


def test_backend_lowers_fuses_and_composes_with_user_pass():
    torch.manual_seed(0)
    x, r, w = torch.randn(5, 32), torch.randn(5, 32), 1 + 0.1 * torch.randn(32)
    rec = Recorder()
    be = ir_compile.backend()
    with inductor_config.patch(post_grad_custom_post_pass=rec):
        out = torch.compile(block, backend=be, fullgraph=True)(x, r, w)
        assert inductor_config.post_grad_custom_post_pass is rec  # not overwritten
    # the user's pass ran first and saw the IR ops before fusion and lowering
    assert rec.seen == [["ir.rms_norm.default", "ir.silu_and_mul.default"]]
    assert be.compiles == 1
    assert [(d.op, d.provider) for d in be.decisions] == [
        ("fused_add_rms_norm", "native"),
        ("silu_and_mul", "native"),
    ]
    assert be.passes[0].fusion_counts["add_rms_norm"] == 1
    for got, want in zip(out, block(x, r, w), strict=True):
        torch.testing.assert_close(got, want)


def test_backend_options_switch_fusions_and_user_pass_after():
    x, r, w = torch.randn(3, 16), torch.randn(3, 16), torch.randn(16)
    rec = Recorder()
    be = ir_compile.backend(fuse_add_rms_norm=False, user_pass_first=False)
    patches = be.config_patches(IrLoweringPass())
    assert isinstance(patches["post_grad_custom_post_pass"], IrLoweringPass)
    with inductor_config.patch(post_grad_custom_post_pass=rec):
        composed = be.config_patches(IrLoweringPass())["post_grad_custom_post_pass"]
        assert isinstance(composed, ir_compile.ComposedPass)
        assert composed.passes[0] is not rec and composed.passes[1] is rec
        out = torch.compile(block, backend=be)(x, r, w)
    assert rec.seen == [[]]  # ran after lowering
    assert [d.op for d in be.decisions] == ["rms_norm", "silu_and_mul"]
    torch.testing.assert_close(out[0], block(x, r, w)[0])


def test_composed_uuid():
    p = IrLoweringPass()
    assert ir_compile.ComposedPass([Recorder(), p]).uuid() is not None
    assert (
        ir_compile.ComposedPass([Recorder(), p]).uuid()
        == ir_compile.ComposedPass([Recorder(), p]).uuid()
    )
    assert ir_compile.ComposedPass([lambda g: None, p]).uuid() is None  # unkeyed: no caching


@contextlib.contextmanager
def _fresh_caches(tmp_path):
    from torch._functorch import config as functorch_config

    fresh = (
        getattr(torch._inductor.utils, "fresh_cache", None)
        or torch._inductor.utils.fresh_inductor_cache
    )
    with (
        fresh(dir=str(tmp_path)),
        inductor_config.patch(fx_graph_cache=True),
        functorch_config.patch(enable_autograd_cache=True),
    ):
        yield


def test_caches_never_serve_another_choice(temp_impl, tmp_path, monkeypatch):
    def plus_1000(x, weight, epsilon, variance_size=None):
        return ops.rms_norm.native(x, weight, epsilon, variance_size) + 1000

    name = temp_impl(ops.rms_norm, plus_1000)
    x, w = torch.randn(4, 16), torch.randn(16)
    native = ops.rms_norm.native(x, w, EPS) * 2

    def f(a, b):
        return ops.rms_norm(a, b, EPS) * 2

    def run(prio):
        torch._dynamo.reset()
        with ir.priority(rms_norm=prio):
            return torch.compile(f, backend=ir_compile.backend())(x, w)

    def hits():
        return (
            counters["inductor"]["fxgraph_cache_hit"]
            + counters["aot_autograd"]["autograd_cache_hit"]
        )

    with _fresh_caches(tmp_path):
        counters.clear()
        torch.testing.assert_close(run([name]), (native / 2 + 1000) * 2)
        torch.testing.assert_close(run(["native"]), native)  # a stale entry would give +1000
        assert hits() == 0
        torch.testing.assert_close(run([name]), (native / 2 + 1000) * 2)
        assert hits() >= 1  # the cache is on and served the matching entry
        # Control: with a key blind to the priority the cache *does* serve stale code,
        # so the assertions above can fail.
        monkeypatch.setattr(IrLoweringPass, "uuid", lambda self: "constant")
        run([name])
        stale = run(["native"])
        assert torch.allclose(stale, (native / 2 + 1000) * 2)


def test_dynamic_batch_compiles_once(temp_impl):
    def plus(k):
        def impl(x, weight, epsilon, variance_size=None):
            return ops.rms_norm.native(x, weight, epsilon, variance_size) + k

        return impl

    by_batch = temp_impl(
        ops.rms_norm,
        plus(1),
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[0] <= 64,
    )
    by_hidden = temp_impl(
        ops.rms_norm,
        plus(2),
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[-1] % 16 == 0,
    )
    w = torch.randn(32)
    be = ir_compile.backend()
    cf = torch.compile(lambda a, b: ops.rms_norm(a, b, EPS), backend=be)
    counters.clear()
    with ir.priority(rms_norm=[by_batch, by_hidden, "native"]):
        for tokens in (4, 7, 33, 100):
            x = torch.randn(tokens, 32)
            torch._dynamo.mark_dynamic(x, 0)
            torch.testing.assert_close(cf(x, w), ops.rms_norm.native(x, w, EPS) + 2)
    assert be.compiles == 1
    assert counters["stats"]["unique_graphs"] == 1
    assert [d.provider for d in be.decisions] == [by_hidden]
    assert any(by_batch in n for n in be.passes[0].notes)


def _inplace_fused(x, x_residual, weight, epsilon, variance_size=None):
    out, res = ops.fused_add_rms_norm.native(x, x_residual, weight, epsilon, variance_size)
    x_residual.copy_(res)
    x.copy_(out * 2)
    return x, x_residual


def test_maybe_inplace_with_inplace_impl_through_inductor(temp_impl):
    name = temp_impl(ops.fused_add_rms_norm, _inplace_fused, inplace=True)
    x, r, w = torch.randn(4, 16), torch.randn(4, 16), torch.randn(16)

    def f(a, b, c):
        out, res = ops.fused_add_rms_norm.maybe_inplace(a * 1, b * 1, c, EPS)
        o2, r2 = ops.fused_add_rms_norm(out, res, c, EPS)
        return o2, r2, a

    be = ir_compile.backend()
    with ir.priority(fused_add_rms_norm=[name]):
        got = torch.compile(f, backend=be)(x, r, w)
        want = f(x, r, w)  # eager, same provider
    assert [d.provider for d in be.decisions] == [name, name]
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e)
