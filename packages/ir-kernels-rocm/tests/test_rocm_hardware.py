"""The ir_core.testing suite on an AMD GPU (skipped elsewhere).

Run with ``nox -s tests-rocm`` (or ``pytest -m rocm``) on a ROCm machine.
"""

from __future__ import annotations

import pytest
import torch

import ir_core as ir
from ir_core import testing

HAS_AMD_GPU = torch.version.hip is not None and torch.cuda.is_available()

pytestmark = [
    pytest.mark.rocm,
    pytest.mark.skipif(not HAS_AMD_GPU, reason="needs a ROCm torch and an AMD GPU"),
]

ir.load_providers()
CASES = testing.conformance_cases("rocm") + testing.conformance_cases("aiter")
INVARIANT = testing.conformance_cases(
    "rocm", batch_invariant_only=True
) + testing.conformance_cases("aiter", batch_invariant_only=True)


@pytest.mark.parametrize(("op", "provider"), CASES)
def test_matches_native(op: str, provider: str) -> None:
    testing.check_impl(op, provider, device="cuda")


@pytest.mark.parametrize(("op", "provider"), INVARIANT)
def test_batch_invariant(op: str, provider: str) -> None:
    testing.check_batch_invariance(op, provider, device="cuda")


def test_rocm_platform_detected() -> None:
    assert ir.current_platform().name == "rocm"


def test_extension_built_with_device_wavefront() -> None:
    from ir_kernels_rocm import arch, build

    assert build.unavailable_reason() is None, build.unavailable_reason()
    assert arch.device_wavefront_size() == arch.wavefront_size(arch.gfx_arch())
    assert hasattr(torch.ops.ir_rocm, "rms_norm")


@pytest.mark.parametrize(
    "op", ["rms_norm", "fused_add_rms_norm", "silu_and_mul", "rotary_embedding"]
)
def test_opcheck_under_rocm_priority(op: str) -> None:
    with ir.priority({op: ["rocm", "native"]}):
        testing.check_opcheck(op, device="cuda")
