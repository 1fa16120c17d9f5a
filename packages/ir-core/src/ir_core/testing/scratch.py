"""Implementations registered for the length of a test, then removed."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

_counter = itertools.count()


@contextlib.contextmanager
def temporary_impls() -> Iterator[Callable[..., str]]:
    """Yield ``add(op, fn, provider=None, **register_kwargs) -> provider name``.

    ``add`` registers ``fn`` as an implementation of ``op`` (under a fresh
    provider name unless one is given); every implementation added is
    unregistered when the block exits, also on an exception. Wrap it in a
    pytest fixture to give each test its own scratch providers.
    """
    added: list[tuple[Any, str]] = []

    def add(op: Any, fn: Callable[..., Any], provider: str | None = None, **kwargs: Any) -> str:
        name = provider or f"test_p{next(_counter)}"
        op.register_impl(name, **kwargs)(fn)
        added.append((op, name))
        return name

    try:
        yield add
    finally:
        for op, name in added:
            if name in op.impls:
                op.unregister_impl(name)
