"""Zero-overhead check of ir-compile: a block written with IR ops, compiled with
``ir_compile.backend()`` at native priority, against the same block in plain
torch compiled with Inductor.

Blocks (same math in both variants; the IR native implementations compute in
float32 and cast back, and so does the plain version):

* ``pointwise``: ``a = silu_and_mul(x2); h = a + r; y = rms_norm(h, w)`` -> ``(y, h)``
  (the residual add + rms_norm becomes ``fused_add_rms_norm`` in the IR variant)
* ``mlp``: ``h = x + r; y = rms_norm(h, w); u = y @ w_gate_up; a = silu_and_mul(u);
  o = a @ w_down`` -> ``(o, h)``

Each timing is the median over ``--repeats`` runs of a loop of calls (CPU:
``time.perf_counter``; CUDA: CUDA events around the loop, after warm-up).

Run: ``uv run python benchmarks/compile_overhead.py [--device cuda] [--md PATH] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch._inductor.utils import run_and_get_code

import ir_compile
import ir_core as ir

EPS = 1e-6


# ------------------------------------------------------------------ blocks


def _rms(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    hf = h.float()
    return (hf * torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(h.dtype)


def _silu_mul(u: torch.Tensor) -> torch.Tensor:
    d = u.shape[-1] // 2
    uf = u.float()
    return (F.silu(uf[..., :d]) * uf[..., d:]).to(u.dtype)


def pointwise_plain(x2, r, w):
    a = _silu_mul(x2)
    h = a + r
    return _rms(h, w), h


def pointwise_ir(x2, r, w):
    a = ir.ops.silu_and_mul(x2)
    h = a + r
    return ir.ops.rms_norm(h, w, EPS), h


def mlp_plain(x, r, w, w_gate_up, w_down):
    h = x + r
    y = _rms(h, w)
    return _silu_mul(y @ w_gate_up) @ w_down, h


def mlp_ir(x, r, w, w_gate_up, w_down):
    h = x + r
    y = ir.ops.rms_norm(h, w, EPS)
    return ir.ops.silu_and_mul(y @ w_gate_up) @ w_down, h


def pointwise_inputs(tokens, hidden, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    mk = lambda *s: torch.randn(*s, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    return (mk(tokens, 2 * hidden), mk(tokens, hidden), 1 + 0.1 * mk(hidden))


def mlp_inputs(tokens, hidden, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    mk = lambda *s: torch.randn(*s, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    inter = 2 * hidden
    return (
        mk(tokens, hidden),
        mk(tokens, hidden),
        1 + 0.1 * mk(hidden),
        mk(hidden, 2 * inter) / hidden**0.5,
        mk(inter, hidden) / inter**0.5,
    )


BLOCKS = {
    "pointwise": (pointwise_plain, pointwise_ir, pointwise_inputs),
    "mlp": (mlp_plain, mlp_ir, mlp_inputs),
}


# ------------------------------------------------------------------ timing


def time_us(fn: Callable[[], Any], device: str, repeats: int, budget_s: float) -> float:
    """Median microseconds per call."""
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, min(10000, int(budget_s / repeats / one)))
    samples = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3 / number)
        else:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - t0) * 1e6 / number)
    return statistics.median(samples)


def max_diff(a: Any, b: Any) -> float:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return max(
        float((x.float() - y.float()).abs().max()) if x.numel() else 0.0
        for x, y in zip(a, b, strict=True)
    )


def count_kernels(codes: list[str]) -> dict[str, int]:
    """Generated kernels and extern (library) calls in Inductor's output code."""
    text = "\n".join(codes)
    return {
        "generated": text.count("async_compile.cpp_pybinding(")
        + text.count("async_compile.triton("),
        "extern": text.count("extern_kernels."),
    }


def same_code(a: list[str], b: list[str]) -> bool:
    """Whether two Inductor outputs are the same code once kernel names, comments
    and cache paths are blanked (kernel names derive from the ATen ops fused, or
    from the IR op's name, and do not change the code)."""

    def norm(codes: list[str]) -> str:
        text = "\n".join(codes)
        text = re.sub(r"#[^\n]*", "", text)
        text = re.sub(r"/\S+/", "/", text)
        return re.sub(r"\b(cpp|triton)_\w*fused\w*", "KERNEL", text)

    return norm(a) == norm(b)


def results(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    res = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        },
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "ir_core": ir.__version__,
            "ir_compile": ir_compile.__version__,
        },
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "rows": rows,
    }
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(to_markdown(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    device, dtype = args.device, getattr(torch, args.dtype)
    rows = []
    with ir.priority({"*": ["native"]}):
        for block in args.blocks:
            plain, irf, make = BLOCKS[block]
            for tokens in args.tokens:
                torch._dynamo.reset()
                inputs = make(tokens, args.hidden, dtype, device)
                be = ir_compile.backend()
                c_plain = torch.compile(plain, dynamic=False)
                c_ir = torch.compile(irf, backend=be, dynamic=False)
                t0 = time.perf_counter()
                out_plain, code_plain = run_and_get_code(c_plain, *inputs)
                t1 = time.perf_counter()
                out_ir, code_ir = run_and_get_code(c_ir, *inputs)
                t2 = time.perf_counter()
                diff = max_diff(out_plain, out_ir)
                # interleave the two variants so drift hits both alike
                tp, ti = [], []
                for _ in range(args.rounds):
                    tp.append(
                        time_us(
                            lambda f=c_plain, a=inputs: f(*a), device, args.repeats, args.budget
                        )
                    )
                    ti.append(
                        time_us(lambda f=c_ir, a=inputs: f(*a), device, args.repeats, args.budget)
                    )
                row = {
                    "block": block,
                    "tokens": tokens,
                    "hidden": args.hidden,
                    "dtype": args.dtype,
                    "plain_us": statistics.median(tp),
                    "ir_us": statistics.median(ti),
                    "compile_plain_s": round(t1 - t0, 2),
                    "compile_ir_s": round(t2 - t1, 2),
                    "max_abs_diff": diff,
                    "kernels_plain": count_kernels(code_plain),
                    "kernels_ir": count_kernels(code_ir),
                    "same_code": same_code(code_plain, code_ir),
                    "decisions": sorted({f"{d.op}:{d.provider}" for d in be.decisions}),
                    "fusions": {k: v for p in be.passes for k, v in p.fusion_counts.items() if v},
                }
                row["ratio"] = row["ir_us"] / row["plain_us"]
                rows.append(row)
                results(args, rows)  # written after every row: a time limit keeps what ran
                print(
                    f"{block:9s} tokens={tokens:5d} plain {row['plain_us']:9.2f} us  "
                    f"ir {row['ir_us']:9.2f} us  ratio {row['ratio']:.3f}  "
                    f"diff {diff:.2e}  same_code {row['same_code']}  kernels {row['kernels_plain']} / {row['kernels_ir']}  "
                    f"{row['decisions']}",
                    flush=True,
                )
    return results(args, rows)


def to_markdown(res: dict[str, Any]) -> str:
    m, v = res["machine"], res["versions"]
    lines = [
        "# Compile overhead: IR ops (ir_compile.backend, native priority) vs plain torch (Inductor)",
        "",
        f"- machine: {m['platform']}, {m['processor']}, {m['cpu_count']} CPUs, "
        f"torch threads {m['torch_threads']}, 1-min load average at the end {m['load_avg_1min']}"
        + (f", GPU {m['gpu']}" if m["gpu"] else ""),
        f"- versions: Python {v['python']}, torch {v['torch']}, ir-core {v['ir_core']}, "
        f"ir-compile {v['ir_compile']}",
        f"- command: `{res['command']}`",
        "- time: median per call over repeats of a call loop (interleaved rounds, median of rounds)",
        "- same code: Inductor's output code of the two variants is identical once kernel names "
        "(derived from the fused ATen or IR op names), comments and cache paths are blanked",
        "",
        "| block | tokens | hidden | dtype | plain (us) | IR (us) | IR / plain | max abs diff "
        "| kernels plain / IR (generated+extern) | same code | IR decisions | fusions |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['block']} | {r['tokens']} | {r['hidden']} | {r['dtype']} | {r['plain_us']:.2f} | "
            f"{r['ir_us']:.2f} | {r['ratio']:.3f} | {r['max_abs_diff']:.1e} | "
            f"{r['kernels_plain']['generated']}+{r['kernels_plain']['extern']} / "
            f"{r['kernels_ir']['generated']}+{r['kernels_ir']['extern']} | "
            f"{'yes' if r['same_code'] else 'NO'} | "
            f"{', '.join(r['decisions'])} | {', '.join(f'{k}={n}' for k, n in r['fusions'].items())} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, help="default: float32 on cpu, bfloat16 on cuda")
    parser.add_argument("--hidden", type=int, default=None, help="default: 1024 cpu, 4096 cuda")
    parser.add_argument("--tokens", type=int, nargs="+", default=None)
    parser.add_argument("--blocks", nargs="+", default=list(BLOCKS), choices=list(BLOCKS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per timing")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 on cpu, so a busy shared machine "
        "does not stall OpenMP barriers; unchanged on cuda)",
    )
    parser.add_argument("--md", help="write a markdown table here")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    args.hidden = args.hidden or (4096 if cuda else 1024)
    args.tokens = args.tokens or ([1, 256, 4096] if cuda else [1, 64, 1024])
    if args.threads or not cuda:
        torch.set_num_threads(args.threads or 1)
    # A fresh Inductor cache: every graph is compiled here, so the IR pass runs
    # and its decisions are reported (a cache hit would skip the passes).
    utils = torch._inductor.utils
    fresh = getattr(utils, "fresh_cache", None) or utils.fresh_inductor_cache
    with fresh():
        run(args)


if __name__ == "__main__":
    main()
