"""The testing kit on every op of the triton provider: values against native
(fp32, fp16, bf16; zero, one and odd token counts; odd hidden sizes;
row-strided inputs; NaN and infinities), batch invariance of the reductions,
opcheck."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import DEVICE, INTERPRET, SELECTED_OPS

import ir_core as ir
from ir_core import testing

CASES = testing.conformance_cases(provider="triton", ops=SELECTED_OPS)
INVARIANT = testing.conformance_cases(
    provider="triton", ops=SELECTED_OPS, batch_invariant_only=True
)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: Under the interpreter every program runs in Python: the kit's CPU grid
#: (tokens 0, 1, 5, 33; hidden 64, 200), but fewer rotary cases (five variants,
#: one program per token and head block: the slowest to interpret).
SMALL: dict[str, dict[str, Any]] = {
    "rotary_embedding": {"tokens": (0, 1, 5), "hidden": (64, 200)},
}
#: Ops with a chunked path for long rows.
CHUNKED = ("rms_norm", "fused_add_rms_norm", "dynamic_per_token_scaled_fp8_quant")
#: Batch invariance: bf16 on the interpreter (time), bf16 and fp32 on a GPU.
INVARIANCE_DTYPES = (torch.bfloat16,) if INTERPRET else (torch.bfloat16, torch.float32)


def test_every_op_has_a_triton_impl() -> None:
    ir.load_providers()
    if SELECTED_OPS is not None:
        pytest.skip("IR_TRITON_TEST_OPS selects a subset of the ops")
    missing = [n for n, op in ir.ops.all_ops().items() if "triton" not in op.impls]
    assert not missing, f"ops without a triton implementation: {missing}"
    assert len(CASES) >= 10


def test_supported_in_this_mode() -> None:
    for name, _ in CASES:
        impl = getattr(ir.ops, name).impls["triton"]
        assert impl.is_supported(), (name, impl.unsupported_reason)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op, provider", CASES)
def test_conformance(op: str, provider: str, dtype: torch.dtype) -> None:
    kwargs = SMALL.get(op, {}) if INTERPRET else {}
    report = testing.check_impl(op, provider, device=DEVICE, dtypes=(dtype,), **kwargs)
    assert not report.rejected, report.summary()  # the kit's inputs are all in range


@pytest.mark.parametrize("op, provider", CASES)
def test_nonfinite_inputs_as_native(op: str, provider: str) -> None:
    """NaN and +-inf in the activations: NaN where native has NaN (a NaN in a
    quantised row or group spreads through its scale), nowhere else."""
    dtypes = (torch.bfloat16, torch.float32) if INTERPRET else DTYPES
    report = testing.check_nonfinite(op, provider, device=DEVICE, dtypes=dtypes)
    assert not report.rejected, report.summary()


@pytest.mark.parametrize("dtype", INVARIANCE_DTYPES, ids=str)
@pytest.mark.parametrize("op, provider", INVARIANT)
def test_batch_invariance(op: str, provider: str, dtype: torch.dtype) -> None:
    kwargs: dict[str, Any] = {"rows": 32, "batch_sizes": (1, 3, 7, 32)} if INTERPRET else {}
    testing.check_batch_invariance(op, provider, device=DEVICE, dtype=dtype, **kwargs)


@pytest.mark.parametrize("op", [n for n, _ in INVARIANT if n in CHUNKED])
def test_long_rows_take_the_chunked_path(op: str) -> None:
    """Rows longer than the register block (16384) reduce over fixed chunks of 8192."""
    testing.check_impl(
        op,
        "triton",
        device=DEVICE,
        dtypes=(torch.bfloat16,),
        tokens=(2,),
        hidden=(16500,),
        variants=[{}],
        strided=False,
    )
    testing.check_batch_invariance(
        op, "triton", device=DEVICE, hidden=16500, rows=4, batch_sizes=(1, 3)
    )


@pytest.mark.parametrize("op", sorted({n for n, _ in CASES}))
def test_opcheck_through_ir_op(op: str) -> None:
    """``torch.library.opcheck`` of ``torch.ops.ir.<op>`` (and ``maybe_inplace``)
    with triton first: schema, fake kernel, autograd registration, AOT dispatch."""
    ir_op = getattr(ir.ops, op)
    with ir.priority(**{op: ["triton", "native"]}):
        for variant in _opcheck_variants(ir_op):
            torch.manual_seed(0)
            args = tuple(ir_op.input_generator(3, 64, torch.bfloat16, DEVICE, **variant))
            assert ir_op.dispatch(*args).provider == "triton", variant
            torch.library.opcheck(ir_op.torch_op.default, args)
            if ir_op.inplace_schema is not None:
                torch.library.opcheck(
                    ir_op.torch_op.maybe_inplace,
                    tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args),
                )


def _opcheck_variants(ir_op: Any) -> list[dict[str, Any]]:
    """The op's test variants; for rotary under the interpreter (time) only NeoX,
    GPT-J and no-key (partial rotary and head size 128 are covered by check_impl)."""
    variants = list(ir_op.test_variants)
    if INTERPRET and ir_op.name == "rotary_embedding":
        return [v for v in variants if not v.get("partial") and "head_size" not in v]
    return variants


def _internal_args(op: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The IR op's arguments in the form of ``torch.ops.ir_triton.<op>``."""
    if op in ("rms_norm", "fused_add_rms_norm"):
        *head, vs = args
        return (*head, args[0].shape[-1] if vs is None else vs)
    if op == "gelu_and_mul":
        return (args[0], args[1] == "tanh")
    return args


@pytest.mark.parametrize("op", sorted({n for n, _ in CASES}))
def test_opcheck_kernel_ops(op: str) -> None:
    """``opcheck`` of the provider's own ``torch.ops.ir_triton.<op>`` (the node
    traced graphs hold): schema, fake kernel, AOT dispatch."""
    ir_op = getattr(ir.ops, op)
    kernel_op = getattr(torch.ops.ir_triton, op).default
    for variant in ir_op.test_variants:
        torch.manual_seed(0)
        args = tuple(ir_op.input_generator(3, 64, torch.bfloat16, DEVICE, **variant))
        torch.library.opcheck(
            kernel_op,
            _internal_args(op, args),
            test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"),
        )
