"""``ir.trace()``: record which provider ran for each op call.

A trace is part of the dispatch scope, so it costs nothing when off: inside
``with ir.trace() as t`` each op resolves to selectors that record, outside
it the usual cached selectors run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .explain import describe_args
from .priorities import _with_tracer


@dataclass(frozen=True)
class TraceRecord:
    """One op call: the op, the provider that ran and a summary of its arguments."""

    op: str
    provider: str
    args: str


class Trace:
    """The records of one ``ir.trace()`` block, in call order."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self._lock = threading.Lock()

    def _record(self, op: str, provider: str, args: tuple[Any, ...]) -> None:
        from . import registry

        names = registry.get(op).param_names
        rec = TraceRecord(op, provider, describe_args(args, names))
        with self._lock:
            self.records.append(rec)

    def providers(self, op: str | None = None) -> list[str]:
        """The providers that ran, in order (only those of ``op`` if given)."""
        return [r.provider for r in self.records if op is None or r.op == op]

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(list(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def __str__(self) -> str:
        return "\n".join(f"{r.op} -> {r.provider}  ({r.args})" for r in self.records)


@contextlib.contextmanager
def trace() -> Iterator[Trace]:
    """Record ``(op, provider, argument summary)`` for every IR op call made in
    this thread or task inside the block (eager calls and torch-op kernel calls)."""
    from . import registry

    t = Trace()
    try:
        with _with_tracer(t):
            yield t
    finally:
        # the trace's scope is unique: drop it from every op's cache
        for op in registry.ops().values():
            for cache in (op._cache, op._inplace_cache):
                for scope in [s for s in list(cache) if s.tracer is t]:
                    cache.pop(scope, None)
