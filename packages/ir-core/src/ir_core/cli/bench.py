"""``ir bench [OP ...]``: every provider of every op over a sweep of shapes,
timed and checked against native; a table, ``--json`` and ``--plot``."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import torch

#: CPU defaults: small enough for a 2-core machine in about a minute.
CPU_TOKENS = (1, 64, 1024)
CPU_HIDDEN = (1024, 4096)
#: CUDA defaults: decode to large prefill, model hidden sizes.
CUDA_TOKENS = (1, 16, 128, 1024, 4096, 16384, 32768)
CUDA_HIDDEN = (2048, 4096, 8192)
#: Default dtypes: bfloat16 on GPUs; float32 on CPUs, where bfloat16
#: arithmetic is often emulated and slow.
CUDA_DTYPE = "bfloat16"
CPU_DTYPE = "float32"


class BenchUsageError(ValueError):
    """A bad argument of ``ir bench`` (reported in one line, exit code 2)."""


def _ints(values: Sequence[str] | None, what: str) -> list[int] | None:
    if not values:
        return None
    out = []
    for v in values:
        for part in str(v).split(","):
            if not part.strip():
                continue
            try:
                n = int(part)
            except ValueError:
                raise BenchUsageError(f"--{what}: {part!r} is not an integer") from None
            if n < 1:
                raise BenchUsageError(f"--{what}: sizes must be at least 1, got {n}")
            out.append(n)
    return out


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark every provider over a sweep of shapes",
        description="Time every op's providers (plus eager native, compiled native and torch baselines) "
        "over tokens x hidden shapes; check each output against native.",
    )
    p.add_argument("op", nargs="*", help="ops to benchmark (default: all)")
    p.add_argument(
        "--provider",
        nargs="+",
        action="extend",
        metavar="P",
        help="providers to time (default: all registered); also 'compiled' (torch.compile of "
        "native) and 'torch' (plain-torch baselines). Eager native is always timed.",
    )
    p.add_argument(
        "--dtype",
        default=None,
        help="float32, float16 or bfloat16 (default: bfloat16 on CUDA, float32 on CPU)",
    )
    p.add_argument(
        "--tokens",
        nargs="+",
        action="extend",
        metavar="N",
        help="token counts (default: per device)",
    )
    p.add_argument(
        "--hidden",
        nargs="+",
        action="extend",
        metavar="N",
        help="hidden sizes (default: per device)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if present)")
    p.add_argument("--json", metavar="PATH", help="write every row and the run's metadata as JSON")
    p.add_argument(
        "--plot", metavar="PATH", help="write a PNG: GB/s against tokens per op and hidden size"
    )
    p.add_argument("--markdown", metavar="PATH", help="also write the tables to a Markdown file")
    p.add_argument(
        "--compiled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time torch.compile of native, one compile per shape (default: on for CUDA, "
        "off on CPU where each compile costs seconds)",
    )
    p.add_argument(
        "--timing",
        choices=("eager", "graph", "both"),
        default=None,
        help="eager: median of single calls (with the host's launch overhead); graph: per-call "
        "device time inside a CUDA graph (CUDA only); both (default on CUDA; eager on CPU)",
    )
    p.add_argument(
        "--rep-ms", type=float, default=None, help="CUDA: timed ms per measurement (default 100)"
    )
    p.add_argument(
        "--warmup-ms",
        type=float,
        default=None,
        help="CUDA: warm-up ms per measurement (default 25)",
    )
    p.add_argument(
        "--cpu-blocks", type=int, default=None, help="CPU: timed blocks per measurement (default 7)"
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="past this many seconds, skip compiled native and use fewer reps",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU: intra-op threads (default: torch's, or 1 when the machine is already busy)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():  # NVIDIA, or ROCm through torch.cuda
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return out


def parse_device(text: str | None) -> torch.device:
    """The benchmark device; CPU and (NVIDIA or ROCm through torch.cuda) GPUs."""
    available = _available_devices()
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise BenchUsageError(
            f"unknown device {text!r}; available here: {', '.join(available)}"
        ) from None
    if dev.type not in ("cpu", "cuda"):
        raise BenchUsageError(
            f"ir bench times cpu and cuda devices only, not {dev.type!r}; "
            f"available here: {', '.join(available)}"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchUsageError(
                f"device {text!r} is not available (no GPU visible); available here: "
                f"{', '.join(available)}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BenchUsageError(
                f"device {text!r} does not exist; available here: {', '.join(available)}"
            )
    return dev


def _busy_machine_threads(notes: list[str]) -> int | None:
    """1 when other processes already keep every core busy (several intra-op
    threads then wait on each other and time noise, not kernels), else None."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = os.cpu_count() or 1
    if torch.get_num_threads() > 1 and load >= cores:
        notes.append(
            f"the machine is busy (load {load:.1f} on {cores} cores): timing with 1 intra-op thread; "
            "pass --threads N to choose"
        )
        return 1
    return None


def _config(args: argparse.Namespace) -> tuple[Any, list[str]]:
    from .. import registry
    from ..bench import BenchConfig, TimingSpec
    from ..bench.candidates import COMPILED_KEY, TORCH_KEY
    from .explain import DTYPES

    ops = registry.ops()
    for name in args.op:
        if name not in ops:
            raise BenchUsageError(f"unknown op {name!r}; available: {', '.join(sorted(ops))}")
    known = sorted(registry.registered_providers() | {COMPILED_KEY, TORCH_KEY})
    for p in args.provider or []:
        if p not in known:
            raise BenchUsageError(f"unknown provider {p!r}; available: {', '.join(known)}")
    device = parse_device(args.device)
    gpu = device.type == "cuda"
    dtype = args.dtype or (CUDA_DTYPE if gpu else CPU_DTYPE)
    if dtype not in DTYPES:
        raise BenchUsageError(f"unsupported dtype {dtype!r}; available: {', '.join(DTYPES)}")
    compiled = gpu if args.compiled is None else args.compiled
    timing_mode = getattr(args, "timing", None) or ("both" if gpu else "eager")
    if timing_mode != "eager" and not gpu:
        raise BenchUsageError(
            f"--timing {timing_mode} needs a CUDA device (CUDA graphs); on {device.type} "
            "use --timing eager"
        )
    notes = []
    if not gpu:
        notes.append(
            "CPU: caches are not flushed between reps, so shapes that fit in the last-level cache "
            "can exceed 100% of the (DRAM) copy bandwidth"
        )
    if not gpu and os.environ.get("TRITON_INTERPRET") == "1":
        notes.append(
            "TRITON_INTERPRET=1: Triton kernels run in Triton's interpreter here; their times "
            "measure the interpreter, not a kernel"
        )
    if args.compiled is None and not gpu:
        notes.append(
            "native (compiled) is not timed on CPU by default (each torch.compile costs seconds "
            "there); add --compiled to include it"
        )
    threads = args.threads
    if threads is not None and threads < 1:
        raise BenchUsageError(f"--threads must be at least 1, got {threads}")
    if threads is None and not gpu:
        threads = _busy_machine_threads(notes)
    base = TimingSpec()
    timing = TimingSpec(
        args.rep_ms or base.rep_ms,
        args.warmup_ms or base.warmup_ms,
        args.cpu_blocks or base.cpu_blocks,
        base.cpu_block_ms,
    )
    config = BenchConfig(
        ops=list(dict.fromkeys(args.op)) or sorted(ops),
        dtype=DTYPES[dtype],
        tokens=_ints(args.tokens, "tokens") or list(CUDA_TOKENS if gpu else CPU_TOKENS),
        hidden=_ints(args.hidden, "hidden") or list(CUDA_HIDDEN if gpu else CPU_HIDDEN),
        device=device,
        providers=list(dict.fromkeys(args.provider)) if args.provider else None,
        compiled=compiled,
        timing=timing,
        budget_s=args.budget_s,
        seed=args.seed,
        threads=threads,
        timing_mode=timing_mode,
    )
    return config, notes


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    """Exit code: 0, 1 when a provider gave wrong outputs or raised, 2 for bad arguments."""
    from ..bench import markdown
    from ..bench.plot import write_plot
    from ..bench.report import failures
    from ..bench.runner import run_bench
    from ..providers import load_providers

    load_providers()
    config, notes = _config(args)
    _sigterm_as_interrupt()
    result = run_bench(
        config,
        command=["ir", *getattr(args, "argv", ["bench"])],
        progress=not args.no_progress,
        notes=notes,
    )
    text = markdown(result)
    print(text)
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    if args.json:
        result.write_json(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        write_plot(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    bad = failures(result.rows)
    if bad:
        print(
            f"ir bench: {len(bad)} row(s) FAILED or raised: "
            f"{', '.join(sorted({f'{r.op}/{r.provider}' for r in bad}))}",
            file=sys.stderr,
        )
        return 1
    return 0 if result.complete else 130
