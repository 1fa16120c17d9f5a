"""The cache key of the IR passes: everything a lowering decision depends on.

Inductor's FX graph cache and AOTAutograd's cache put a custom pass's
``uuid()`` into their keys. The IR passes choose code from state outside the
graph (priorities, batch-invariant mode, installed providers, their code), so
the key has to cover all of it: then a changed choice can never be served an
artifact compiled for another one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import ir_core
from ir_core import registry, tuning
from ir_core.platforms import current_platform
from ir_core.priorities import current_scope, effective_priority, is_batch_invariant
from ir_core.providers import load_providers, package_versions


@functools.lru_cache(maxsize=1)
def own_source_hash() -> str:
    """sha256 of every module of ``ir_compile`` (a change to the passes is a new key)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_state(options: Any = None) -> dict[str, Any]:
    """The state a lowering decision depends on, in the current scope.

    Per op: the effective priority and where it came from, and per registered
    implementation its provider, package, source hash, ``inplace``,
    ``batch_invariant`` and whether it is supported here. Globally: the
    batch-invariant mode, the active tuned priority file (its fingerprint), the
    platform, provider package versions, the
    versions of ir-core and ir-compile, the source hash of ir-compile and the
    pass's own ``options``.
    """
    from . import __version__

    load_providers()
    scope = current_scope()
    ops: dict[str, Any] = {}
    for name, op in sorted(registry.ops().items()):
        prio, source = effective_priority(name, scope)
        impls = []
        for provider, impl in sorted(op.impls.items()):
            impls.append(
                [
                    provider,
                    impl.package,
                    impl.source_hash(),
                    impl.inplace,
                    impl.batch_invariant,
                    impl.is_supported(),
                ]
            )
        ops[name] = {"priority": list(prio), "source": source, "schema": op.schema, "impls": impls}
    platform = current_platform()
    return {
        "ops": ops,
        "batch_invariant": is_batch_invariant(scope),
        "tuned_priority": tuning.fingerprint(),
        "platform": platform.name,
        "packages": dict(sorted(package_versions().items())),
        "ir_core": ir_core.__version__,
        "ir_compile": __version__,
        "ir_compile_source": own_source_hash(),
        "options": options,
    }


def cache_key(options: Any = None) -> str:
    """sha256 (hex) of :func:`cache_state`."""
    text = json.dumps(cache_state(options), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
