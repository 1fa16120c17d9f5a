"""One launch of each kernel under study, for ncu (scripts/gpu/diag.sh).

Each case runs its callable a few times to warm up (compiles, autotuning,
Inductor), then once between cudaProfilerStart/Stop (ncu
--profile-from-start off), so the report's kernels map to the cases in
order. The labels, in that order, are written to $RES/diag/cases.txt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import ir_core as ir

ir.load_providers()
OUT = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "diag"
OUT.mkdir(parents=True, exist_ok=True)
BF16 = torch.bfloat16
CASES = [
    ("rms_norm_static_fp8_quant", 16384, 8192),
    ("rms_norm", 16384, 8192),
    ("rms_norm", 16384, 2048),
    ("silu_and_mul", 16384, 8192),
    ("gelu_and_mul", 16384, 8192),
    ("silu_and_mul", 1, 4096),
    ("rms_norm", 1, 2048),
    ("rms_norm_static_fp8_quant", 128, 4096),
    ("per_token_group_quant_fp8", 16, 2048),
    ("fused_add_rms_norm_static_fp8_quant", 128, 8192),
]
only = sys.argv[1:]
labels = []
for name, tokens, hidden in CASES:
    op = getattr(ir.ops, name)
    for prov in ("cuda", "triton", "compiled"):
        args = op.input_generator(tokens, hidden, BF16, "cuda")
        if prov == "compiled":
            torch._dynamo.reset()
            fn = torch.compile(op.impls["native"].fn, dynamic=False)
        else:
            impl = op.impls.get(prov)
            if impl is None:
                continue
            fn = impl.fn
        fresh = [op.input_generator(tokens, hidden, BF16, "cuda") for _ in range(4)]
        for a in fresh[:3]:
            fn(*a)
        torch.cuda.synchronize()
        label = f"{prov}:{name}:{tokens}x{hidden}"
        torch.cuda.profiler.start()
        fn(*fresh[3])
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()
        labels.append(label)
        print(label, flush=True)
(OUT / "cases.txt").write_text("\n".join(labels) + "\n")
