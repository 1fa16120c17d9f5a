"""Where an eager Triton-provider call spends its host time (GPU machine).

Times 2000 back-to-back calls of rms_norm 1x4096 bf16 through ir.ops (triton
first), through the impl directly, then
prints a cProfile of the ir.ops path. Usage: python3 scripts/gpu/triton_host_profile.py
"""

from __future__ import annotations

import cProfile
import pstats
import time

import torch

import ir_core as ir
from ir_kernels_triton import _fastlaunch

x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
ir.load_providers()
op = ir.ops.rms_norm


def per_call(fn, n=2000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e6


tri = op.impls["triton"].fn
with ir.priority(rms_norm=["triton", "native"]):
    print(f"ir.ops triton     {per_call(lambda: op(x, w, 1e-6)):.2f} us")
print(f"impl triton       {per_call(lambda: tri(x, w, 1e-6, None)):.2f} us")
print(
    "accepts triton    {:.2f} us".format(
        per_call(lambda: op.impls["triton"].accepts(x, w, 1e-6, None))
    )
)
print("fast launch available:", _fastlaunch.available())
cache = _fastlaunch._cache
slow = sum(v is _fastlaunch._SLOW for v in cache.values())
print(f"fast launch cache: {len(cache)} keys, {slow} on the normal launcher")
with ir.priority(rms_norm=["triton", "native"]):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(2000):
        op(x, w, 1e-6)
    torch.cuda.synchronize()
    prof.disable()
pstats.Stats(prof).sort_stats("tottime").print_stats(18)
