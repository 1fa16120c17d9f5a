"""Launch-knob sweep of the cuda shapes that trail triton (issue 5, session 5).

Two questions, each answered next to the triton kernel on the same inputs:

* norms at few rows: does a wider row (more threads, fewer chunks each:
  norm_cpt 1 or 2) close the 0.1-0.9 us gap to triton at 1-1024 tokens?
  (norm_cpt changes the reduction order, so only the timing is of interest
  here.)
* static quant: which element-wise shape (ew_cpt chunks per thread x
  ew_threads per block) is fastest (ncu at 16384 x 2048: 33.0 us with 2 x 256
  against triton's 30.4 with 1 chunk x 128 threads)?

Session 6 adds three sweeps (3: static quant, 4: rotary): the lean kernels
(sq_mode / rot_mode auto) against the former ones, and their launch knobs;
(5: gated activations at few tokens) the lean activation kernel's shape;
(6) the activations at 4096-16384 rows, default shape only. Session 7 adds
sweep 7: silu's checked reciprocal (silu_rcp auto) against the IEEE quotient;
sweep 8: group quant's few-groups kernel against the lean one. Session 8
adds sweep 9: silu's checked forms (approximate exponential and reciprocal,
silu_rcp 1; native's expf with the approximate reciprocal, silu_rcp 3; the
IEEE quotient, silu_rcp 2; auto picks between the first two by size), and
the first with two pieces or 256 threads a block, at the bench's shapes and
the MLP widths.

Cells: CUDA-graph us per call (<= 4096 rows), else do_bench us (L2 flushed).
Writes $RES/knob_sweep/knob_sweep.md. About 60-90 s on an H100.
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
KNOBS = (
    "norm_cpt",
    "norm_rows",
    "ew_cpt",
    "ew_threads",
    "ew_mode",
    "fp8_div",
    "sq_mode",
    "rot_mode",
    "silu_rcp",
    "gq_mode",
)

NORM_SETS = (
    ("auto", {}),
    ("cpt 1", {"norm_cpt": 1}),
    ("cpt 2", {"norm_cpt": 2}),
    ("cpt 4", {"norm_cpt": 4}),
)
EW_SETS = (
    ("auto", {}),
    *((f"{c}x{t}", {"ew_cpt": c, "ew_threads": t}) for c in (1, 2, 4) for t in (64, 128, 256, 512)),
)
SWEEPS = (
    (
        ("rms_norm", "fused_add_rms_norm", "rms_norm_static_fp8_quant"),
        [(t, h) for t in (1, 16, 128, 1024) for h in (2048, 4096, 8192)] + [(16384, 2048)],
        NORM_SETS,
    ),
    (
        ("rms_norm_static_fp8_quant", "fused_add_rms_norm_static_fp8_quant"),
        [(4096, 2048), (4096, 4096), (4096, 8192), (32768, 4096)],
        NORM_SETS,
    ),
    (
        ("static_scaled_fp8_quant",),
        [(1024, 4096), (4096, 2048), (4096, 4096), (16384, 2048), (16384, 8192), (32768, 4096)],
        EW_SETS,
    ),
)
# Session 6: the lean static quant and rotary kernels against the former ones.
SMALL = [(t, h) for t in (1, 16, 128, 1024) for h in (2048, 4096, 8192)]
SWEEPS += (
    (
        ("static_scaled_fp8_quant",),
        [*SMALL, (4096, 8192), (16384, 2048), (16384, 4096), (32768, 4096)],
        (
            ("former", {"sq_mode": 2}),
            ("auto", {}),
            ("1x64", {"ew_cpt": 1, "ew_threads": 64}),
            ("1x256", {"ew_cpt": 1, "ew_threads": 256}),
            ("2x128", {"ew_cpt": 2, "ew_threads": 128}),
            ("4x256", {"ew_cpt": 4, "ew_threads": 256}),
        ),
    ),
    (
        ("rotary_embedding",),
        [*SMALL, (4096, 2048), (4096, 8192), (16384, 2048), (16384, 8192)],
        (
            ("former", {"rot_mode": 2}),
            ("auto", {}),
            ("cap 64", {"ew_threads": 64}),
            ("cap 128", {"ew_threads": 128}),
            ("cap 256", {"ew_threads": 256}),
            ("cap 512", {"ew_threads": 512}),
        ),
    ),
    (
        ("silu_and_mul", "gelu_and_mul"),
        SMALL,
        (
            ("auto", {}),
            ("1x64", {"ew_cpt": 1, "ew_threads": 64}),
            ("1x256", {"ew_cpt": 1, "ew_threads": 256}),
            ("2x128", {"ew_cpt": 2, "ew_threads": 128}),
            ("2x64", {"ew_cpt": 2, "ew_threads": 64}),
        ),
    ),
    (
        ("silu_and_mul", "gelu_and_mul"),
        [(4096, 2048), (16384, 2048), (16384, 8192)],
        (("auto", {}),),
    ),
)
# Session 7 (sweep 7): silu's checked hardware reciprocal against the IEEE
# quotient, and one or two pieces a thread (one: the 32-register kernel for
# silu), at the bench's MLP widths (d = 3.5 x hidden). For gelu the "ieee"
# column runs the auto kernel again: a measure of the noise.
SWEEPS += (
    (
        ("silu_and_mul", "gelu_and_mul"),
        [(t, d) for t in (1, 16, 128, 1024, 4096) for d in (7168, 14336, 28672)]
        + [(16384, 7168), (16384, 28672)],
        (
            ("auto", {}),
            ("ieee", {"silu_rcp": 2}),
            ("cpt 1", {"ew_cpt": 1}),
            ("cpt 2", {"ew_cpt": 2}),
        ),
    ),
)
# Sweep 8: group quant's few-groups kernel (gq_mode 4) against the lean one.
SWEEPS += (
    (
        ("per_token_group_quant_fp8",),
        [*SMALL, (4096, 2048)],
        (("auto", {}), ("lean", {"gq_mode": 1}), ("few-groups", {"gq_mode": 4})),
    ),
)
# Sweep 9 (session 8): silu's forms, bench shapes (d = hidden) and MLP widths.
SWEEPS += (
    (
        ("silu_and_mul",),
        [(t, d) for t in (1, 16, 128, 1024) for d in (2048, 4096, 8192, 14336, 28672)]
        + [(16384, 4096), (16384, 14336)],
        (
            ("auto", {}),
            ("exp2", {"silu_rcp": 1}),
            ("rcp", {"silu_rcp": 3}),
            ("ieee", {"silu_rcp": 2}),
            ("exp2 cpt2", {"silu_rcp": 1, "ew_cpt": 2}),
            ("exp2 t256", {"silu_rcp": 1, "ew_threads": 256}),
        ),
    ),
)
if os.environ.get("KNOB_SWEEP_ONLY"):  # e.g. "1": the second sweep alone
    SWEEPS = tuple(SWEEPS[int(k)] for k in os.environ["KNOB_SWEEP_ONLY"].split(","))


def knobs(values: dict[str, int]) -> None:
    for name in KNOBS:
        runtime.set_knob(name, values.get(name, 0))


def timed(fn, tokens: int) -> float:  # type: ignore[no-untyped-def]
    if tokens <= 4096:
        return time_cuda_graph(fn, DEV) * 1e6
    return time_cuda(fn, SPEC, DEV) * 1e6


def main() -> None:
    out_lines = ["# cuda launch-knob sweep (us per call; graph <= 4096 rows, else do_bench)\n"]
    for ops, shapes, sets in SWEEPS:
        labels = [label for label, _ in sets]
        out_lines.append("| op | shape | " + " | ".join(labels) + " | best | triton |")
        out_lines.append("|---|---|" + "---:|" * (len(labels) + 2))
        for name in ops:
            op = getattr(ir.ops, name)
            for tokens, hidden in shapes:
                torch.manual_seed(0)
                args = tuple(op.input_generator(tokens, hidden, torch.bfloat16, "cuda"))
                cuda_fn, triton_fn = op.impls["cuda"].fn, op.impls["triton"].fn
                times = []
                for _, values in sets:
                    knobs(values)
                    times.append(timed(lambda a=args, f=cuda_fn: f(*a), tokens))
                knobs({})
                tri = timed(lambda a=args, f=triton_fn: f(*a), tokens)
                best = labels[min(range(len(times)), key=times.__getitem__)]
                out_lines.append(
                    f"| {name} | {tokens}x{hidden} | "
                    + " | ".join(f"{t:.2f}" for t in times)
                    + f" | {best} | {tri:.2f} |"
                )
                print(out_lines[-1], flush=True)
        out_lines.append("")
    out = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "knob_sweep"
    out.mkdir(parents=True, exist_ok=True)
    (out / "knob_sweep.md").write_text("\n".join(out_lines) + "\n")


if __name__ == "__main__":
    main()
