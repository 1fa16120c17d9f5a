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

It also re-times `dynamic_per_token_scaled_fp8_quant` at 16384 x 2048 for the
triton and cuda providers three times (an outlier in the session-4 bench).

Writes $RES/copy_floor/copy_floor.md and prints it. About 30 s on an H100.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import ir_core as ir
from ir_core.bench import copy_bandwidth
from ir_core.bench.timing import TimingSpec, time_cuda, time_cuda_graph

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
    "| shape | what | do_bench (us) | % copy BW | graph (us) | % copy BW (graph) |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
]


def row(shape: str, what: str, fn, nbytes: int) -> None:
    d = time_cuda(fn, spec, dev)
    try:
        g = time_cuda_graph(fn, dev)
    except Exception:  # a provider that cannot be captured: do_bench only
        g = float("nan")
    lines.append(
        f"| {shape} | {what} | {d * 1e6:.1f} | {100 * nbytes / d / copy_bw:.1f} | "
        f"{g * 1e6:.1f} | {100 * nbytes / g / copy_bw:.1f} |"
    )


def providers(op: ir.IrOp) -> list[str]:
    return [n for n in ("cuda", "triton") if n in op.impls and op.impls[n].is_supported()]


def norm_rows(tokens: int, hidden: int) -> None:
    x = torch.randn(tokens, hidden, device=dev, dtype=BF16)
    w = torch.randn(hidden, device=dev, dtype=BF16)
    nbytes = 2 * x.numel() * 2 + hidden * 2
    shape = f"rms_norm {tokens}x{hidden}"
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    row(shape, "copy of the same bytes", lambda: dst.copy_(src), nbytes)
    op = ir.ops.rms_norm
    for name in providers(op):
        f = op.impls[name].fn
        row(shape, name, lambda f=f: f(x, w, 1e-6, None), nbytes)
    compiled = torch.compile(op.native, dynamic=False)
    compiled(x, w, 1e-6, None)
    row(shape, "native (compiled)", lambda: compiled(x, w, 1e-6, None), nbytes)


def silu_rows(tokens: int, hidden: int) -> None:
    d = int(3.5 * hidden)
    x = torch.randn(tokens, 2 * d, device=dev, dtype=BF16)
    nbytes = x.numel() * 2 + tokens * d * 2
    shape = f"silu_and_mul {tokens}x{hidden}"
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    row(shape, "copy of the same bytes", lambda: dst.copy_(src), nbytes)
    op = ir.ops.silu_and_mul
    for name in providers(op):
        f = op.impls[name].fn
        row(shape, name, lambda f=f: f(x), nbytes)


def dynamic_quant_retime(tokens: int, hidden: int) -> None:
    x = torch.randn(tokens, hidden, device=dev, dtype=BF16)
    nbytes = x.numel() * 2 + x.numel() + tokens * 4
    op = ir.ops.dynamic_per_token_scaled_fp8_quant
    for attempt in range(3):
        for name in providers(op):
            f = op.impls[name].fn
            row(
                f"dynamic quant {tokens}x{hidden}",
                f"{name} (try {attempt + 1})",
                lambda f=f: f(x, None),
                nbytes,
            )


for t, h in ((16384, 2048), (32768, 2048), (16384, 4096)):
    norm_rows(t, h)
for t, h in ((16384, 2048), (16384, 4096)):
    silu_rows(t, h)
dynamic_quant_retime(16384, 2048)

out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "copy_floor"
out.mkdir(parents=True, exist_ok=True)
text = "\n".join(lines) + "\n"
(out / "copy_floor.md").write_text(text)
print(text)
