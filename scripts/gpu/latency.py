"""One-token latency of rms_norm (issue 5: <= 4 us) next to the floor of the
same measurement on this machine.

Three measures per callable, bf16, x = [1, H], H in {2048, 4096, 8192}:
  do_bench  triton.testing.do_bench median (L2 flushed before each rep): the
            anchors' method (ANCHORS.md: compile 6.0 us, Liger 4.7 us at 1x4096)
  stream    back-to-back calls, CUDA events around them: what an eager loop pays
  graph     per-call device time inside a CUDA graph (no host cost)
Floor references: x.mul(2) (one tiny ATen kernel) and torch.empty_like (no kernel).
Writes $RES/latency/latency.md and prints it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

import ir_core as ir
from ir_core.bench.timing import TimingSpec, stream_time, time_cuda, time_cuda_graph

ir.load_providers()
dev = torch.device("cuda")
spec = TimingSpec(rep_ms=50, warmup_ms=10)
rows = []


def measure(label: str, fn, graph: bool = True) -> None:
    d = time_cuda(fn, spec, dev) * 1e6
    s = stream_time(fn, dev, budget_s=0.02) * 1e6
    try:
        g = time_cuda_graph(fn, dev) * 1e6 if graph else float("nan")
    except Exception:
        g = float("nan")
    rows.append((label, d, s, g))


def one_hidden(h: int) -> None:
    x = torch.randn(1, h, device=dev, dtype=torch.bfloat16)
    w = torch.randn(h, device=dev, dtype=torch.bfloat16)
    op = ir.ops.rms_norm
    measure(f"1x{h} x.mul(2) [one ATen kernel]", lambda: x.mul(2))
    measure(f"1x{h} torch.empty_like [no kernel]", lambda: torch.empty_like(x), graph=False)
    for name in ("cuda", "triton"):
        impl = op.impls.get(name)
        if impl is not None and impl.is_supported():
            f = impl.fn
            measure(f"1x{h} rms_norm {name} (impl)", lambda f=f: f(x, w, 1e-6, None))
            with ir.priority(rms_norm=[name, "native"]):
                measure(f"1x{h} rms_norm {name} via ir.ops", lambda: op(x, w, 1e-6))
    compiled = torch.compile(op.native, dynamic=False)
    compiled(x, w, 1e-6, None)
    measure(f"1x{h} rms_norm native (compiled)", lambda: compiled(x, w, 1e-6, None))
    measure(f"1x{h} F.rms_norm", lambda: F.rms_norm(x, (h,), w, 1e-6))


for hidden in (2048, 4096, 8192):
    one_hidden(hidden)

lines = [
    f"# One-token rms_norm latency on {torch.cuda.get_device_name()} "
    f"(torch {torch.__version__}, bf16)",
    "",
    "do_bench: triton.testing.do_bench median, L2 flushed before each rep (the anchors' method); "
    "stream: back-to-back eager calls; graph: device time per call in a CUDA graph.",
    "",
    "| call | do_bench (us) | stream (us) | graph (us) |",
    "| --- | ---: | ---: | ---: |",
    *[f"| {lab} | {d:.2f} | {s:.2f} | {g:.2f} |" for lab, d, s, g in rows],
]
text = "\n".join(lines) + "\n"
out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "latency"
out.mkdir(parents=True, exist_ok=True)
(out / "latency.md").write_text(text)
print(text)
