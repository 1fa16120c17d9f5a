"""Provider packages found through the entry-point group ``ir.providers``.

Each entry point names a module whose import registers implementations
(``ir.ops.rms_norm.register_impl("triton", ...)``). They are imported lazily,
once, on the first dispatch or the first explicit :func:`load_providers`.
A package that fails to import is skipped with one warning; ``ir info`` shows
it with its error. It never breaks the process.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass, field
from importlib import metadata

logger = logging.getLogger(__name__)

PROVIDER_GROUP = "ir.providers"
ENV_DISABLE = "IR_DISABLE_PROVIDER_PACKAGES"


@dataclass
class ProviderPackage:
    """One ``ir.providers`` entry point and what became of it."""

    entry_point: str
    module: str
    distribution: str
    version: str
    loaded: bool = False
    error: str | None = None
    #: provider names whose implementations the import registered
    providers: set[str] = field(default_factory=set)


_lock = threading.RLock()
_packages: dict[str, ProviderPackage] | None = None
_loading_state = threading.local()


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=PROVIDER_GROUP))


def declared_provider_names() -> set[str]:
    """Entry-point names of installed provider packages (nothing imported)."""
    return {ep.name for ep in _entry_points()}


def currently_loading() -> ProviderPackage | None:
    """The package whose import is running in this thread, if any (used to tag
    implementations with the package that registered them)."""
    return getattr(_loading_state, "package", None)


def _disabled() -> set[str]:
    import os

    return {n.strip() for n in os.environ.get(ENV_DISABLE, "").split(",") if n.strip()}


def load_providers() -> dict[str, ProviderPackage]:
    """Import every installed provider package once (idempotent, thread-safe).

    Set ``IR_DISABLE_PROVIDER_PACKAGES=name,name`` to skip entry points by name.
    Returns the packages by entry-point name.
    """
    global _packages
    if _packages is not None:
        return _packages
    with _lock:
        if _packages is not None:
            return _packages
        if getattr(_loading_state, "busy", False):  # a provider's import called us back
            return {}
        _loading_state.busy = True
        found: dict[str, ProviderPackage] = {}
        try:
            disabled = _disabled()
            for ep in _entry_points():
                dist = getattr(ep, "dist", None)
                pkg = ProviderPackage(
                    entry_point=ep.name,
                    module=ep.value,
                    distribution=dist.metadata["Name"] if dist is not None else "?",
                    version=dist.version if dist is not None else "?",
                )
                found[ep.name] = pkg
                if ep.name in disabled:
                    pkg.error = f"disabled by {ENV_DISABLE}"
                    continue
                _loading_state.package = pkg
                try:
                    importlib.import_module(ep.value.split(":")[0])
                    pkg.loaded = True
                except Exception as exc:  # never let a broken plugin break the process
                    pkg.error = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "ir: provider package %r (%s %s) failed to import and is skipped: %s",
                        ep.name,
                        pkg.distribution,
                        pkg.version,
                        pkg.error,
                    )
                finally:
                    _loading_state.package = None
        finally:
            _loading_state.busy = False
        _packages = found
    from . import registry

    registry.invalidate_dispatch_caches()
    return _packages


def provider_packages() -> dict[str, ProviderPackage]:
    """Installed provider packages (loading them if not yet done)."""
    return dict(load_providers())


def package_versions() -> dict[str, str]:
    """``{distribution: version}`` of every installed provider package."""
    return {p.distribution: p.version for p in load_providers().values()}
