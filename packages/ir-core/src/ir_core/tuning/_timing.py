"""A small timing helper for ``ir tune``.

Not :mod:`ir_core.bench.timing` on purpose: that one times single calls with
the L2 cache flushed between reps (``triton.testing.do_bench``), i.e. kernel
time alone. Tuned priorities are for eager dispatch, where a stream of calls
also pays each provider's launch cost (a Triton launch costs several times a
C++ one), which decides the small-token buckets; so this helper times calls
back to back, as :func:`ir_core.tuning.measure.compare` does.
:func:`time_interleaved` times several candidates in alternating rounds, so
that the machine's drift does not decide between them.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch


def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    if device.type == "xpu":
        return torch.xpu.synchronize
    return lambda: None


def time_us(
    fn: Callable[[], Any],
    device: torch.device | str,
    *,
    budget_s: float = 0.02,
    repeats: int = 5,
    warmup: int = 2,
) -> float:
    """Median time of one call of ``fn`` in microseconds.

    ``warmup`` calls first (JIT compilation, autotuning, allocator), then
    ``repeats`` samples of back-to-back calls, each sample about
    ``budget_s / repeats`` long. On CUDA a sample is timed with events around
    the calls, so it measures what a stream of eager calls costs: launch
    overhead for small kernels, GPU time for large ones.
    """
    device = torch.device(device)
    sync = _sync(device)
    for _ in range(max(1, warmup)):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = int(max(1, min(100_000, budget_s / repeats / one)))
    samples: list[float] = []
    for _ in range(repeats):
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3 / inner)
        else:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            samples.append((time.perf_counter() - t0) * 1e6 / inner)
    return statistics.median(samples)


#: Rounds of :func:`time_interleaved`: every candidate is timed once per round.
ROUNDS = 3


def time_interleaved(
    candidates: Sequence[
        tuple[str, Callable[[], Any], Callable[[], contextlib.AbstractContextManager[Any]] | None]
    ],
    device: torch.device | str,
    *,
    budget_s: float = 0.02,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Best of ``rounds`` :func:`time_us` medians for each ``(key, fn, scope)``.

    The candidates are timed in turn, round after round, so a slow phase of
    the machine (clock changes, another process) hits them all alike instead
    of deciding the comparison; each keeps its fastest round. ``scope`` (a
    context manager factory, e.g. a scoped priority) is entered around the
    candidate's timing, never inside the timed loop. ``budget_s`` is per
    candidate, spread over the rounds.
    """
    best: dict[str, float] = {}
    per_round = budget_s / max(1, rounds)
    for _ in range(max(1, rounds)):
        for key, fn, scope in candidates:
            with scope() if scope is not None else contextlib.nullcontext():
                us = time_us(fn, device, budget_s=per_round)
            best[key] = min(us, best.get(key, us))
    return best
