"""Why is the cuda rms_norm_static_fp8_quant slower at hidden 4096 in `ir bench`?

The session-3 and -4 benches put it at 158-163 us at 32768 x 4096 (Triton 137-140),
while the session-4 knob sweep measured the same kernel at 144.7 us. This times,
in one process and on the bench's own inputs (the op's input generator, after
`torch.manual_seed(0)` as `ir bench`), the cuda kernel under each fp8 division
form (the near-step check redoes a chunk whose quotient lands near an fp8
rounding step: its cost depends on the values) and chunk count per thread,
next to the triton kernel, at 32768 x 4096, 4096 x 4096 and 16384 x 8192; then
again on inputs drawn with another seed; do_bench, L2 flushed.

Writes $RES/normq_diag/normq_diag.md and prints it. About 40 s on an H100.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import ir_core as ir
from ir_core.bench.timing import TimingSpec, time_cuda
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
spec = TimingSpec(rep_ms=40, warmup_ms=10)
op = ir.ops.rms_norm_static_fp8_quant
cuda_fn, triton_fn = op.impls["cuda"].fn, op.impls["triton"].fn
VARIANTS = (
    ("cuda default", {}),
    ("cuda fp8_div 1 (IEEE)", {"fp8_div": 1}),
    ("cuda fp8_div 2 (two corrections)", {"fp8_div": 2}),
    ("cuda norm_cpt 2", {"norm_cpt": 2}),
    ("cuda norm_cpt 8", {"norm_cpt": 8}),
)
lines = ["| shape | inputs | variant | do_bench (us) |", "| --- | --- | --- | ---: |"]


def knobs(values: dict[str, int]) -> None:
    for name in ("fp8_div", "norm_cpt"):
        runtime.set_knob(name, values.get(name, 0))


def near_step_share(args: tuple) -> float:
    """Share of 8-element chunks with a quotient within 2^-20 (relative) of an
    e4m3 rounding midpoint: the chunks the near-step check redoes (estimate)."""
    x, w, eps, scale = args
    xf = x.float()
    inv = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    q = ((xf * inv).to(x.dtype).float() * w.float()).to(x.dtype).float() / scale.float()
    q = q.clamp(-448, 448).abs()
    # e4m3 normal spacing: 2^(e-3); midpoints between representable values
    e = torch.floor(torch.log2(q.clamp_min(2.0**-6)))
    step = torch.exp2(e - 3)
    frac = (q / step) - torch.floor(q / step)
    near = (frac - 0.5).abs() * step < q * 2.0**-20
    return near.view(-1, 8).any(-1).float().mean().item()


for tokens, hidden in ((32768, 4096), (4096, 4096), (16384, 8192)):
    for seed_label, seed in (("bench (seed 0)", 0), ("seed 1234", 1234)):
        torch.manual_seed(seed)
        args = tuple(op.input_generator(tokens, hidden, torch.bfloat16, "cuda"))
        share = near_step_share(args)
        for label, values in VARIANTS:
            knobs(values)
            t = time_cuda(lambda a=args: cuda_fn(*a), spec, torch.device("cuda"))
            lines.append(
                f"| {tokens}x{hidden} | {seed_label}, near-step chunks {100 * share:.2f}% | {label} | {t * 1e6:.1f} |"
            )
        knobs({})
        t = time_cuda(lambda a=args: triton_fn(*a), spec, torch.device("cuda"))
        lines.append(f"| {tokens}x{hidden} | {seed_label} | triton | {t * 1e6:.1f} |")

out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "normq_diag"
out.mkdir(parents=True, exist_ok=True)
text = (
    "# rms_norm_static_fp8_quant: cuda vs triton on the bench's inputs\n\n"
    + "\n".join(lines)
    + "\n"
)
(out / "normq_diag.md").write_text(text)
print(text)
