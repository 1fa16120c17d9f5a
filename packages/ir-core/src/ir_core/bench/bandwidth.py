"""The device's copy bandwidth, and a description of the device and software.

The copy bandwidth (``dst.copy_(src)`` of a buffer much larger than any
cache, read plus write bytes) is the practical ceiling a memory-bound kernel
can reach; the benchmark reports each kernel's GB/s as a share of it.
"""

from __future__ import annotations

import platform as _platform
import sys
from typing import Any

import torch

from .timing import TimingSpec, median_time

#: Buffer sizes of the copy measurement: far beyond L2 (GPU) or LLC (CPU).
CUDA_COPY_BYTES = 1 << 30
CPU_COPY_BYTES = 1 << 27


def copy_bandwidth(device: torch.device, spec: TimingSpec | None = None) -> float:
    """Measured copy bandwidth of ``device`` in bytes per second (read + write)."""
    size = CUDA_COPY_BYTES if device.type == "cuda" else CPU_COPY_BYTES
    src = torch.ones(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds = median_time(lambda: dst.copy_(src), device, spec or TimingSpec())
    return 2 * size / seconds


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def device_info(device: torch.device) -> dict[str, Any]:
    """Name, type and (CUDA) compute capability and memory of ``device``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        major, minor = torch.cuda.get_device_capability(device)
        return {
            "type": "cuda",
            "index": device.index if device.index is not None else torch.cuda.current_device(),
            "name": props.name,
            "capability": f"{major}.{minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "sm_count": props.multi_processor_count,
        }
    return {
        "type": device.type,
        "name": _cpu_name(),
        "capability": None,
        "threads": torch.get_num_threads(),
    }


def versions() -> dict[str, Any]:
    """Python, torch, CUDA, Triton, ir-core and provider package versions."""
    from .. import __version__
    from ..providers import package_versions

    try:
        import triton

        triton_version: str | None = triton.__version__
    except Exception:
        triton_version = None
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": triton_version,
        "ir_core": __version__,
        "provider_packages": package_versions(),
    }
