"""The ir_core.testing suite on an Intel GPU (skipped elsewhere).

Run with ``nox -s tests-xpu`` (or ``pytest -m xpu``) on an XPU machine.
"""

from __future__ import annotations

import pytest
import torch

import ir_core as ir
from ir_core import testing

HAS_XPU = hasattr(torch, "xpu") and torch.xpu.is_available()

pytestmark = [
    pytest.mark.xpu,
    pytest.mark.skipif(not HAS_XPU, reason="needs an Intel GPU (torch.xpu)"),
]

ir.load_providers()
CASES = testing.conformance_cases("xpu")
INVARIANT = testing.conformance_cases("xpu", batch_invariant_only=True)


@pytest.mark.parametrize(("op", "provider"), CASES)
def test_matches_native(op: str, provider: str) -> None:
    testing.check_impl(op, provider, device="xpu")


@pytest.mark.parametrize(("op", "provider"), INVARIANT)
def test_batch_invariant(op: str, provider: str) -> None:
    testing.check_batch_invariance(op, provider, device="xpu")


def test_xpu_platform_detected() -> None:
    assert ir.current_platform().name == "xpu"


def test_extension_builds() -> None:
    from ir_kernels_xpu import build

    assert build.unavailable_reason() is None, build.unavailable_reason()
    assert hasattr(torch.ops.ir_xpu, "rms_norm")
