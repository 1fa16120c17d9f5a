"""Kernel-only view of the shapes where cuda misses an issue-5 goal (run under ncu).

Calls, once each after a warm-up, the cuda and triton kernels of the small
shapes where cuda is slower than the best reference in the bench (a few
tenths of a microsecond in a CUDA graph), and the 16384 x 2048 shapes under
the bandwidth goal. ncu (launched by
ncu_gap.sh, --clock-control none) records each kernel; the profiled range is
opened after the warm-up, so Triton's compilation and the first-call work
are not in it. Prints the call order, which ncu_gap.sh uses as labels.
"""

from __future__ import annotations

import torch

import ir_core as ir
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()

CASES = (
    ("static_scaled_fp8_quant", 1, 2048),
    ("static_scaled_fp8_quant", 128, 2048),
    ("silu_and_mul", 128, 4096),
    ("rms_norm_static_fp8_quant", 16, 8192),
    ("fused_add_rms_norm", 1, 8192),
    ("fused_add_rms_norm", 128, 2048),
    ("fused_add_rms_norm", 128, 8192),
    ("rms_norm", 1, 2048),
    ("dynamic_per_token_scaled_fp8_quant", 128, 4096),
    ("dynamic_per_token_scaled_fp8_quant", 1024, 2048),
    ("gelu_and_mul", 16, 2048),
    ("rms_norm", 16384, 2048),
    ("fused_add_rms_norm", 16384, 2048),
    ("static_scaled_fp8_quant", 16384, 2048),
    ("static_scaled_fp8_quant", 16384, 8192),
    ("dynamic_per_token_scaled_fp8_quant", 16384, 2048),
    ("per_token_group_quant_fp8", 16384, 2048),
    ("rms_norm_static_fp8_quant", 16384, 2048),
    ("rms_norm_static_fp8_quant", 4096, 2048),
    ("rms_norm_static_fp8_quant", 32768, 4096),
    # session 6: the few-token quant shapes still behind triton
    ("per_token_group_quant_fp8", 1, 2048),
    ("per_token_group_quant_fp8", 16, 4096),
    ("dynamic_per_token_scaled_fp8_quant", 128, 2048),
)


def main() -> None:
    calls = []
    for name, tokens, hidden in CASES:
        op = getattr(ir.ops, name)
        torch.manual_seed(0)
        width = op.bench_width(hidden) if op.bench_width else hidden  # as `ir bench` does
        args = tuple(op.input_generator(tokens, width, torch.bfloat16, "cuda"))
        for provider in ("cuda", "triton"):
            fn = op.impls[provider].fn
            calls.append((f"{name} {tokens}x{hidden} {provider}", fn, args))
    for _, fn, args in calls:  # warm-up: compile, caches, first-call work
        for _ in range(3):
            fn(*args)
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for label, fn, args in calls:
        fn(*args)
        torch.cuda.synchronize()
        print("CALL", label, flush=True)
    torch.cuda.cudart().cudaProfilerStop()


if __name__ == "__main__":
    main()
