"""The sweep: every op x shape x candidate, checked against native and timed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .. import registry
from ..op import IrOp
from ..testing import compare_outputs
from .candidates import NATIVE, Candidate, Skip, candidates_for, clone_args, compile_limits
from .timing import TimingSpec, median_time, stream_time, synchronize, time_cuda_graph
from .traffic import bytes_moved

logger = logging.getLogger(__name__)

#: Seconds of back-to-back calls behind a row's stream time (GPU only).
STREAM_BUDGET_S = 0.01
BUDGET_REASON = "time budget (--budget-s) reached: compile skipped"
#: ``--timing`` choices: eager (the timer's median of single calls), graph
#: (per-call device time inside a CUDA graph), or both.
TIMING_MODES = ("eager", "graph", "both")


@dataclass
class BenchConfig:
    """What to benchmark. ``providers`` None means every registered one;
    ``budget_s``: past this many seconds, compiled native is skipped and reps
    shrink, so a capped run still finishes with every shape."""

    ops: list[str]
    dtype: torch.dtype
    tokens: list[int]
    hidden: list[int]
    device: torch.device
    providers: list[str] | None = None
    compiled: bool = True
    timing: TimingSpec = field(default_factory=TimingSpec)
    budget_s: float | None = None
    seed: int = 0
    #: CPU intra-op threads for the run (None: leave torch's setting)
    threads: int | None = None
    #: one of :data:`TIMING_MODES`; graph timing needs a CUDA device
    timing_mode: str = "eager"

    @property
    def eager(self) -> bool:
        return self.timing_mode in ("eager", "both")

    @property
    def graph(self) -> bool:
        return self.timing_mode in ("graph", "both")


@dataclass
class Row:
    """One candidate on one shape. ``status``: ``ok``, ``FAIL`` (output off
    native beyond the op's tolerance; still timed, never counted as good),
    ``error`` (raised) or ``skipped`` (does not apply; ``reason`` says why).

    ``time_us`` is the eager median; ``stream_us`` the per-call time of
    back-to-back calls on a GPU (host overhead included; None on a CPU,
    where ``time_us`` is already that); ``graph_us`` the per-call device time
    inside a CUDA graph (None when not asked for or when capture failed:
    ``graph_error`` says why). ``gbps``, ``bw_share`` and ``speedup`` come
    from ``time_us`` when eager timing ran, else from ``graph_us``."""

    op: str
    provider: str
    kind: str
    tokens: int
    hidden: int
    dtype: str
    status: str
    reason: str = ""
    time_us: float | None = None
    stream_us: float | None = None
    bytes: int | None = None
    gbps: float | None = None
    bw_share: float | None = None
    speedup: float | None = None
    graph_us: float | None = None
    graph_gbps: float | None = None
    graph_error: str = ""

    @property
    def correct(self) -> bool | None:
        """True/False once checked against native; None when not run."""
        return {"ok": True, "FAIL": False}.get(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "correct": self.correct}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def count_tasks(config: BenchConfig) -> int:
    """How many (op, shape, candidate) steps the sweep makes."""
    shapes = len(config.tokens) * len(config.hidden)
    return sum(
        shapes * len(candidates_for(registry.get(n), config.providers, config.compiled))
        for n in config.ops
    )


class _Sweep:
    def __init__(
        self, config: BenchConfig, copy_bw: float, progress: Callable[[str], None]
    ) -> None:
        self.config = config
        self.copy_bw = copy_bw
        self.progress = progress
        self.start = time.perf_counter()
        #: eager native's time per (op, tokens, hidden), the speedup baseline
        self.native_times: dict[tuple[str, int, int], float] = {}

    def over_budget(self) -> bool:
        budget = self.config.budget_s
        return budget is not None and time.perf_counter() - self.start > budget

    def shape(
        self, op: IrOp, cands: Sequence[Candidate], tokens: int, hidden: int
    ) -> Iterator[Row]:
        cfg = self.config
        key = (op.name, tokens, hidden)
        base: dict[str, Any] = dict(
            op=op.name, tokens=tokens, hidden=hidden, dtype=dtype_name(cfg.dtype)
        )
        if all(c.kind == "compiled" for c in cands) and self.over_budget():
            for cand in cands:  # no inputs needed to say so
                self.progress(f"{op.name} {tokens}x{hidden} {cand.label}")
                yield Row(
                    provider=cand.label,
                    kind=cand.kind,
                    status="skipped",
                    reason=BUDGET_REASON,
                    **base,
                )
            return
        torch.manual_seed(cfg.seed)
        assert op.input_generator is not None
        try:
            width = op.bench_width(hidden) if op.bench_width is not None else hidden
            args = tuple(op.input_generator(tokens, width, cfg.dtype, cfg.device))
            expected = op.native(*clone_args(args))
            synchronize(cfg.device)
        except Exception as exc:  # e.g. out of memory: this shape only
            reason = f"inputs or native reference raised {type(exc).__name__}: {_first_line(exc)}"
            for cand in cands:
                self.progress(f"{op.name} {tokens}x{hidden} {cand.label}")
                yield Row(
                    provider=cand.label, kind=cand.kind, status="error", reason=reason, **base
                )
            return
        base["bytes"] = bytes_moved(op, args, expected)
        for cand in cands:
            self.progress(f"{op.name} {tokens}x{hidden} {cand.label}")
            row = Row(provider=cand.label, kind=cand.kind, status="ok", **base)
            yield self.one(op, cand, args, expected, row, self.native_times.get(key))
            primary = row.time_us if row.time_us is not None else row.graph_us
            if cand.label == NATIVE and primary is not None:
                self.native_times[key] = primary

    def one(
        self,
        op: IrOp,
        cand: Candidate,
        args: Sequence[Any],
        expected: Any,
        row: Row,
        native_time: float | None,
    ) -> Row:
        cfg = self.config
        over = self.over_budget()
        if over and cand.kind == "compiled":
            row.status, row.reason = "skipped", BUDGET_REASON
            return row
        try:
            prepared = cand.prepare(args)
            if cand.label != NATIVE:
                actual = prepared.check()
                synchronize(cfg.device)
                problem = compare_outputs(op, actual, expected)
                if problem is not None:
                    row.status, row.reason = "FAIL", f"differs from native: {problem}"
                del actual
            spec = cfg.timing.scaled(0.25) if over else cfg.timing
            seconds = median_time(prepared.timed, cfg.device, spec) if cfg.eager else None
            if cfg.eager and cfg.device.type != "cpu":
                budget = STREAM_BUDGET_S * (0.25 if over else 1.0)
                row.stream_us = stream_time(prepared.timed, cfg.device, budget_s=budget) * 1e6
        except Skip as skip:
            row.status, row.reason = "skipped", str(skip)
            return row
        except Exception as exc:  # a broken provider must not end the sweep
            logger.debug("ir bench: %s/%s raised", op.name, cand.label, exc_info=True)
            row.status, row.reason = "error", f"raised {type(exc).__name__}: {_first_line(exc)}"
            return row
        graph_s = self.graph_time(op, cand, prepared.timed, row) if cfg.graph else None
        if graph_s is not None:
            row.graph_us = graph_s * 1e6
            row.graph_gbps = row.bytes / graph_s / 1e9 if row.bytes else None
        if seconds is not None:
            row.time_us = seconds * 1e6
        primary = seconds if seconds is not None else graph_s
        if primary is None:
            return row
        row.gbps = row.bytes / primary / 1e9 if row.bytes else None
        row.bw_share = row.bytes / primary / self.copy_bw if row.bytes and self.copy_bw else None
        row.speedup = (
            (native_time / (primary * 1e6))
            if native_time
            else (1.0 if cand.label == NATIVE else None)
        )
        return row

    def graph_time(
        self, op: IrOp, cand: Candidate, fn: Callable[[], Any], row: Row
    ) -> float | None:
        """Per-call seconds inside a CUDA graph, or None with ``row.graph_error``
        set: a capture failure is noted, never a failure of the row."""
        try:
            return time_cuda_graph(fn, self.config.device)
        except Exception as exc:
            logger.debug(
                "ir bench: graph timing of %s/%s failed", op.name, cand.label, exc_info=True
            )
            row.graph_error = f"{type(exc).__name__}: {_first_line(exc)}"
            try:  # clear what a broken capture may have left pending
                synchronize(self.config.device)
            except Exception as again:
                row.graph_error += f" (then synchronize raised {type(again).__name__})"
            return None


def run_sweep(
    config: BenchConfig, copy_bw: float, progress: Callable[[str], None] = lambda _msg: None
) -> Iterator[Row]:
    """Yield one :class:`Row` per op x tokens x hidden x candidate.

    ``copy_bw`` (bytes/s) is the reference of ``bw_share``; ``progress`` is
    called before each step with a short description.
    """
    sweep = _Sweep(config, copy_bw, progress)
    # Pass 1: every candidate but compiled native, op by op. Pass 2: compiled
    # native, shape by shape across the ops, so that a time budget spent on
    # compiles never costs another candidate its measurement, and a budget cut
    # leaves every op with compiled rows for the same (first) shapes.
    ops = [registry.get(name) for name in config.ops]
    for op in ops:
        if op.input_generator is None:
            raise ValueError(
                f"op {op.name!r} has no input generator, so ir bench cannot build inputs"
            )

    def pick(op: IrOp, compiled: bool) -> list[Candidate]:
        every = candidates_for(op, config.providers, config.compiled)
        return [c for c in every if (c.kind == "compiled") == compiled]

    for op in ops:
        cands = pick(op, False)
        for hidden in config.hidden:
            for tokens in config.tokens:
                yield from sweep.shape(op, cands, tokens, hidden)
    if not config.compiled:
        return
    import torch._dynamo

    torch._dynamo.reset()
    with compile_limits():
        for hidden in config.hidden:
            for tokens in config.tokens:
                for op in ops:
                    cands = pick(op, True)
                    if cands:
                        yield from sweep.shape(op, cands, tokens, hidden)


def sort_rows(rows: Sequence[Row], config: BenchConfig) -> list[Row]:
    """Rows in table order: op, hidden, tokens as configured, then candidates
    in :func:`candidates_for` order (compiled native last)."""
    op_pos = {n: i for i, n in enumerate(config.ops)}
    hid_pos = {h: i for i, h in enumerate(config.hidden)}
    tok_pos = {t: i for i, t in enumerate(config.tokens)}
    cand_pos: dict[str, dict[str, int]] = {}
    for n in config.ops:
        labels = [
            c.label for c in candidates_for(registry.get(n), config.providers, config.compiled)
        ]
        cand_pos[n] = {label: i for i, label in enumerate(labels)}
    return sorted(
        rows,
        key=lambda r: (
            op_pos.get(r.op, len(op_pos)),
            hid_pos.get(r.hidden, 0),
            tok_pos.get(r.tokens, 0),
            cand_pos.get(r.op, {}).get(r.provider, 0),
        ),
    )
