"""Registration and schema conformance of the rocm and aiter providers."""

from __future__ import annotations

import inspect

import pytest

import ir_core as ir
from ir_core.schema import infer_schema

# Load through the entry points first, as a real process does.
ir.load_providers()

from ir_kernels_rocm import aiter_provider, provider  # noqa: E402

ROCM_OPS = {
    "rms_norm",
    "fused_add_rms_norm",
    "rms_norm_static_fp8_quant",
    "fused_add_rms_norm_static_fp8_quant",
    "silu_and_mul",
    "gelu_and_mul",
    "rotary_embedding",
    "static_scaled_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
}
AITER_OPS = {
    "rms_norm",
    "fused_add_rms_norm",
    "silu_and_mul",
    "gelu_and_mul",
    "static_scaled_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
}


def _registered(name: str) -> set[str]:
    ir.load_providers()
    return {op_name for op_name, op in ir.ops.all_ops().items() if name in op.impls}


def test_provider_packages_load_without_error() -> None:
    pkgs = ir.provider_packages()
    for ep in ("rocm", "aiter"):
        assert pkgs[ep].loaded and pkgs[ep].error is None, pkgs[ep]
        assert pkgs[ep].distribution == "ir-kernels-rocm"
        assert ep in pkgs[ep].providers


def test_rocm_covers_every_kernel_op() -> None:
    assert _registered("rocm") == ROCM_OPS
    assert set(provider.GATES) == ROCM_OPS


def test_aiter_covers_the_ops_aiter_has() -> None:
    assert _registered("aiter") == AITER_OPS
    assert set(aiter_provider.GATES) == AITER_OPS


@pytest.mark.parametrize("name", ["rocm", "aiter"])
def test_impl_signatures_match_native(name: str) -> None:
    for op_name in _registered(name):
        op = ir.ops.all_ops()[op_name]
        impl = op.impls[name]
        assert inspect.signature(impl.fn) == op.signature, op_name
        assert infer_schema(impl.fn) == op.schema, op_name
        assert impl.supports_args is not None, f"{op_name}/{name} must check its arguments"
        params = list(inspect.signature(impl.supports_args).parameters)
        assert params == op.param_names, op_name
        assert impl.package == "ir-kernels-rocm"


def test_batch_invariance_claims() -> None:
    ops = ir.ops.all_ops()
    # one block per row, launch configuration from the hidden size only
    for op_name in (
        "rms_norm",
        "fused_add_rms_norm",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
        "dynamic_per_token_scaled_fp8_quant",
        "per_token_group_quant_fp8",
    ):
        assert ops[op_name].impls["rocm"].batch_invariant, op_name
    # nothing known about AITER's launch configurations: no claim
    for op_name in ("rms_norm", "fused_add_rms_norm", "dynamic_per_token_scaled_fp8_quant"):
        assert not ops[op_name].impls["aiter"].batch_invariant, op_name


def test_rotary_is_inplace_and_functional_call_clones() -> None:
    impl = ir.ops.rotary_embedding.impls["rocm"]
    assert impl.inplace
    assert impl.functional_fn() is not impl.fn
