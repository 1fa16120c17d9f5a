"""Which fp8 division form should the cuda quantising kernels use? (issue 5)

Times every quantising op of the cuda provider under each division form of
the fp8_div knob -- 0 (default: one Markstein correction, two for the few
scales where one is not proven exact), 2 (two corrections), 3 (the near-step
check, the norm+fp8 and static-quant default before session 5) -- next to the
triton kernel, on the bench's own inputs (`torch.manual_seed(0)`, the op's
input generator, as `ir bench` does) and on inputs drawn with another seed.
Large shapes: do_bench (L2 flushed); 1024 and 4096 rows also in a CUDA graph.

Writes $RES/div_diag/div_diag.md and prints it. About 60 s on an H100.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import ir_core as ir
from ir_core.bench.timing import TimingSpec, time_cuda, time_cuda_graph
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
SPEC = TimingSpec(rep_ms=40, warmup_ms=10)
DEV = torch.device("cuda")
FORMS = ((0, "one corr."), (2, "two corr."), (3, "check"))
OPS = (
    "rms_norm_static_fp8_quant",
    "fused_add_rms_norm_static_fp8_quant",
    "static_scaled_fp8_quant",
    "dynamic_per_token_scaled_fp8_quant",
    "per_token_group_quant_fp8",
)
SHAPES = ((32768, 4096), (16384, 2048), (16384, 8192), (4096, 4096), (1024, 4096), (4096, 2048))


def timed(fn, tokens: int) -> str:  # type: ignore[no-untyped-def]
    t = time_cuda(fn, SPEC, DEV) * 1e6
    if tokens <= 4096:
        g = time_cuda_graph(fn, DEV) * 1e6
        return f"{t:.1f} / {g:.2f}"
    return f"{t:.1f}"


def main() -> None:
    head = "| op | shape | inputs | " + " | ".join(f"cuda {n}" for _, n in FORMS) + " | triton |"
    lines = [head, "|" + " --- |" * 3 + " ---: |" * (len(FORMS) + 1)]
    for name in OPS:
        op = getattr(ir.ops, name)
        cuda_fn, triton_fn = op.impls["cuda"].fn, op.impls["triton"].fn
        for tokens, hidden in SHAPES:
            for label, seed in (("seed 0 (bench)", 0), ("seed 1234", 1234)):
                torch.manual_seed(seed)
                args = tuple(op.input_generator(tokens, hidden, torch.bfloat16, "cuda"))
                cells = []
                for value, _ in FORMS:
                    runtime.set_knob("fp8_div", value)
                    cells.append(timed(lambda a=args, f=cuda_fn: f(*a), tokens))
                runtime.set_knob("fp8_div", 0)
                cells.append(timed(lambda a=args, f=triton_fn: f(*a), tokens))
                lines.append(
                    f"| {name} | {tokens}x{hidden} | {label} | " + " | ".join(cells) + " |"
                )
                print(lines[-1], flush=True)
    out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "div_diag"
    out.mkdir(parents=True, exist_ok=True)
    text = (
        "# cuda quantising kernels: time per fp8 division form (us)\n\n"
        "Cells: do_bench (L2 flushed), and for <= 4096 rows `do_bench / CUDA graph`.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    (out / "div_diag.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
