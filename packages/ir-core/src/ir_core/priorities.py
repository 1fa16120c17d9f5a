"""Which providers an op tries, in which order, and batch-invariant mode.

Effective priority of an op, first match wins:

1. the scoped override (:func:`priority`, a ``contextvars`` value, so it is
   per thread and per asyncio task);
2. the process-wide setting (:func:`set_priority`, initialised from the
   environment variable ``IR_OP_PRIORITY``);
3. a tuned table (:func:`ir_core.load_priority`, ``IR_OP_PRIORITY_FILE``),
   which picks per call by shape bucket (see :mod:`ir_core.tuning`; it is
   applied in :mod:`ir_core.dispatch`, not by :func:`effective_priority`);
4. the current platform's default priority;
5. ``["native"]``.

Within one level an entry for the op beats the wildcard ``"*"``.
Batch-invariant mode follows the same layering (:func:`batch_invariant`,
:func:`set_batch_invariant`, ``IR_BATCH_INVARIANT=1``).

Scopes are immutable and interned, so each op can cache its resolved
candidate list per scope and the eager hot path does one ``ContextVar.get``
and one dict lookup.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from . import registry
from .errors import PriorityError

ENV_PRIORITY = "IR_OP_PRIORITY"
ENV_BATCH_INVARIANT = "IR_BATCH_INVARIANT"

PriorityList = tuple[str, ...]
PrioritySpec = Mapping[str, "Sequence[str] | str"]


class Scope:
    """One immutable layer of scoped settings. Compared by identity: equal
    scopes are interned so they share one identity (and one cache entry)."""

    __slots__ = ("batch_invariant", "priority", "tracer")

    def __init__(
        self, priority: dict[str, PriorityList], batch_invariant: bool | None, tracer: Any = None
    ) -> None:
        self.priority = priority
        self.batch_invariant = batch_invariant
        self.tracer = tracer

    def __repr__(self) -> str:
        return f"Scope(priority={self.priority}, batch_invariant={self.batch_invariant})"


_interned: dict[tuple[Any, ...], Scope] = {}
_intern_lock = threading.Lock()


def _make_scope(
    priority: dict[str, PriorityList], batch_invariant: bool | None, tracer: Any = None
) -> Scope:
    if tracer is not None:  # a trace is unique; never shared
        return Scope(priority, batch_invariant, tracer)
    key = (tuple(sorted(priority.items())), batch_invariant)
    with _intern_lock:
        scope = _interned.get(key)
        if scope is None:
            scope = _interned[key] = Scope(dict(priority), batch_invariant)
        return scope


ROOT_SCOPE = _make_scope({}, None)
_scope_var: ContextVar[Scope] = ContextVar("ir_scope", default=ROOT_SCOPE)
#: Hot-path accessor: ``current_scope()`` is ``_scope_var.get``.
current_scope = _scope_var.get


@contextlib.contextmanager
def _enter(scope: Scope) -> Iterator[Scope]:
    token = _scope_var.set(scope)
    try:
        yield scope
    finally:
        _scope_var.reset(token)


# --------------------------------------------------------------- parsing


def parse_priority_string(text: str, *, source: str = "priority string") -> dict[str, list[str]]:
    """Parse ``"rms_norm=cuda,native;*=triton,native"`` into a mapping.

    Raises :class:`PriorityError` naming ``source`` for malformed text.
    """
    out: dict[str, list[str]] = {}
    for part in text.replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        op, sep, providers = part.partition("=")
        op = op.strip()
        if not sep or not op:
            raise PriorityError(
                f"{source}: malformed entry {part!r}; expected OP=PROVIDER[,PROVIDER...] "
                f"as in 'rms_norm=cuda,native;*=triton,native'"
            )
        if op in out:
            raise PriorityError(f"{source}: op {op!r} is given twice")
        out[op] = [p.strip() for p in providers.split(",")]
    return out


def _normalize_list(
    op: str, value: Sequence[str] | str, *, source: str, known: set[str]
) -> PriorityList:
    names = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    if not names:
        raise PriorityError(f"{source}: empty priority list for op {op!r}")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not registry.NAME_RE.match(name):
            raise PriorityError(f"{source}: bad provider name {name!r} for op {op!r}")
        if name in seen:
            raise PriorityError(f"{source}: provider {name!r} is listed twice for op {op!r}")
        seen.add(name)
        if name not in known:
            raise PriorityError(
                f"{source}: unknown provider {name!r} for op {op!r}; registered providers: "
                f"{', '.join(sorted(registry.registered_providers()))}; known names: "
                f"{', '.join(sorted(known))}"
            )
    return tuple(names)


def normalize_priority(
    spec: PrioritySpec | str, *, source: str = "priority"
) -> dict[str, PriorityList]:
    """Validate a priority mapping (or string) and return it normalised.

    Keys are op names or ``"*"``; values are provider lists or comma strings.
    Every provider must be known (see :func:`ir_core.registry.known_providers`).
    """
    from .providers import load_providers

    load_providers()  # provider and op names come from the installed packages
    if isinstance(spec, str):
        spec = parse_priority_string(spec, source=source)
    if not isinstance(spec, Mapping):
        raise PriorityError(
            f"{source}: expected a mapping op -> providers, got {type(spec).__name__}"
        )
    ops = registry.ops()
    known = registry.known_providers()
    out: dict[str, PriorityList] = {}
    for op, value in spec.items():
        if op != "*" and op not in ops:
            raise PriorityError(
                f"{source}: unknown op {op!r}; registered ops: {', '.join(sorted(ops))}"
            )
        out[op] = _normalize_list(op, value, source=source, known=known)
    return out


# ------------------------------------------------------- process-wide state


class _ProcessState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.api_priority: dict[str, PriorityList] = {}
        self.env_priority: dict[str, PriorityList] | None = None  # parsed lazily
        self.api_batch_invariant: bool | None = None

    def env(self) -> dict[str, PriorityList]:
        if self.env_priority is None:
            text = os.environ.get(ENV_PRIORITY, "")
            self.env_priority = (
                normalize_priority(text, source=ENV_PRIORITY) if text.strip() else {}
            )
        return self.env_priority


_process = _ProcessState()


def set_priority(spec: PrioritySpec | str | None, *, replace: bool = False) -> None:
    """Set process-wide priorities, e.g. ``{"rms_norm": ["cuda", "native"], "*": ["triton", "native"]}``.

    Entries are merged into the current process-wide setting unless
    ``replace=True``. ``set_priority(None)`` forgets every API setting, so the
    environment's ``IR_OP_PRIORITY`` (or the platform default) applies again.
    """
    new = {} if spec is None else normalize_priority(spec, source="set_priority")
    with _process.lock:
        if spec is None or replace:
            _process.api_priority = new
        else:
            _process.api_priority = {**_process.api_priority, **new}
    registry.invalidate_dispatch_caches()


def get_priority() -> dict[str, PriorityList]:
    """The process-wide priority mapping (environment merged with API calls)."""
    return {**_process.env(), **_process.api_priority}


def set_batch_invariant(enabled: bool | None) -> None:
    """Turn process-wide batch-invariant mode on or off (``None``: back to ``IR_BATCH_INVARIANT``)."""
    with _process.lock:
        _process.api_batch_invariant = enabled
    registry.invalidate_dispatch_caches()


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise PriorityError(f"{name}: expected 0 or 1, got {value!r}")


def is_batch_invariant(scope: Scope | None = None) -> bool:
    """Whether batch-invariant mode is on in ``scope`` (default: the current one)."""
    scope = current_scope() if scope is None else scope
    if scope.batch_invariant is not None:
        return scope.batch_invariant
    if _process.api_batch_invariant is not None:
        return _process.api_batch_invariant
    return _env_flag(ENV_BATCH_INVARIANT)


def effective_priority(op: str, scope: Scope | None = None) -> tuple[PriorityList, str]:
    """The provider list ``op`` uses in ``scope`` and where it came from
    (``"scoped"``, ``"process"``, ``"platform <name>"`` or ``"fallback"``).

    A tuned table (level 3) is not reflected here: where the source is the
    platform or the fallback and the op has a tuned table, dispatch refines
    this list per call (:meth:`ir_core.dispatch.Resolution.for_call`)."""
    from .platforms import current_platform

    scope = current_scope() if scope is None else scope
    platform = current_platform()
    levels: list[tuple[str, Mapping[str, Sequence[str]]]] = [
        ("scoped", scope.priority),
        ("process", get_priority()),
        (f"platform {platform.name}", platform.default_priority),
    ]
    for source, mapping in levels:
        for key in (op, "*"):
            if key in mapping:
                return tuple(mapping[key]), source
    return ("native",), "fallback"


# ----------------------------------------------------------- scoped state


@contextlib.contextmanager
def priority(
    spec: PrioritySpec | str | None = None, /, **ops: Sequence[str] | str
) -> Iterator[None]:
    """Scoped priority override for this thread or asyncio task.

    ``with ir.priority(rms_norm=["triton", "native"]): ...`` or
    ``with ir.priority({"*": ["triton", "native"]}): ...``. Nested scopes
    merge; the previous scope is restored on exit, also on exception.
    """
    merged: dict[str, Any] = (
        dict(spec)
        if isinstance(spec, Mapping)
        else (parse_priority_string(spec, source="priority") if isinstance(spec, str) else {})
    )
    merged.update(ops)
    new = normalize_priority(merged, source="priority")
    outer = current_scope()
    scope = _make_scope({**outer.priority, **new}, outer.batch_invariant, outer.tracer)
    with _enter(scope):
        yield


@contextlib.contextmanager
def batch_invariant(enabled: bool = True) -> Iterator[None]:
    """Scoped batch-invariant mode: only implementations whose output rows do
    not depend on the batch they are in are chosen."""
    outer = current_scope()
    with _enter(_make_scope(outer.priority, bool(enabled), outer.tracer)):
        yield


@contextlib.contextmanager
def _with_tracer(tracer: Any) -> Iterator[None]:
    outer = current_scope()
    with _enter(_make_scope(outer.priority, outer.batch_invariant, tracer)):
        yield


# ------------------------------------------------------ argparse helpers

_ARG_PREFIX = "ir_op_priority."


def add_priority_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ir-op-priority OP=P,P;...`` and one ``--ir-op-priority.OP=P,P``
    per registered op (and ``--ir-op-priority.*``) to an engine's parser.

    Apply the parsed namespace with :func:`apply_priority_arguments`.
    """
    from .providers import load_providers

    load_providers()
    group = parser.add_argument_group("ir op priority")
    group.add_argument(
        "--ir-op-priority",
        dest="ir_op_priority",
        default=None,
        metavar="SPEC",
        help="e.g. 'rms_norm=cuda,native;*=triton,native'",
    )
    for name in ["*", *sorted(registry.ops())]:
        group.add_argument(
            f"--ir-op-priority.{name}",
            dest=_ARG_PREFIX + name,
            default=None,
            metavar="P,P",
            help=f"provider priority of {name}",
        )


def priority_from_arguments(namespace: argparse.Namespace) -> dict[str, PriorityList]:
    """The validated priority mapping given on the command line (may be empty)."""
    spec: dict[str, Any] = {}
    combined = getattr(namespace, "ir_op_priority", None)
    if combined:
        spec.update(parse_priority_string(combined, source="--ir-op-priority"))
    for key, value in vars(namespace).items():
        if key.startswith(_ARG_PREFIX) and value:
            spec[key[len(_ARG_PREFIX) :]] = value
    return normalize_priority(spec, source="--ir-op-priority") if spec else {}


def apply_priority_arguments(namespace: argparse.Namespace) -> dict[str, PriorityList]:
    """Apply :func:`priority_from_arguments` process-wide and return it."""
    spec = priority_from_arguments(namespace)
    if spec:
        set_priority(spec)
    return spec
