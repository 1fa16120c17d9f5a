"""register_op / register_impl validation; failed registrations leave no trace."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import ir_core as ir
from ir_core import registry


def _no_trace(name: str) -> None:
    assert name not in registry.ops()
    assert not hasattr(torch.ops.ir, name)


def test_register_op_defines_torch_op_and_namespace(temp_op_name: str) -> None:
    def native(x: Tensor, scale: float = 2.0) -> Tensor:
        return x * scale

    op = ir.register_op(name=temp_op_name)(native)
    assert getattr(ir.ops, temp_op_name) is op
    assert op.schema == "(Tensor x, float scale=2.0) -> Tensor"
    x = torch.randn(3)
    torch.testing.assert_close(op(x), x * 2)
    torch.testing.assert_close(op(x, scale=3.0), x * 3)
    torch.testing.assert_close(getattr(torch.ops.ir, temp_op_name)(x), x * 2)
    assert op.activations == ("x",)


@pytest.mark.parametrize(
    "case",
    [
        "kwonly",
        "varargs",
        "unannotated",
        "bad_name",
        "not_tensor_act",
        "inplace_no_act",
        "bad_type",
    ],
)
def test_bad_op_registration_leaves_no_trace(case: str, temp_op_name: str) -> None:
    name = temp_op_name
    if case == "kwonly":

        def native(x: Tensor, *, eps: float) -> Tensor:
            return x

        kwargs: dict = {}
    elif case == "varargs":

        def native(x: Tensor, *rest: Tensor) -> Tensor:
            return x  # type: ignore[misc]

        kwargs = {}
    elif case == "unannotated":

        def native(x, eps: float) -> Tensor:
            return x  # type: ignore[no-untyped-def]

        kwargs = {}
    elif case == "bad_name":

        def native(x: Tensor) -> Tensor:
            return x

        name = "Bad-Name"
        kwargs = {}
    elif case == "not_tensor_act":

        def native(x: Tensor, n: int) -> Tensor:
            return x

        kwargs = {"activations": ["n"]}
    elif case == "inplace_no_act":

        def native(y: Tensor) -> Tensor:
            return y

        kwargs = {"allow_inplace": True}
    else:

        def native(x: Tensor, d: dict) -> Tensor:
            return x  # type: ignore[type-arg]

        kwargs = {}
    with pytest.raises(ir.RegistrationError, match=repr(name).strip("'")[:8]):
        ir.register_op(name=name, **kwargs)(native)
    _no_trace(name)


def test_duplicate_op_refused(temp_op_name: str) -> None:
    def native(x: Tensor) -> Tensor:
        return x + 1

    ir.register_op(name=temp_op_name)(native)
    with pytest.raises(ir.RegistrationError, match="already registered"):
        ir.register_op(name=temp_op_name)(native)


def test_torch_failure_rolls_back(temp_op_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ir_core import torch_binding

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(torch_binding, "_register_autograd", boom)

    def native(x: Tensor) -> Tensor:
        return x

    with pytest.raises(ir.RegistrationError, match="torch registration failed: injected"):
        ir.register_op(name=temp_op_name)(native)
    _no_trace(temp_op_name)
    monkeypatch.undo()
    ir.register_op(name=temp_op_name)(native)  # the name is free again


def _rms(x, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
    return ir.ops.rms_norm.native(x, weight, epsilon, variance_size)


@pytest.mark.parametrize(
    "provider, fn, kwargs, match",
    [
        ("native", _rms, {}, "reserved"),
        ("Bad", _rms, {}, "must match"),
        (
            "p_names",
            lambda y, weight, epsilon, variance_size=None: y,
            {},
            "differs from the native",
        ),
        ("p_default", lambda x, weight, epsilon, variance_size=1: x, {}, "differs from the native"),
        ("p_missing", lambda x, weight, epsilon: x, {}, "differs from the native"),
        ("p_check", _rms, {"supports_args": lambda x, weight: True}, "supports_args"),
        ("p_inplace", _rms, {"inplace": True}, "allow_inplace"),
        ("p_supported", _rms, {"supported": "yes"}, "supported must be"),
    ],
)
def test_bad_impl_registration(provider: str, fn: object, kwargs: dict, match: str) -> None:
    op = ir.ops.rms_norm
    before = dict(op.impls)
    with pytest.raises(ir.RegistrationError, match=match) as err:
        op.register_impl(provider, **kwargs)(fn)  # type: ignore[arg-type]
    assert "rms_norm" in str(err.value) and provider in str(err.value)
    assert op.impls == before


def test_impl_annotations_must_match_schema() -> None:
    def wrong(
        x: Tensor, weight: Tensor | None, epsilon: int, variance_size: int | None = None
    ) -> Tensor:
        return x

    with pytest.raises(ir.RegistrationError, match="schema"):
        ir.ops.rms_norm.register_impl("p_types")(wrong)
    assert "p_types" not in ir.ops.rms_norm.impls


def test_duplicate_provider_refused(temp_impl) -> None:  # type: ignore[no-untyped-def]
    name = temp_impl(ir.ops.silu_and_mul, lambda x: ir.ops.silu_and_mul.native(x))
    with pytest.raises(ir.RegistrationError, match="already registered"):
        ir.ops.silu_and_mul.register_impl(name)(lambda x: x)


def test_batch_invariant_defaults(temp_impl) -> None:  # type: ignore[no-untyped-def]
    p1 = temp_impl(ir.ops.silu_and_mul, lambda x: ir.ops.silu_and_mul.native(x))
    p2 = temp_impl(ir.ops.rms_norm, _rms)
    assert ir.ops.silu_and_mul.impls[p1].batch_invariant  # no reduction: invariant
    assert not ir.ops.rms_norm.impls[p2].batch_invariant  # reduction: must claim it
    assert not ir.ops.rms_norm.impls["native"].batch_invariant
    assert ir.ops.silu_and_mul.impls["native"].batch_invariant


def test_unregister_impl(temp_impl) -> None:  # type: ignore[no-untyped-def]
    name = temp_impl(ir.ops.rms_norm, _rms)
    ir.ops.rms_norm.unregister_impl(name)
    assert name not in ir.ops.rms_norm.impls
    with pytest.raises(ir.RegistrationError):
        ir.ops.rms_norm.unregister_impl("native")


def test_supported_may_return_a_reason(temp_impl) -> None:  # type: ignore[no-untyped-def]
    import torch

    p = temp_impl(
        ir.ops.silu_and_mul, lambda x: x, supported=lambda: ir.Unsupported("no widget here")
    )
    impl = ir.ops.silu_and_mul.impls[p]
    assert impl.is_supported() is False
    assert impl.unsupported_reason == "no widget here"
    with ir.priority(silu_and_mul=[p, "native"]):
        assert "no widget here" in str(ir.ops.silu_and_mul.explain(torch.randn(2, 8)))


def test_gate_returns_its_reason(temp_impl) -> None:  # type: ignore[no-untyped-def]
    import torch

    why: list[str | None] = ["no widget driver"]
    gate = ir.Gate(lambda: why[0])
    p = temp_impl(ir.ops.silu_and_mul, lambda x: x, supported=gate)
    impl = gate.attach(ir.ops.silu_and_mul.impls[p])
    assert gate.impl is impl and gate.reason() == "no widget driver"
    assert impl.is_supported() is False and impl.unsupported_reason == "no widget driver"
    with ir.priority(silu_and_mul=[p, "native"]):
        assert ir.ops.silu_and_mul.dispatch(torch.randn(2, 8)).provider == "native"
    why[0] = None
    assert gate() is True
