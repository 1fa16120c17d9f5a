"""What a plain copy of the same bytes reaches, at the sizes of the bandwidth goals.

The issues ask for a share of the device's copy bandwidth, which `ir bench`
measures with a 1 GiB `dst.copy_(src)` under do_bench. do_bench adds a fixed
cost to every call (event records and a cold start after its L2 flush; about
1.3 us for no kernel and 4 us for a one-element kernel on the H100): small
against the 1 GiB copy (~0.7 ms), several percent of a 45 us kernel. This
script times `dst.copy_(src)` moving the same bytes as each >= 16384-token
bandwidth-goal shape (bf16 rms_norm and fused_add_rms_norm, silu_and_mul with
d = 3.5 x hidden), by do_bench and inside a CUDA graph, next to the kernels
themselves in the same process, so a shape's ceiling by each method is known.

Session 5 adds a third timing, "read flush": CUDA events around one call
after the L2 is flushed by *reading* a 256 MiB buffer (its lines are clean),
where do_bench flushes by writing zeros into one (up to the L2's 50 MB of
dirty lines, written back to DRAM while the timed kernel runs). And rows for
fused_add_rms_norm and the fp8 ops at 16384 x 2048, through the ops' own input
generators and `ir bench`'s byte count.

Writes $RES/copy_floor/copy_floor.md and prints it. About 40 s on an H100.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import ir_core as ir
from ir_core.bench import copy_bandwidth
from ir_core.bench.timing import TimingSpec, time_cuda, time_cuda_graph
from ir_core.bench.traffic import bytes_moved

ir.load_providers()
dev = torch.device("cuda")
spec = TimingSpec(rep_ms=50, warmup_ms=10)
BF16 = torch.bfloat16
copy_bw = copy_bandwidth(dev, spec)
lines = [
    f"# Copy at the goal sizes, {torch.cuda.get_device_name(0)} (torch {torch.__version__})",
    "",
    f"Copy bandwidth (1 GiB `dst.copy_(src)`, do_bench median, read + write): {copy_bw / 1e9:.0f} GB/s.",
    "Each row: the op's bytes (every input read once, every output written once, as `ir bench`), "
    "a `dst.copy_(src)` moving the same bytes, and the kernels; % = bytes / time / copy bandwidth.",
    "",
    "| shape | what | do_bench (us) | % copy BW | graph (us) | % copy BW (graph) "
    "| read flush (us) | % copy BW (read flush) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]
_flush_buf = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device=dev)  # 256 MiB


def time_read_flush(fn, reps: int = 60) -> float:
    """Median seconds of one call after an L2 flush by reading (clean lines)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        _flush_buf.sum()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        times.append((start, end))
    torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in times)
    return ms[len(ms) // 2] * 1e-3


def row(shape: str, what: str, fn, nbytes: int) -> None:
    d = time_cuda(fn, spec, dev)
    try:
        g = time_cuda_graph(fn, dev)
    except Exception:  # a provider that cannot be captured: do_bench only
        g = float("nan")
    r = time_read_flush(fn)
    lines.append(
        f"| {shape} | {what} | {d * 1e6:.1f} | {100 * nbytes / d / copy_bw:.1f} | "
        f"{g * 1e6:.1f} | {100 * nbytes / g / copy_bw:.1f} | "
        f"{r * 1e6:.1f} | {100 * nbytes / r / copy_bw:.1f} |"
    )


def providers(op: ir.IrOp) -> list[str]:
    return [n for n in ("cuda", "triton") if n in op.impls and op.impls[n].is_supported()]


def copy_and_provider_rows(shape: str, op: ir.IrOp, call, nbytes: int) -> None:
    """A copy of `nbytes`, then each kernel provider's `call(fn)`."""
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    row(shape, "copy of the same bytes", lambda: dst.copy_(src), nbytes)
    for name in providers(op):
        f = op.impls[name].fn
        row(shape, name, lambda f=f: call(f), nbytes)


def norm_rows(tokens: int, hidden: int) -> None:
    x = torch.randn(tokens, hidden, device=dev, dtype=BF16)
    w = torch.randn(hidden, device=dev, dtype=BF16)
    nbytes = 2 * x.numel() * 2 + hidden * 2
    shape = f"rms_norm {tokens}x{hidden}"
    op = ir.ops.rms_norm
    copy_and_provider_rows(shape, op, lambda f: f(x, w, 1e-6, None), nbytes)
    compiled = torch.compile(op.native, dynamic=False)
    compiled(x, w, 1e-6, None)
    row(shape, "native (compiled)", lambda: compiled(x, w, 1e-6, None), nbytes)


def silu_rows(tokens: int, hidden: int) -> None:
    d = int(3.5 * hidden)
    x = torch.randn(tokens, 2 * d, device=dev, dtype=BF16)
    nbytes = x.numel() * 2 + tokens * d * 2
    copy_and_provider_rows(
        f"silu_and_mul {tokens}x{hidden}", ir.ops.silu_and_mul, lambda f: f(x), nbytes
    )


def op_rows(name: str, tokens: int, hidden: int) -> None:
    op = getattr(ir.ops, name)
    torch.manual_seed(0)
    args = tuple(op.input_generator(tokens, hidden, BF16, "cuda"))
    nbytes = bytes_moved(op, args, op.native(*args))
    copy_and_provider_rows(f"{name} {tokens}x{hidden}", op, lambda f: f(*args), nbytes)


for t, h in ((16384, 2048), (32768, 2048), (16384, 4096)):
    norm_rows(t, h)
for name in (
    "fused_add_rms_norm",
    "static_scaled_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
    "rms_norm_static_fp8_quant",
):
    op_rows(name, 16384, 2048)
for t, h in ((16384, 2048),):
    silu_rows(t, h)

out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "copy_floor"
out.mkdir(parents=True, exist_ok=True)
text = "\n".join(lines) + "\n"
(out / "copy_floor.md").write_text(text)
print(text)
