"""The conformance kit every provider proves itself with, in tree or out.

    import pytest
    from ir_core import testing

    @pytest.mark.parametrize("op, provider", testing.conformance_cases(provider="mine"))
    def test_conformance(op, provider):
        testing.check_impl(op, provider, device="cuda")

What it checks:

* :func:`check_impl`: one provider against native over generated inputs
  (odd sizes, one token, zero tokens, row-strided activations where
  ``supports_args`` accepts them; fp32, fp16, bf16), outputs poisoned first,
  inputs left untouched (functional semantics), per-dtype tolerances;
* :func:`check_nonfinite`: the same comparison with a NaN, +inf and -inf in
  the activations (NaN where native has NaN, and nowhere else);
* :func:`check_opcheck`: ``torch.library.opcheck`` of the registered torch ops;
* :func:`check_batch_invariance`: for implementations that claim it, each
  row's output bit-identical whatever the batch size and the row's position.

An implementation that is unsupported on this machine raises
``unittest.SkipTest`` (pytest reports a skip), never a silent pass.
"""

from __future__ import annotations

from .kit import (
    CaseResult,
    CheckReport,
    check_batch_invariance,
    check_impl,
    check_nonfinite,
    check_opcheck,
    compare_outputs,
    conformance_cases,
    default_dtypes,
    default_hidden,
    default_tokens,
    poisoned_allocations,
)
from .scratch import temporary_impls

__all__ = [
    "temporary_impls",
    "CaseResult",
    "CheckReport",
    "check_batch_invariance",
    "check_impl",
    "check_nonfinite",
    "check_opcheck",
    "compare_outputs",
    "conformance_cases",
    "default_dtypes",
    "default_hidden",
    "default_tokens",
    "poisoned_allocations",
]
