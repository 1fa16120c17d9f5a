"""Eager dispatch overhead of an op with a tuned table (issue 10), next to the
same op without one. Companion of ``benchmarks/dispatch_overhead.py``.

Cases (tiny CPU tensors, do-nothing providers, so only dispatch is timed; a
test platform whose default priority for rms_norm is the do-nothing provider):
  (a)  untuned op, unconditional provider    ir.ops.rms_norm(...) vs impl(...)
  (t0) tuned op whose table agrees with the default in every bucket (within
       the 5 % margin): dispatch uses the plain selector, no bucket lookup
  (t)  tuned op (a faked table that picks another provider at 1024 tokens):
       the selector is looked up per call by (dtype, shape), two dict lookups
  (t') the same for a hidden size without an exact row (nearest row; after
       the first call of a shape it is the same lookup as (t))

Run: ``uv run python benchmarks/tune_dispatch_overhead.py [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import timeit

import torch

import ir_core as ir
from ir_core.platforms import Platform, set_platform
from ir_core.tuning import table

NUMBER = 20000
REPEATS = 15


def noop(x, weight, epsilon, variance_size=None):
    return x


def noop2(x, weight, epsilon, variance_size=None):
    return x


def per_call_us(fn) -> float:
    return statistics.median(timeit.repeat(fn, number=NUMBER, repeat=REPEATS)) / NUMBER * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    op = ir.ops.rms_norm
    op.register_impl("bench_noop")(noop)
    op.register_impl("bench_noop2")(noop2)
    set_platform(Platform("bench", "cpu", {"rms_norm": ("bench_noop", "native")}))
    torch.set_grad_enabled(False)
    x, w = torch.randn(2, 64), torch.randn(64)
    x2, w2 = torch.randn(2, 80), torch.randn(80)
    data = {
        "format": table.FORMAT,
        "version": table.FORMAT_VERSION,
        "device": table.device_key(),
        "providers": {
            "rms_norm": {p: table.provider_key(op, p) for p in ("bench_noop", "bench_noop2")}
        },
        "entries": [
            {
                "op": "rms_norm",
                "dtype": "float32",
                "hidden": 64,
                "tokens": 2,
                "times_us": {"bench_noop": 1.0, "bench_noop2": 2.0},
            },
            {
                "op": "rms_norm",
                "dtype": "float32",
                "hidden": 64,
                "tokens": 1024,
                "times_us": {"bench_noop": 2.0, "bench_noop2": 1.0},
            },
        ],
    }
    agreeing = json.loads(json.dumps(data))
    agreeing["entries"][1]["times_us"] = {"bench_noop": 2.05, "bench_noop2": 2.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tune.json")
        with open(path, "w") as fh:
            json.dump(data, fh)
        path0 = os.path.join(tmp, "agree.json")
        with open(path0, "w") as fh:
            json.dump(agreeing, fh)
        direct = per_call_us(lambda: noop(x, w, 1e-6))
        a = per_call_us(lambda: op(x, w, 1e-6))
        ir.load_priority(path0)
        assert op.dispatch(torch.randn(1024, 64), w, 1e-6).provider == "bench_noop"
        t0 = per_call_us(lambda: op(x, w, 1e-6))
        ir.load_priority(path)
        assert op.dispatch(x, w, 1e-6).provider == "bench_noop"
        assert op.dispatch(torch.randn(1024, 64), w, 1e-6).provider == "bench_noop2"
        t = per_call_us(lambda: op(x, w, 1e-6))
        t2 = per_call_us(lambda: op(x2, w2, 1e-6))
        ir.load_priority(None)
    set_platform(None)
    results = {
        "direct_call_us": direct,
        "a_untuned_overhead_us": a - direct,
        "t0_tuned_agreeing_overhead_us": t0 - direct,
        "t_tuned_overhead_us": t - direct,
        "t_nearest_row_overhead_us": t2 - direct,
    }
    print(f"direct call of the impl            {direct:7.3f} us")
    print(f"(a)  untuned, unconditional       +{a - direct:7.3f} us")
    print(f"(t0) tuned, agrees with default   +{t0 - direct:7.3f} us")
    print(f"(t)  tuned, exact hidden row      +{t - direct:7.3f} us")
    print(f"(t') tuned, nearest hidden row    +{t2 - direct:7.3f} us")
    if args.json:
        meta = {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "number": NUMBER,
            "repeats": REPEATS,
        }
        with open(args.json, "w") as fh:
            json.dump({"results": results, "meta": meta}, fh, indent=2)


if __name__ == "__main__":
    main()
