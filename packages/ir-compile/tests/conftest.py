"""Fixtures for ir-compile tests: temporary providers and clean priorities."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ir_core as ir

_counter = itertools.count()


@pytest.fixture
def temp_impl() -> Iterator[Callable[..., str]]:
    """``temp_impl(op, fn, provider=None, **register_kwargs) -> provider name``;
    removed after the test."""
    added: list[tuple[Any, str]] = []

    def add(op: Any, fn: Callable[..., Any], provider: str | None = None, **kwargs: Any) -> str:
        name = provider or f"ctest_p{next(_counter)}"
        op.register_impl(name, **kwargs)(fn)
        added.append((op, name))
        return name

    yield add
    for op, name in added:
        if name in op.impls:
            op.unregister_impl(name)


@pytest.fixture(autouse=True)
def _clean_priority() -> Iterator[None]:
    ir.set_priority(None)
    ir.set_batch_invariant(None)
    yield
    ir.set_priority(None)
    ir.set_batch_invariant(None)
