"""What the provider accepts, what falls through, and how calls reach the
kernels: directly in eager, through ``torch.ops.ir_triton`` when traced."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import DEVICE
from torch.fx.experimental.proxy_tensor import make_fx

import ir_core as ir
from ir_core import testing
from ir_kernels_triton import _checks
from ir_kernels_triton._runtime import rows_view


def _x(*shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE).to(dtype)


def _w(n: int) -> torch.Tensor:
    return 1 + 0.1 * torch.randn(n, device=DEVICE)


def _rope_args(**over: Any) -> dict[str, Any]:
    tokens, hs = 4, 64
    args: dict[str, Any] = {
        "positions": torch.randint(0, 16, (tokens,), device=DEVICE),
        "query": _x(tokens, 2 * hs),
        "key": _x(tokens, hs),
        "head_size": hs,
        "cos_sin_cache": ir.ops.rotary.cos_sin_cache(16, hs, device=DEVICE),
        "is_neox": True,
    }
    args.update(over)
    return args


def test_rows_view() -> None:
    base = _x(4, 6, 10)
    assert rows_view(base) == (24, 10)
    assert rows_view(base[..., :8]) == (24, 10)  # row-strided
    assert rows_view(base[:, :3]) is None  # leading dims do not collapse
    assert rows_view(base.transpose(0, 1)) is None
    assert rows_view(base[..., ::2]) is None  # feature stride 2
    assert rows_view(_x(7)) == (1, 7)


# Each entry: (op, positional args the kernels do not handle, why).
def _declined() -> list[tuple[str, tuple[Any, ...], str]]:
    x = _x(4, 64)
    scale = torch.tensor([0.1], device=DEVICE)
    meta = torch.empty(4, 64, device="meta", dtype=torch.bfloat16)
    return [
        ("rms_norm", (x.t(), None, 1e-6, None), "transposed: features not unit-stride"),
        ("rms_norm", (x[:, ::2], None, 1e-6, None), "feature stride 2"),
        ("rms_norm", (x.to(torch.float64), None, 1e-6, None), "float64"),
        ("rms_norm", (x, _w(63), 1e-6, None), "weight of the wrong size"),
        ("rms_norm", (x, _w(128)[::2], 1e-6, None), "strided weight"),
        ("rms_norm", (x, None, 1e-6, 65), "variance_size > hidden"),
        ("rms_norm", (x, None, 1e-6, 0), "variance_size 0"),
        ("rms_norm", (meta, None, 1e-6, None), "tensor on another device"),
        ("rms_norm", (_x(4, 0), None, 1e-6, None), "hidden 0"),
        ("fused_add_rms_norm", (x, _x(4, 1, 64), None, 1e-6, None), "residual of another shape"),
        ("silu_and_mul", (_x(4, 63),), "odd last dimension"),
        ("silu_and_mul", (torch.ones(4, 64, device=DEVICE, dtype=torch.int32),), "integers"),
        ("gelu_and_mul", (x, "sigmoid"), "unknown approximation"),
        ("static_scaled_fp8_quant", (x, torch.tensor([0.1, 0.2], device=DEVICE)), "2 scales"),
        ("static_scaled_fp8_quant", (_x(64), scale.reshape(1, 1)), "scale broadcasts x up"),
        ("dynamic_per_token_scaled_fp8_quant", (x, torch.ones(4, 1, device=DEVICE)), "ub per row"),
        ("per_token_group_quant_fp8", (x, 48), "hidden not a multiple of the group"),
        ("per_token_group_quant_fp8", (x, 0), "group 0"),
        (
            "rms_norm_static_fp8_quant",
            (x, None, 1e-6, torch.ones(64, device=DEVICE)),
            "vector scale",
        ),
        (
            "rotary_embedding",
            tuple(
                _rope_args(positions=torch.zeros(4, 2, dtype=torch.long, device=DEVICE)).values()
            ),
            "2-D positions",
        ),
        ("rotary_embedding", tuple(_rope_args(query=_x(4, 100)).values()), "query not whole heads"),
        ("rotary_embedding", tuple(_rope_args(key=_x(5, 64)).values()), "key of other token count"),
        ("rotary_embedding", tuple(_rope_args(head_size=32).values()), "rotary dim > head size"),
        (
            "rotary_embedding",
            tuple(
                _rope_args(
                    cos_sin_cache=ir.ops.rotary.cos_sin_cache(16, 64, device=DEVICE).to(
                        torch.float64
                    )
                ).values()
            ),
            "float64 cache",
        ),
        (
            "rotary_embedding",
            tuple(_rope_args(positions=torch.zeros(4, device=DEVICE)).values()),
            "float positions",
        ),
    ]


@pytest.mark.parametrize("case", range(len(_declined())))
def test_declined_calls_fall_through(case: int) -> None:
    op_name, args, why = _declined()[case]
    op = getattr(ir.ops, op_name)
    impl = op.impls["triton"]
    assert not impl.accepts(*args), f"{op_name}: should decline ({why})"
    if any(isinstance(a, torch.Tensor) and a.device.type == "meta" for a in args):
        return
    with ir.priority(**{op_name: ["triton", "native"]}):
        assert op.dispatch(*args).provider == "native", why
        try:
            expected = op.native(*args)
        except Exception as exc:  # native rejects it too: the op must raise the same way
            with pytest.raises(type(exc)):
                op(*args)
            return
        got = op(*args)
    for g, e in zip(
        got if isinstance(got, tuple) else (got,),
        expected if isinstance(expected, tuple) else (expected,),
        strict=True,
    ):
        torch.testing.assert_close(g.float(), e.float(), rtol=0, atol=0, equal_nan=True, msg=why)


def test_accepted_calls_run_triton() -> None:
    x = _x(5, 64)
    with ir.priority(rms_norm=["triton", "native"]), ir.trace() as t:
        out = ir.ops.rms_norm(x, _w(64), 1e-6)
    assert [(r.op, r.provider) for r in t.records] == [("rms_norm", "triton")]
    assert out.shape == x.shape and out.dtype == x.dtype


def test_batch_invariant_mode_picks_triton_norms() -> None:
    x, r = _x(5, 64), _x(5, 64)
    with ir.priority(**{"*": ["triton", "native"]}), ir.batch_invariant():
        assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "triton"
        assert ir.ops.fused_add_rms_norm.dispatch(x, r, None, 1e-6).provider == "triton"


@pytest.mark.parametrize(
    "op_name", ["rms_norm", "silu_and_mul", "rotary_embedding", "per_token_group_quant_fp8"]
)
def test_traced_call_is_one_kernel_op(op_name: str) -> None:
    """Under make_fx the implementation records ``torch.ops.ir_triton.<op>``
    (not the kernel launch), and computes the same as the eager direct path."""
    op = getattr(ir.ops, op_name)
    torch.manual_seed(0)
    args = op.input_generator(3, 64, torch.float32, DEVICE)
    impl = op.impls["triton"]
    tensors = [a for a in args if isinstance(a, torch.Tensor)]

    def fn(*ts: torch.Tensor) -> Any:
        it = iter(ts)
        return impl(*(next(it) if isinstance(a, torch.Tensor) else a for a in args))

    gm = make_fx(fn)(*tensors)
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert any(t.startswith(f"ir_triton.{op_name}") for t in targets), targets
    traced, eager = gm(*tensors), impl(*args)
    for a, b in zip(
        traced if isinstance(traced, (tuple, list)) else (traced,),
        eager if isinstance(eager, tuple) else (eager,),
        strict=False,
    ):
        if b is not None:
            assert torch.equal(a.float(), b.float())


def test_supports_args_signatures_match_native() -> None:
    """Registration already enforces it; this guards the module's public names."""
    for name, _ in testing.conformance_cases(provider="triton"):
        assert getattr(ir.ops, name).impls["triton"].supports_args is getattr(_checks, name)
