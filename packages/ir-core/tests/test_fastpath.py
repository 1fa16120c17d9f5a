"""The eager fast path skips the torch dispatcher; anything that watches or
transforms the call goes through torch.ops.ir so tracers see one node."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils._python_dispatch import TorchDispatchMode

import ir_core as ir

OP = ir.ops.rms_norm


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts entries into the torch op's kernel (the dispatcher path)."""
    calls: list[int] = []
    original = OP._select

    def counting(scope, inplace=False):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(scope, inplace)

    monkeypatch.setattr(OP, "_select", counting)
    return calls


def _args(requires_grad: bool = False) -> tuple:
    return (torch.randn(3, 8, requires_grad=requires_grad), torch.randn(8), 1e-6)


def test_plain_call_skips_dispatcher(kernel_calls: list[int]) -> None:
    OP(*_args())
    with torch.no_grad():
        OP(*_args(requires_grad=True))
    with torch.inference_mode():
        OP(*_args())
    assert kernel_calls == []
    OP(torch.randn(3, 8), torch.nn.Parameter(torch.randn(8), requires_grad=False), 1e-6)
    assert kernel_calls == []


def test_autograd_goes_through_torch_op(kernel_calls: list[int]) -> None:
    y = OP(*_args(requires_grad=True))
    assert kernel_calls and y.grad_fn is not None and "ir_rms_norm" in type(y.grad_fn).__name__


def test_dispatch_mode_goes_through_torch_op(kernel_calls: list[int]) -> None:
    seen = []

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    args = _args()
    with Spy():
        OP(*args)
    assert seen[0] == "ir.rms_norm.default"


def test_function_mode_goes_through_torch_op(kernel_calls: list[int]) -> None:
    args = _args()
    with torch.device("cpu"):  # a TorchFunctionMode
        OP(*args)
    assert kernel_calls


def test_make_fx_sees_one_ir_node() -> None:
    def f(x, w):  # type: ignore[no-untyped-def]
        return OP(x, w, 1e-6) * 2

    gm = make_fx(f)(torch.randn(3, 8), torch.randn(8))
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.ops.ir.rms_norm.default in targets
    assert torch.ops.aten.rsqrt.default not in targets  # not decomposed


def test_fake_tensors_use_the_fake_kernel() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        x = mode.from_tensor(torch.randn(5, 8, dtype=torch.bfloat16))
        w = mode.from_tensor(torch.randn(8, dtype=torch.bfloat16))
        out = OP(x, w, 1e-6)
    assert out.shape == (5, 8) and out.dtype == torch.bfloat16


def test_vmap_goes_through_torch_op() -> None:
    x = torch.randn(2, 3, 8)
    w = torch.randn(8)
    out = torch.vmap(lambda t: OP(t, w, 1e-6))(x)
    torch.testing.assert_close(out, OP.native(x, w, 1e-6))


def test_dynamo_sees_one_ir_node() -> None:
    graphs = []

    def backend(gm, example_inputs):  # type: ignore[no-untyped-def]
        graphs.append(gm)
        return gm

    torch._dynamo.reset()
    f = torch.compile(lambda x, w: OP(x, w, 1e-6), backend=backend, fullgraph=True)
    x, w, _ = _args()
    torch.testing.assert_close(f(x, w), OP.native(x, w, 1e-6))
    targets = [n.target for n in graphs[0].graph.nodes if n.op == "call_function"]
    assert targets == [torch.ops.ir.rms_norm.default]
