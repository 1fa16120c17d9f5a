"""The testing kit catches what it promises to catch: wrong values, unwritten
outputs, modified inputs, batch-dependent reductions; and skips what is
unsupported instead of passing silently."""

from __future__ import annotations

import unittest
from typing import Any

import pytest
import torch

import ir_core as ir
from ir_core import testing

SMALL = {"tokens": (1, 5), "hidden": (64,), "dtypes": (torch.float32,)}


def _native_rms(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, variance_size: int | None = None
) -> torch.Tensor:
    return ir.ops.rms_norm.native(x, weight, epsilon, variance_size)


def test_correct_impl_passes(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.rms_norm, _native_rms)
    report = testing.check_impl("rms_norm", p, **SMALL)
    assert report.passed and not report.failed


def test_wrong_values_fail(temp_impl: Any) -> None:
    def off(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> torch.Tensor:
        return _native_rms(x, weight, epsilon, variance_size) * 1.01

    p = temp_impl(ir.ops.rms_norm, off)
    with pytest.raises(AssertionError, match="elements off"):
        testing.check_impl("rms_norm", p, **SMALL)


def _native_group_quant(x: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return ir.ops.per_token_group_quant_fp8.native(x, group_size)


def test_nonfinite_check_passes_native_behaviour(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.per_token_group_quant_fp8, _native_group_quant)
    report = testing.check_nonfinite("per_token_group_quant_fp8", p, dtypes=(torch.bfloat16,))
    assert report.passed and not report.failed


def test_nonfinite_check_catches_a_max_that_drops_nan(temp_impl: Any) -> None:
    """A group max that leaves NaN out (fmaxf, tl.max) gives finite scales and
    bytes where native's amax gives NaN: the check must say so."""

    def nan_blind(x: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _native_group_quant(
            torch.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4), group_size
        )

    p = temp_impl(ir.ops.per_token_group_quant_fp8, nan_blind)
    with pytest.raises(AssertionError, match=r"native nan"):
        testing.check_nonfinite("per_token_group_quant_fp8", p, dtypes=(torch.bfloat16,))


def test_nonfinite_check_catches_a_nan_native_does_not_give(temp_impl: Any) -> None:
    def spreads(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> torch.Tensor:
        out = _native_rms(x, weight, epsilon, variance_size)
        return torch.where(x.isinf().any(-1, keepdim=True), float("nan"), out)

    p = temp_impl(ir.ops.rms_norm, spreads)
    with pytest.raises(AssertionError, match=r"NaN where native has none|elements off"):
        testing.check_nonfinite("rms_norm", p, dtypes=(torch.float32,))


def test_unwritten_output_is_caught_by_poisoning(temp_impl: Any) -> None:
    def lazy(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> torch.Tensor:
        out = torch.empty_like(x)
        ref = _native_rms(x, weight, epsilon, variance_size)
        out[:, : x.shape[-1] // 2] = ref[:, : x.shape[-1] // 2]  # forgets the second half
        return out

    p = temp_impl(ir.ops.rms_norm, lazy)
    with pytest.raises(AssertionError, match=r"NaN|elements off"):
        testing.check_impl("rms_norm", p, **SMALL)


def test_modifying_an_input_fails(temp_impl: Any) -> None:
    def clobber(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> torch.Tensor:
        out = _native_rms(x, weight, epsilon, variance_size)
        x.zero_()
        return out

    p = temp_impl(ir.ops.rms_norm, clobber)
    with pytest.raises(AssertionError, match="modified its input 'x'"):
        testing.check_impl("rms_norm", p, **SMALL)


def test_rejecting_every_input_is_not_a_pass(temp_impl: Any) -> None:
    p = temp_impl(
        ir.ops.rms_norm,
        _native_rms,
        supports_args=lambda x, weight, epsilon, variance_size=None: False,
    )
    with pytest.raises(AssertionError, match="no case ran"):
        testing.check_impl("rms_norm", p, **SMALL)


def test_unsupported_impl_is_a_skip(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.rms_norm, _native_rms, supported=False)
    with pytest.raises(unittest.SkipTest):
        testing.check_impl("rms_norm", p, **SMALL)


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no provider 'nope'"):
        testing.check_impl("rms_norm", "nope", **SMALL)


def test_batch_invariance_proven_for_row_wise_impl(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.rms_norm, _native_rms, batch_invariant=True)
    report = testing.check_batch_invariance("rms_norm", p, dtype=torch.float32)
    assert report.passed and not report.failed


def test_batch_dependent_reduction_is_caught(temp_impl: Any) -> None:
    def batch_dependent(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> torch.Tensor:
        # The reduction order depends on the number of rows: what a kernel that
        # splits the hidden dimension more finely for small batches does.
        xf = x.float()
        chunks = 4 if x.shape[0] < 8 else 1
        parts = [c.pow(2).sum(-1, keepdim=True) for c in xf.chunk(chunks, dim=-1)]
        var = sum(parts[1:], parts[0]) / x.shape[-1]
        return (xf * torch.rsqrt(var + epsilon) * (1.0 if weight is None else weight.float())).to(
            x.dtype
        )

    p = temp_impl(ir.ops.rms_norm, batch_dependent, batch_invariant=True)
    with pytest.raises(AssertionError, match="differs from the full batch"):
        testing.check_batch_invariance("rms_norm", p, dtype=torch.float32, hidden=4099)


def test_batch_invariance_requires_the_claim(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.rms_norm, _native_rms)
    with pytest.raises(ValueError, match="does not claim batch invariance"):
        testing.check_batch_invariance("rms_norm", p)


def test_conformance_cases_lists_registered_impls(temp_impl: Any) -> None:
    p = temp_impl(ir.ops.rms_norm, _native_rms, batch_invariant=True)
    assert ("rms_norm", p) in testing.conformance_cases(provider=p)
    assert testing.conformance_cases(provider=p, batch_invariant_only=True) == [("rms_norm", p)]
    assert ("rms_norm", "native") not in testing.conformance_cases()


def test_poisoned_allocations_fill_new_tensors() -> None:
    with testing.poisoned_allocations():
        t = torch.empty(16)
        e = torch.empty_like(t)
    assert torch.isnan(t).all() and torch.isnan(e).all()
