"""Eager dispatch overhead of ir ops over calling the same implementation directly.

Cases (tiny CPU tensors, a do-nothing provider, so only dispatch is timed):
  (a) unconditional provider        ir.ops.rms_norm(...)     vs impl(...)
  (b) provider with supports_args   ir.ops.rms_norm(...)     vs impl(...)
  (c) the torch op path             torch.ops.ir.rms_norm()  vs impl(...)

Each timing is the median of REPEATS runs of NUMBER calls; overhead is the
difference of medians. Run: ``uv run python benchmarks/dispatch_overhead.py [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import timeit

import torch

import ir_core as ir

NUMBER = 20000
REPEATS = 15


def noop(x, weight, epsilon, variance_size=None):
    return x


def noop_checked(x, weight, epsilon, variance_size=None):
    return x


def check(x, weight, epsilon, variance_size=None):
    return x.shape[-1] % 8 == 0


def per_call_us(fn) -> float:
    runs = timeit.repeat(fn, number=NUMBER, repeat=REPEATS)
    return statistics.median(runs) / NUMBER * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()

    op = ir.ops.rms_norm
    op.register_impl("bench_noop")(noop)
    op.register_impl("bench_check", supports_args=check)(noop_checked)
    x, w = torch.randn(2, 64), torch.randn(64)
    torch.set_grad_enabled(False)

    results = {}
    direct = per_call_us(lambda: noop(x, w, 1e-6))
    with ir.priority(rms_norm=["bench_noop"]):
        assert op.dispatch(x, w, 1e-6).provider == "bench_noop"
        a = per_call_us(lambda: op(x, w, 1e-6))
        c = per_call_us(lambda: torch.ops.ir.rms_norm(x, w, 1e-6))
    with ir.priority(rms_norm=["bench_check", "native"]):
        assert op.dispatch(x, w, 1e-6).provider == "bench_check"
        b = per_call_us(lambda: op(x, w, 1e-6))
    results = {
        "direct_call_us": direct,
        "a_unconditional_overhead_us": a - direct,
        "b_supports_args_overhead_us": b - direct,
        "c_torch_op_overhead_us": c - direct,
    }
    meta = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ir_core": ir.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or "?",
        "cpus": os.cpu_count(),
        "number": NUMBER,
        "repeats": REPEATS,
        "command": "uv run python benchmarks/dispatch_overhead.py",
    }
    print(f"direct call of the impl          {direct:7.3f} us")
    print(f"(a) unconditional provider      +{a - direct:7.3f} us   (goal <= 0.5)")
    print(f"(b) with a supports_args check  +{b - direct:7.3f} us   (goal <= 0.8)")
    print(f"(c) torch.ops.ir path           +{c - direct:7.3f} us")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "meta": meta}, fh, indent=2)


if __name__ == "__main__":
    main()
