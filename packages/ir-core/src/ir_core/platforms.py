"""Platforms: which kind of accelerator this process runs on, its default
priorities, and device capabilities read per device index.

Built in: ``cuda``, ``rocm``, ``xpu`` and ``cpu``. An out-of-tree platform
registers through the entry-point group ``ir.platforms``: the entry point
names a :class:`Platform` instance (or a zero-argument callable returning one)
whose ``is_current()`` says whether this process runs on it. The first
out-of-tree platform that says so wins over the built-in detection.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import torch

logger = logging.getLogger(__name__)

PLATFORM_GROUP = "ir.platforms"


@dataclass(frozen=True)
class Platform:
    """A platform: a name, the torch device type its tensors live on, and the
    default provider priority of each op (``"*"`` for every op)."""

    name: str
    device_type: str
    default_priority: Mapping[str, Sequence[str]] = field(default_factory=dict)
    is_current: Callable[[], bool] = field(default=lambda: False, compare=False)
    #: The package that declared it (for ``ir info``); empty when built in.
    package: str = ""


def _cuda_current() -> bool:
    return torch.cuda.is_available() and torch.version.hip is None


def _rocm_current() -> bool:
    return torch.cuda.is_available() and torch.version.hip is not None


def _xpu_current() -> bool:
    return hasattr(torch, "xpu") and torch.xpu.is_available()


BUILTIN_PLATFORMS: tuple[Platform, ...] = (
    Platform("cuda", "cuda", {"*": ("cuda", "triton", "native")}, _cuda_current),
    Platform("rocm", "cuda", {"*": ("aiter", "rocm", "triton", "native")}, _rocm_current),
    Platform("xpu", "xpu", {"*": ("xpu", "triton", "native")}, _xpu_current),
    Platform("cpu", "cpu", {"*": ("native",)}, lambda: True),
)

_lock = threading.Lock()
_current: Platform | None = None
_oot: list[Platform] | None = None
#: (entry point name, error) for each out-of-tree platform that failed to load.
platform_errors: list[tuple[str, str]] = []


def out_of_tree_platforms() -> list[Platform]:
    """Platforms declared by installed packages (loaded once)."""
    global _oot
    with _lock:
        if _oot is None:
            found: list[Platform] = []
            for ep in metadata.entry_points(group=PLATFORM_GROUP):
                try:
                    obj: Any = ep.load()
                    plat = obj() if callable(obj) and not isinstance(obj, Platform) else obj
                    if not isinstance(plat, Platform):
                        raise TypeError(
                            f"expected an ir_core.platforms.Platform, got {type(plat).__name__}"
                        )
                    dist = getattr(ep, "dist", None)
                    if dist is not None and not plat.package:
                        plat = Platform(
                            plat.name,
                            plat.device_type,
                            plat.default_priority,
                            plat.is_current,
                            dist.metadata["Name"],
                        )
                    found.append(plat)
                except Exception as exc:  # a broken plugin must not break the process
                    logger.warning("ir: platform entry point %r failed to load: %s", ep.name, exc)
                    platform_errors.append((ep.name, f"{type(exc).__name__}: {exc}"))
            _oot = found
        return list(_oot)


def _detect() -> Platform:
    for plat in out_of_tree_platforms():
        try:
            if plat.is_current():
                return plat
        except Exception as exc:
            logger.warning("ir: platform %r is_current() raised: %s", plat.name, exc)
    for plat in BUILTIN_PLATFORMS:
        if plat.is_current():
            return plat
    raise AssertionError("unreachable: cpu is always current")


def current_platform() -> Platform:
    """The platform of this process (detected once; see :func:`set_platform`)."""
    global _current
    if _current is None:
        plat = _detect()
        with _lock:
            if _current is None:
                _current = plat
    return _current


def set_platform(platform: Platform | str | None) -> None:
    """Override platform detection (tests, or an engine that knows better).
    ``None`` detects again."""
    global _current
    from . import registry

    if isinstance(platform, str):
        by_name = {p.name: p for p in (*out_of_tree_platforms(), *BUILTIN_PLATFORMS)}
        if platform not in by_name:
            raise ValueError(f"unknown platform {platform!r}; known: {', '.join(by_name)}")
        platform = by_name[platform]
    with _lock:
        _current = platform
    registry.invalidate_dispatch_caches()


# ------------------------------------------------------------ capabilities


@functools.cache
def _capability(device_type: str, index: int) -> tuple[int, int]:
    if device_type == "cuda":
        return tuple(torch.cuda.get_device_capability(index))  # type: ignore[return-value]
    return (0, 0)


def device_capability(
    device: torch.device | torch.Tensor | int | str | None = None,
) -> tuple[int, int]:
    """Compute capability ``(major, minor)`` of one device, read once per
    device index, so a process with two different GPUs gets each one's own.

    Accepts a tensor (its device), a device, an index or ``None`` (the current
    CUDA device). Non-CUDA devices report ``(0, 0)``.
    """
    if isinstance(device, torch.Tensor):
        device = device.device
    if device is None or isinstance(device, int):
        if not torch.cuda.is_available():
            return (0, 0)
        return _capability("cuda", torch.cuda.current_device() if device is None else device)
    dev = torch.device(device)
    if dev.type != "cuda":
        return (0, 0)
    return _capability("cuda", torch.cuda.current_device() if dev.index is None else dev.index)


def has_capability(x: torch.Tensor, at_least: tuple[int, int]) -> bool:
    """True when tensor ``x`` lives on a CUDA device of capability ``>= at_least``."""
    return x.is_cuda and device_capability(x) >= at_least
