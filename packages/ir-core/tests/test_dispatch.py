"""Dispatch: priority order, supports_args, support, scoping, batch invariance,
explain, trace, inplace semantics."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

import ir_core as ir
from ir_core import registry

OP = ir.ops.rms_norm


def _tagged(tag: float):  # type: ignore[no-untyped-def]
    """An rms_norm impl whose output is recognisable: native + tag."""

    def impl(x, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
        return OP.native(x, weight, epsilon, variance_size) + tag

    return impl


def _args(tokens: int = 4, hidden: int = 16) -> tuple:
    return (torch.randn(tokens, hidden), torch.randn(hidden), 1e-6)


def _which(*args: object) -> str:
    return OP.dispatch(*args).provider


def test_default_priority_on_cpu_is_native() -> None:
    assert ir.effective_priority("rms_norm") == (("native",), "platform cpu")
    assert _which(*_args()) == "native"


def test_priority_order_and_supports_args(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(
        OP,
        _tagged(100.0),
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[0] > 2,
    )
    b = temp_impl(OP, _tagged(200.0))
    x, w, eps = _args()
    with ir.priority(rms_norm=[a, b]):
        assert _which(x, w, eps) == a
        torch.testing.assert_close(OP(x, w, eps), OP.native(x, w, eps) + 100)
        small = x[:2]
        assert _which(small, w, eps) == b
        torch.testing.assert_close(OP(small, w, eps), OP.native(small, w, eps) + 200)


def test_native_appended_when_list_can_reject(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(
        OP, _tagged(1.0), supports_args=lambda x, weight, epsilon, variance_size=None: False
    )
    with ir.priority(rms_norm=[a]):
        res = OP.resolution()
        assert [i.provider for i in res.candidates] == [a, "native"]
        assert res.native_appended
        assert _which(*_args()) == "native"


def test_unsupported_skipped_and_lazy_supported_called_once(temp_impl) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def supported() -> bool:
        calls.append(1)
        return False

    a = temp_impl(OP, _tagged(1.0), supported=supported)
    assert calls == []  # lazy: not evaluated at registration
    with ir.priority(rms_norm=[a, "native"]):
        for _ in range(3):
            assert _which(*_args()) == "native"
            OP(*_args())
        text = str(OP.explain(*_args()))
    assert len(calls) == 1
    assert "unsupported here" in text


def test_supported_callable_that_raises_is_unsupported(temp_impl, caplog) -> None:  # type: ignore[no-untyped-def]
    def supported() -> bool:
        raise RuntimeError("no compiler")

    a = temp_impl(OP, _tagged(1.0), supported=supported)
    with ir.priority(rms_norm=[a, "native"]):
        assert _which(*_args()) == "native"
    assert "no compiler" in (OP.impls[a].unsupported_reason or "")


def test_scoped_priority_restored_on_exit_and_exception(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(OP, _tagged(1.0))
    assert _which(*_args()) == "native"
    with ir.priority(rms_norm=[a]):
        assert _which(*_args()) == a
    assert _which(*_args()) == "native"
    with pytest.raises(KeyError), ir.priority(rms_norm=[a]):
        assert _which(*_args()) == a
        raise KeyError("boom")
    assert _which(*_args()) == "native"


def test_nested_scopes_merge(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(OP, _tagged(1.0))
    s = temp_impl(ir.ops.silu_and_mul, lambda x: ir.ops.silu_and_mul.native(x))
    with ir.priority(rms_norm=[a]):
        with ir.priority(silu_and_mul=[s]):
            assert _which(*_args()) == a
            assert ir.ops.silu_and_mul.dispatch(torch.randn(2, 8)).provider == s
        assert ir.ops.silu_and_mul.dispatch(torch.randn(2, 8)).provider == "native"


def test_scoped_beats_process_beats_platform(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(OP, _tagged(1.0))
    b = temp_impl(OP, _tagged(2.0))
    ir.set_priority({"*": [b, "native"]})
    assert ir.effective_priority("rms_norm")[1] == "process"
    assert _which(*_args()) == b
    ir.set_priority({"rms_norm": [a]})  # op entry beats the wildcard
    assert _which(*_args()) == a
    with ir.priority({"*": [b]}):  # scoped wildcard beats process-wide op entry
        assert _which(*_args()) == b
    ir.set_priority(None)
    assert _which(*_args()) == "native"


def test_set_priority_invalidates_cached_fast_path(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(OP, _tagged(1000.0))
    x, w, eps = _args()
    ref = OP.native(x, w, eps)
    torch.testing.assert_close(OP(x, w, eps), ref)  # caches native
    ir.set_priority({"rms_norm": [a]})
    torch.testing.assert_close(OP(x, w, eps), ref + 1000)


def test_eight_threads_no_cross_talk(temp_impl) -> None:  # type: ignore[no-untyped-def]
    names = [temp_impl(OP, _tagged(float(i))) for i in range(8)]
    x, w, eps = _args()
    ref = OP.native(x, w, eps)
    barrier = threading.Barrier(8)
    errors: list[str] = []

    def worker(i: int) -> None:
        with ir.priority(rms_norm=[names[i]]):
            barrier.wait()
            for _ in range(200):
                out = OP(x, w, eps)
                if not torch.allclose(out, ref + i):
                    errors.append(f"thread {i} saw another thread's provider")
                    return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _which(x, w, eps) == "native"


def test_asyncio_tasks_are_isolated(temp_impl) -> None:  # type: ignore[no-untyped-def]
    names = [temp_impl(OP, _tagged(float(i))) for i in range(4)]
    x, w, eps = _args()

    async def task(i: int) -> str:
        with ir.priority(rms_norm=[names[i]]):
            await asyncio.sleep(0.01)
            return _which(x, w, eps)

    async def main() -> list[str]:
        return await asyncio.gather(*(task(i) for i in range(4)))

    assert asyncio.run(main()) == names


def test_batch_invariant_mode(temp_impl) -> None:  # type: ignore[no-untyped-def]
    fast = temp_impl(OP, _tagged(1.0))
    inv = temp_impl(OP, _tagged(2.0), batch_invariant=True)
    x, w, eps = _args()
    with ir.priority(rms_norm=[fast, inv, "native"]):
        assert _which(x, w, eps) == fast
        with ir.batch_invariant():
            assert ir.is_batch_invariant()
            assert _which(x, w, eps) == inv
            assert "not batch-invariant" in str(OP.explain(x, w, eps))
        assert _which(x, w, eps) == fast


def test_batch_invariant_mode_without_invariant_impl_raises() -> None:
    x, w, eps = _args()
    with (
        ir.batch_invariant(),
        pytest.raises(ir.NoImplementationError, match=r"rms_norm.*batch-invariant"),
    ):
        OP(x, w, eps)
    # ops without a reduction are invariant in every impl, native included
    with ir.batch_invariant():
        ir.ops.silu_and_mul(torch.randn(2, 8))


def test_batch_invariant_env_and_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_BATCH_INVARIANT", "1")
    assert ir.is_batch_invariant()
    ir.set_batch_invariant(False)
    assert not ir.is_batch_invariant()
    ir.set_batch_invariant(None)
    monkeypatch.setenv("IR_BATCH_INVARIANT", "maybe")
    with pytest.raises(ir.PriorityError, match="IR_BATCH_INVARIANT"):
        ir.is_batch_invariant()


def test_explain_lists_every_candidate(temp_impl, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A well-known provider name with no implementation installed for this op.
    monkeypatch.setattr(
        registry, "WELL_KNOWN_PROVIDERS", (*registry.WELL_KNOWN_PROVIDERS, "future_hw")
    )
    rej = temp_impl(
        OP, _tagged(1.0), supports_args=lambda x, weight, epsilon, variance_size=None: False
    )
    other = temp_impl(OP, _tagged(2.0))
    with ir.priority(rms_norm=[rej, "future_hw", "native"]):
        e = OP.explain(*_args())
    status = {c.provider: c.status for c in e.entries}
    assert e.chosen == "native"
    assert status[rej] == "skipped" and status["future_hw"] == "skipped"
    assert status[other] == "not listed"
    text = str(e)
    assert "supports_args rejected" in text and "not installed" in text and "-> native" in text


def test_trace_records_calls(temp_impl) -> None:  # type: ignore[no-untyped-def]
    a = temp_impl(OP, _tagged(1.0))
    x, w, eps = _args()
    with ir.priority(rms_norm=[a]), ir.trace() as t:
        OP(x, w, eps)
        ir.ops.silu_and_mul(torch.randn(2, 8))
        torch.ops.ir.rms_norm(x, w, eps)  # the torch-op path records too
    assert [(r.op, r.provider) for r in t] == [
        ("rms_norm", a),
        ("silu_and_mul", "native"),
        ("rms_norm", a),
    ]
    assert "x=Tensor[4x16, float32, cpu]" in t.records[0].args
    OP(x, w, eps)
    assert len(t) == 3  # nothing recorded after the block


def test_inplace_impl_is_cloned_under_functional_call(temp_impl) -> None:  # type: ignore[no-untyped-def]
    op = ir.ops.fused_add_rms_norm

    def inplace(x, x_residual, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
        out, res = op.native(x, x_residual, weight, epsilon, variance_size)
        x_residual.copy_(res)
        x.copy_(out)
        return x, x_residual

    p = temp_impl(op, inplace, inplace=True)
    x, r, w = torch.randn(3, 8), torch.randn(3, 8), torch.randn(8)
    x0, r0 = x.clone(), r.clone()
    ref = op.native(x, r, w, 1e-6)
    with ir.priority(fused_add_rms_norm=[p]):
        out = op(x, r, w, 1e-6)
        assert torch.equal(x, x0) and torch.equal(r, r0)  # functional: inputs untouched
        torch.testing.assert_close(out, ref)
        out2 = op.maybe_inplace(x, r, w, 1e-6)  # caller gives the inputs up
        torch.testing.assert_close(out2, ref)
        assert out2[0].data_ptr() == x.data_ptr()  # really in place, no copy
        x, r = x0.clone(), r0.clone()
        out3 = torch.ops.ir.fused_add_rms_norm(x, r, w, 1e-6)
        assert torch.equal(x, x0) and torch.equal(r, r0)
        torch.testing.assert_close(out3, ref)


def test_keyword_arguments_and_defaults(temp_impl) -> None:  # type: ignore[no-untyped-def]
    seen = []

    def impl(x, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
        seen.append((epsilon, variance_size))
        return OP.native(x, weight, epsilon, variance_size)

    p = temp_impl(OP, impl)
    x, w, _ = _args()
    with ir.priority(rms_norm=[p]):
        OP(x, weight=w, epsilon=1e-5)
        OP(x, w, 1e-5, variance_size=8)
    assert seen == [(1e-5, None), (1e-5, 8)]
    with pytest.raises(TypeError):
        OP(x, w)


def test_torch_op_with_trailing_default_and_checked_provider(temp_impl) -> None:  # type: ignore[no-untyped-def]
    # The dispatcher omits trailing defaulted arguments; selectors must still get them.
    p = temp_impl(
        OP, _tagged(3.0), supports_args=lambda x, weight, epsilon, variance_size=None: True
    )
    x, w, eps = _args()
    with ir.priority(rms_norm=[p, "native"]):
        out = torch.ops.ir.rms_norm(x, w, eps)
    torch.testing.assert_close(out, _tagged(3.0)(x, w, eps))
