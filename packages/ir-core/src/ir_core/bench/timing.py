"""Median run time of a zero-argument callable on CPU or CUDA.

CUDA: ``triton.testing.do_bench`` (CUDA events, L2 cache flushed before each
rep, median), or CUDA events with an explicit L2 flush when Triton is
missing. CPU: ``torch.utils.benchmark.Timer`` blocks of at least ~2 ms,
repeated, median of the per-call times (all intra-op threads).

CUDA graph timing (:func:`time_cuda_graph`): ``calls`` back-to-back calls on
the same inputs captured in one CUDA graph, the graph replayed several times
between CUDA events, median replay time / calls. It is the device time per
call without the host's launch overhead; no L2 flush between the captured
calls, so inputs small enough to stay in L2 are read from it.

Stream timing (:func:`stream_time`): back-to-back calls as an eager program
makes them, no flush: what a call costs end to end, host overhead included
(``ir bench``'s stream column, ``ir tune``); :func:`best_of_rounds` compares
several callables that way in alternating rounds.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

#: CPU: a measurement's blocks stop growing past about this many seconds.
CPU_CAP_S = 0.1


@dataclass(frozen=True)
class TimingSpec:
    """How long to measure: ``rep_ms`` of timed reps after ``warmup_ms`` of
    warm-up (CUDA); ``cpu_blocks`` blocks of ``cpu_block_ms`` each (CPU)."""

    rep_ms: float = 100.0
    warmup_ms: float = 25.0
    cpu_blocks: int = 7
    cpu_block_ms: float = 2.0

    def scaled(self, factor: float) -> TimingSpec:
        """A cheaper (factor < 1) spec, never below a handful of reps."""
        return TimingSpec(
            max(5.0, self.rep_ms * factor),
            max(2.0, self.warmup_ms * factor),
            max(3, int(self.cpu_blocks * factor)),
            self.cpu_block_ms,
        )


def _do_bench() -> Callable[..., Any] | None:
    try:
        from triton.testing import do_bench
    except Exception:  # triton missing or broken: use plain CUDA events
        return None
    return do_bench  # type: ignore[no-any-return]


def _event() -> Any:
    return torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]


def _cuda_events(fn: Callable[[], Any], spec: TimingSpec, device: torch.device) -> float:
    flush = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device=device)
    fn()
    torch.cuda.synchronize(device)
    start, end = _event(), _event()
    start.record()
    for _ in range(5):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    estimate = max(float(start.elapsed_time(end)) / 5, 1e-3)
    for _ in range(max(1, int(spec.warmup_ms / estimate))):
        fn()
    reps = max(5, int(spec.rep_ms / estimate))
    starts = [_event() for _ in range(reps)]
    ends = [_event() for _ in range(reps)]
    for s, e in zip(starts, ends, strict=True):
        flush.zero_()
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize(device)
    times = [float(s.elapsed_time(e)) for s, e in zip(starts, ends, strict=True)]
    return statistics.median(times) / 1e3


def time_cuda(fn: Callable[[], Any], spec: TimingSpec, device: torch.device) -> float:
    """Median seconds per call of ``fn`` on ``device`` (L2 flushed between reps)."""
    with torch.cuda.device(device):
        do_bench = _do_bench()
        if do_bench is None:
            return _cuda_events(fn, spec, device)
        ms = do_bench(fn, warmup=spec.warmup_ms, rep=spec.rep_ms, return_mode="median")
        return float(ms) / 1e3


def time_cpu(fn: Callable[[], Any], spec: TimingSpec) -> float:
    """Median seconds per call of ``fn`` on the CPU (``torch.utils.benchmark``)."""
    # torch.utils.benchmark imports cpp_extension, which warns about a missing
    # CUDA runtime on CPU-only machines: noise in a CPU benchmark's output.
    ext_log = logging.getLogger("torch.utils.cpp_extension")
    level = ext_log.level
    ext_log.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        ext_log.setLevel(level)

    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    first = timer.timeit(1).median  # also the warm-up call
    number = max(1, int(spec.cpu_block_ms / 1e3 / max(first, 1e-9)))
    # slow calls (tens of ms) get fewer blocks: at least 3, about CPU_CAP_S in all
    blocks = max(3, min(spec.cpu_blocks, int(CPU_CAP_S / max(first * number, 1e-9))))
    return statistics.median(timer.timeit(number).median for _ in range(blocks))


#: CUDA graphs: aim for about this much device time per replay (fewer captured
#: calls for slow calls), never more than ``calls`` nor fewer than one call.
GRAPH_TARGET_S = 2e-3


def time_cuda_graph(
    fn: Callable[[], Any],
    device: torch.device,
    *,
    calls: int = 50,
    replays: int = 30,
) -> float:
    """Median device seconds per call of ``fn`` captured in a CUDA graph.

    ``fn`` is warmed up on a side stream (as capture requires), then up to
    ``calls`` calls (fewer when one call is slow, see :data:`GRAPH_TARGET_S`)
    are captured in one graph; the graph is replayed up to ``replays`` times
    (at least 3; fewer for slow calls), each between two CUDA events. Raises whatever capture raises
    (e.g. a call that synchronises or launches work on another stream).
    """
    if device.type != "cuda":
        raise RuntimeError(f"CUDA graphs need a CUDA device, not {device.type!r}")
    with torch.cuda.device(device):
        main = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(main)
        with torch.cuda.stream(side):
            fn()  # warm-up (first-call work such as compiles or workspace setup)
            start, end = _event(), _event()
            start.record()
            for _ in range(3):
                fn()
            end.record()
        main.wait_stream(side)
        torch.cuda.synchronize(device)
        estimate = max(float(start.elapsed_time(end)) / 3 / 1e3, 1e-7)
        n = max(1, min(calls, int(GRAPH_TARGET_S / estimate)))
        graph = torch.cuda.CUDAGraph()  # type: ignore[no-untyped-call]
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                for _ in range(n):
                    fn()
        finally:  # a failed capture can leave its side stream current
            torch.cuda.set_stream(main)
        graph.replay()  # first replay uploads the graph
        torch.cuda.synchronize(device)
        # slow calls: fewer replays (at least 3), about 10 target replays' worth
        reps = max(3, min(replays, int(10 * GRAPH_TARGET_S / (n * estimate))))
        pairs = [(_event(), _event()) for _ in range(reps)]
        for s, e in pairs:
            s.record()
            graph.replay()
            e.record()
        torch.cuda.synchronize(device)
        times = [float(s.elapsed_time(e)) / 1e3 / n for s, e in pairs]
        del graph
        return statistics.median(times)


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "xpu":
        torch.xpu.synchronize(device)


def stream_time(
    fn: Callable[[], Any],
    device: torch.device | str,
    *,
    budget_s: float = 0.01,
    repeats: int = 5,
    warmup: int = 2,
) -> float:
    """Median seconds per call of ``fn`` called back to back, as a stream of
    eager calls runs: host launch overhead for small kernels, device time for
    large ones (no L2 flush).

    ``warmup`` calls first (JIT compilation, autotuning, allocator), then
    ``repeats`` samples of back-to-back calls, each about
    ``budget_s / repeats`` long. On CUDA a sample is timed with events around
    its calls; elsewhere with the host clock and a final synchronisation.
    """
    device = torch.device(device)

    def sync() -> None:
        synchronize(device)

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
            start, end = _event(), _event()
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            samples.append(float(start.elapsed_time(end)) / 1e3 / inner)
        else:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def best_of_rounds(
    candidates: Sequence[
        tuple[str, Callable[[], Any], Callable[[], AbstractContextManager[Any]] | None]
    ],
    device: torch.device | str,
    *,
    budget_s: float = 0.02,
    rounds: int = 3,
) -> dict[str, float]:
    """Best of ``rounds`` :func:`stream_time` medians (seconds) for each
    ``(key, fn, scope)``.

    The candidates are timed in turn, round after round, so a slow phase of
    the machine (clock changes, another process) hits them all alike instead
    of deciding the comparison; each keeps its fastest round. Round ``r``
    starts at candidate ``r`` (mod their number): on a host-bound shape the
    first timing after a switch of configuration was measured slower (H100
    machine, ``ir tune --compare``: the same selector 8.7 us second in the
    round, 11.8 us first), so no candidate may always go first. ``scope`` (a
    context manager factory, e.g. a scoped priority) is entered around the
    candidate's timing, never inside the timed loop. ``budget_s`` is per
    candidate, spread over the rounds.
    """
    best: dict[str, float] = {}
    per_round = budget_s / max(1, rounds)
    n = len(candidates)
    for r in range(max(1, rounds)):
        start = r % n if n else 0
        for key, fn, scope in [*candidates[start:], *candidates[:start]]:
            with scope() if scope is not None else nullcontext():
                s = stream_time(fn, device, budget_s=per_round)
            best[key] = min(s, best.get(key, s))
    return best


def median_time(fn: Callable[[], Any], device: torch.device, spec: TimingSpec) -> float:
    """Median seconds per call of ``fn`` on ``device`` (``cpu`` or ``cuda``)."""
    if device.type == "cuda":
        return time_cuda(fn, spec, device)
    return time_cpu(fn, spec)
