"""Fixtures for ir-compile tests: temporary providers and clean priorities."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import ir_core as ir
from ir_core import testing


@pytest.fixture
def temp_impl() -> Iterator[Callable[..., str]]:
    """``temp_impl(op, fn, provider=None, **register_kwargs) -> provider name``;
    removed after the test."""
    with testing.temporary_impls() as add:
        yield add


@pytest.fixture(autouse=True)
def _clean_priority() -> Iterator[None]:
    ir.set_priority(None)
    ir.set_batch_invariant(None)
    yield
    ir.set_priority(None)
    ir.set_batch_invariant(None)
