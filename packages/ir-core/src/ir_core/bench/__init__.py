"""``ir bench``: every provider of every op side by side on this machine.

For each op, a sweep of shapes (tokens x hidden) built by the op's input
generator; for each candidate (eager native, every registered provider
supported here, ``torch.compile`` of native, plain-torch baselines) the
output is checked against native and the median time measured. GB/s come
from the bytes the op must move (:mod:`.traffic`) and are compared with the
device's copy bandwidth measured at the start (:mod:`.bandwidth`).
"""

from __future__ import annotations

from .bandwidth import copy_bandwidth, device_info, versions
from .report import BenchResult, markdown
from .sweep import BenchConfig, Row, run_sweep
from .timing import TimingSpec, median_time
from .traffic import bytes_moved

__all__ = [
    "BenchConfig",
    "BenchResult",
    "Row",
    "TimingSpec",
    "bytes_moved",
    "copy_bandwidth",
    "device_info",
    "markdown",
    "median_time",
    "run_sweep",
    "versions",
]
