"""One benchmark run: measure the copy bandwidth, sweep, collect a :class:`BenchResult`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch

from .. import registry
from ..providers import load_providers
from .bandwidth import copy_bandwidth, device_info, versions
from .progress import Progress
from .report import BenchResult
from .sweep import BenchConfig, Row, count_tasks, dtype_name, run_sweep, sort_rows

logger = logging.getLogger(__name__)


def run_bench(
    config: BenchConfig,
    *,
    command: Sequence[str] = (),
    progress: bool = True,
    notes: Sequence[str] = (),
) -> BenchResult:
    """Run the sweep described by ``config``.

    A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned into one by the CLI)
    ends the sweep early: the rows measured so far are returned with
    ``complete=False``.
    """
    load_providers()
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, command, progress, notes)
    finally:
        torch.set_num_threads(threads_before)


def _run(
    config: BenchConfig, command: Sequence[str], progress: bool, notes: Sequence[str]
) -> BenchResult:
    start = time.perf_counter()
    copy_bw = copy_bandwidth(config.device, config.timing)
    logger.info("ir bench: copy bandwidth %.1f GB/s", copy_bw / 1e9)
    cfg = {
        "ops": list(config.ops),
        "providers": config.providers,
        "dtype": dtype_name(config.dtype),
        "tokens": list(config.tokens),
        "hidden": list(config.hidden),
        "device": str(config.device),
        "compiled": config.compiled,
        "timing": config.timing_mode,
        "rep_ms": config.timing.rep_ms,
        "warmup_ms": config.timing.warmup_ms,
        "cpu_blocks": config.timing.cpu_blocks,
        "budget_s": config.budget_s,
        "seed": config.seed,
        "threads": torch.get_num_threads(),
    }
    result = BenchResult(
        [], device_info(config.device), versions(), cfg, copy_bw, list(command), notes=list(notes)
    )
    widened = [name for name in config.ops if registry.get(name).bench_width is not None]
    if widened:
        result.notes.append(
            f"{', '.join(widened)}: input rows of 2 x d with d = the MLP's intermediate size "
            "(3.5 x hidden: 2048 -> 7168, 4096 -> 14336, 8192 -> 28672); the hidden column is the model's"
        )
    bar = Progress(count_tasks(config), enabled=progress)
    rows: list[Row] = result.rows
    try:
        for row in run_sweep(config, copy_bw, bar.step):
            rows.append(row)
    except KeyboardInterrupt:
        result.complete = False
        result.notes.append("interrupted: the rows measured before the interruption are kept")
    finally:
        bar.close()
    if any(r.reason.startswith("time budget") for r in rows):
        result.notes.append(
            f"the time budget ({config.budget_s:.0f} s) was reached: later shapes were "
            "timed with fewer reps and compiled native was skipped there"
        )
    result.rows[:] = sort_rows(rows, config)
    result.elapsed_s = time.perf_counter() - start
    return result
