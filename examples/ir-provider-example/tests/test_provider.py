"""The example provider proves itself with ir-core's conformance kit, as every
provider should (run: ``pytest examples/ir-provider-example/tests``)."""

from __future__ import annotations

import pytest
import torch

import ir_core as ir
from ir_core import testing
from ir_core.platforms import out_of_tree_platforms

CASES = testing.conformance_cases(provider="example")


def test_the_entry_point_registered_both_ops() -> None:
    assert sorted(op for op, _ in CASES) == ["fused_add_rms_norm", "rms_norm"]
    pkgs = ir.provider_packages()
    assert pkgs["example"].loaded and pkgs["example"].distribution == "ir-provider-example"


@pytest.mark.parametrize(("op", "provider"), CASES)
def test_conformance(op: str, provider: str) -> None:
    testing.check_impl(op, provider, device="cpu")


@pytest.mark.parametrize(
    ("op", "provider"), testing.conformance_cases(provider="example", batch_invariant_only=True)
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batch_invariance(op: str, provider: str, dtype: torch.dtype) -> None:
    testing.check_batch_invariance(op, provider, device="cpu", dtype=dtype)


def test_opcheck_under_example_priority() -> None:
    with ir.priority(rms_norm=["example", "native"]):
        testing.check_opcheck("rms_norm", device="cpu")


def test_rejected_calls_fall_back_to_native() -> None:
    x = torch.randn(4, 32)
    with ir.priority(rms_norm=["example", "native"]):
        assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "example"
        assert ir.ops.rms_norm.dispatch(x, None, 1e-6, 16).provider == "native"  # variance_size
        assert ir.ops.rms_norm.dispatch(x.t(), None, 1e-6).provider == "native"  # strided rows


def test_platform_is_declared_but_opt_in() -> None:
    plat = {p.name: p for p in out_of_tree_platforms()}["example"]
    assert plat.package == "ir-provider-example"
    assert tuple(plat.default_priority["rms_norm"]) == ("example", "native")
