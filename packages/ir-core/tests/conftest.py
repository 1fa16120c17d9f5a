"""Fixtures for ir-core tests: temporary providers and ops that leave no trace."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ir_core as ir
from ir_core import priorities, registry, testing, torch_binding

_counter = itertools.count()


@pytest.fixture
def temp_impl() -> Iterator[Callable[..., Any]]:
    """``temp_impl(op, fn, provider=None, **register_kwargs) -> provider name``;
    every implementation registered through it is removed after the test."""
    with testing.temporary_impls() as add:
        yield add


@pytest.fixture
def temp_op_name() -> Iterator[str]:
    """A fresh op name; the op (if registered) is removed afterwards."""
    name = f"test_op_{next(_counter)}"
    yield name
    registry.remove(name)
    torch_binding.undefine(name)


@pytest.fixture(autouse=True)
def _clean_priority() -> Iterator[None]:
    """Every test starts and ends with no process-wide priority set."""
    ir.set_priority(None)
    ir.set_batch_invariant(None)
    yield
    ir.set_priority(None)
    ir.set_batch_invariant(None)
    with contextlib.suppress(Exception):
        ir.platforms.set_platform(None)
    priorities._process.env_priority = None
