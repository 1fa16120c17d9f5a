"""Fixtures for ir-kernels-rocm tests: state resets that leave no trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ir_core as ir
from ir_core import platforms

# Load through the entry points first, as a real process does, so the
# implementations are attributed to their distribution.
ir.load_providers()

from ir_kernels_rocm import aiter_provider, build, provider  # noqa: E402


def impls_of(name: str) -> list[ir.IrOpImpl]:
    """Every registered implementation of provider ``name``."""
    ir.load_providers()
    return [op.impls[name] for op in ir.ops.all_ops().values() if name in op.impls]


@pytest.fixture
def fresh_gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the build/AITER outcome and re-arm every rocm/aiter ``supported``
    gate (ir-core caches the first answer); everything is restored afterwards."""
    ir.load_providers()
    saved = [
        (impl, impl._supported, impl._unsupported_reason)
        for p in ("rocm", "aiter")
        for impl in impls_of(p)
    ]
    monkeypatch.setattr(build._State, "done", False)
    monkeypatch.setattr(build._State, "features", frozenset())
    monkeypatch.setattr(build._State, "error", None)
    monkeypatch.setattr(aiter_provider._Aiter, "module", None)
    monkeypatch.setattr(aiter_provider._Aiter, "error", None)
    monkeypatch.setattr(aiter_provider._Aiter, "tried", False)
    for mod, name in ((provider, "rocm"), (aiter_provider, "aiter")):
        for impl in impls_of(name):
            impl._supported = mod.GATES[impl.op.name]
            impl._unsupported_reason = None
    yield
    for impl, sup, reason in saved:
        impl._supported, impl._unsupported_reason = sup, reason
    platforms.set_platform(None)
