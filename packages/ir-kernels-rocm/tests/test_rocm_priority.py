"""The rocm platform's default priority (defined in ir-core; checked here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import ir_core as ir
from ir_core import platforms

EXPECTED = ("aiter", "rocm", "triton", "native")


@pytest.fixture
def rocm_platform() -> Iterator[None]:
    platforms.set_platform("rocm")
    yield
    platforms.set_platform(None)


def test_builtin_rocm_platform_default() -> None:
    rocm = {p.name: p for p in platforms.BUILTIN_PLATFORMS}["rocm"]
    assert tuple(rocm.default_priority["*"]) == EXPECTED
    assert rocm.device_type == "cuda"  # ROCm tensors live on torch's "cuda" device


def test_every_op_uses_it_on_rocm(rocm_platform: None) -> None:
    for name in ir.ops.all_ops():
        prio, source = ir.effective_priority(name)
        assert tuple(prio) == EXPECTED, name
        assert source == "platform rocm"


def test_falls_through_here(rocm_platform: None) -> None:
    """aiter and rocm are skipped; the next supported provider runs
    (triton under TRITON_INTERPRET=1, else native)."""
    x, w = torch.randn(3, 64), torch.rand(64)
    assert ir.ops.rms_norm.dispatch(x, w, 1e-6).provider in ("triton", "native")
    torch.testing.assert_close(ir.ops.rms_norm(x, w, 1e-6), ir.ops.rms_norm.native(x, w, 1e-6))


@pytest.mark.skipif(
    torch.version.hip is not None, reason="on a ROCm build the platform may be rocm"
)
def test_rocm_platform_not_detected_here() -> None:
    assert ir.current_platform().name != "rocm"
