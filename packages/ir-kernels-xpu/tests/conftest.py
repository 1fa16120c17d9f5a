"""Fixtures for ir-kernels-xpu tests: state resets that leave no trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ir_core as ir
from ir_core import platforms

# Load through the entry points first, as a real process does, so the
# implementations are attributed to their distribution.
ir.load_providers()

from ir_kernels_xpu import build, provider  # noqa: E402


@pytest.fixture
def fresh_gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the build outcome and re-arm every xpu ``supported`` gate;
    everything is restored afterwards."""
    impls = [op.impls["xpu"] for op in ir.ops.all_ops().values() if "xpu" in op.impls]
    saved = [(impl, impl._supported, impl._unsupported_reason) for impl in impls]
    monkeypatch.setattr(build._State, "done", False)
    monkeypatch.setattr(build._State, "error", None)
    for impl in impls:
        impl._supported = provider.GATES[impl.op.name]
        impl._unsupported_reason = None
    yield
    for impl, sup, reason in saved:
        impl._supported, impl._unsupported_reason = sup, reason
    platforms.set_platform(None)
