"""AMD GPU architecture facts the build needs: the gfx target and the
wavefront size it compiles for."""

from __future__ import annotations

import torch


def rocm_unavailable_reason() -> str | None:
    """Why the ROCm providers cannot run in this process (``None``: they can)."""
    if getattr(torch.version, "hip", None) is None:
        cuda = getattr(torch.version, "cuda", None)
        build = f"a CUDA {cuda} build" if cuda else "a CPU-only build"
        return f"torch {torch.__version__} is {build}, not a ROCm (HIP) build"
    if not torch.cuda.is_available():
        return "torch is a ROCm build but sees no AMD GPU (torch.cuda.is_available() is False)"
    return None


def gfx_arch(device: int | None = None) -> str:
    """The full offload target of a device, e.g. ``gfx942:sramecc+:xnack-``."""
    index = torch.cuda.current_device() if device is None else device
    props = torch.cuda.get_device_properties(index)
    name = getattr(props, "gcnArchName", "") or ""
    if not name.startswith("gfx"):
        raise RuntimeError(f"device {index} ({props.name}) reports no gfx architecture ({name!r})")
    return name


def base_arch(arch: str) -> str:
    """``gfx942:sramecc+:xnack-`` -> ``gfx942``."""
    return arch.split(":", 1)[0]


def wavefront_size(arch: str) -> int:
    """Wavefront size the compiler uses by default for ``arch``: 64 on GCN and
    CDNA (``gfx9*``: MI100/MI200/MI300/MI350), 32 on RDNA (``gfx10*``,
    ``gfx11*``, ``gfx12*``)."""
    base = base_arch(arch)
    if not base.startswith("gfx") or len(base) < 5:
        raise ValueError(f"not a gfx architecture: {arch!r}")
    major = base[3:-2] if len(base) >= 6 else base[3:4]
    try:
        generation = int(major)
    except ValueError as exc:
        raise ValueError(f"cannot read the generation of {arch!r}") from exc
    return 64 if generation <= 9 else 32


def device_wavefront_size(device: int | None = None) -> int:
    """The wavefront size of a device, as torch reports it when it can
    (``warp_size``), else from its architecture."""
    index = torch.cuda.current_device() if device is None else device
    props = torch.cuda.get_device_properties(index)
    size = getattr(props, "warp_size", None)
    return int(size) if size else wavefront_size(gfx_arch(index))
