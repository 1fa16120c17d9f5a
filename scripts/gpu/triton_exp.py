# ruff: noqa: E402
"""Launch-config experiments of the Triton provider's kernels on a GPU.

Times candidate configs of the Triton kernels (launched directly, with the
meta-parameters under test) and the library's current default against
``torch.compile(native, dynamic=False)`` at the shapes where the H100 bench
showed a gap, and prints one table a section:

* ``large``: norms and norm+fp8-quant at 16384/32768 x {2048, 4096, 8192};
  ``triton.testing.do_bench`` median with the L2 flushed, in us and % of the
  copy bandwidth measured here (bytes: every input read once, every output
  written once, as ``ir bench``).
* ``small``: <= 1024 tokens; device time per call inside a CUDA graph
  (50 back-to-back calls captured once, replayed 30 ms to warm the clocks,
  median of 25 timed replays / 50; hot L2; like ``ir bench``'s graph column);
  every candidate twice, round robin, the lower of the two medians.

Columns: ``compiled`` (Inductor on the native op), ``default`` (what the
library launches now), then each candidate; ``x`` = time / compiled (< 1.00:
faster than compiled), ``bits`` = outputs bit-identical to the default's
(``ok``) or the count of differing elements. The best candidate a row is
marked ``*``. Results: ``$RES/triton_exp/results.json`` and ``table.txt``;
``inductor_<op>_<shape>.py``: Inductor's code for each small shape.

Run: ``bash scripts/gpu/triton_exp.sh`` (or ``python3 scripts/gpu/triton_exp.py``
from the repo root). ``TRITON_EXP_BUDGET`` (seconds, default 135) bounds the
run: sections left when it runs out are listed as skipped.
``TRITON_EXP_SECTIONS=large,small`` picks sections.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
try:  # installed wheels (the lead's driver); else the checkout's sources
    import ir_core  # noqa: F401
    import ir_kernels_triton  # noqa: F401
except ImportError:
    for sub in ("packages/ir-core/src", "packages/ir-kernels-triton/src"):
        sys.path.insert(0, str(ROOT / sub))

import torch
import triton
from triton.testing import do_bench

import ir_core as ir
from ir_core.bench.traffic import inputs_and_outputs
from ir_kernels_triton.kernels import activation as ka
from ir_kernels_triton.kernels import common as kc
from ir_kernels_triton.kernels import norm as kn
from ir_kernels_triton.kernels import quant as kq

T0 = time.time()
BUDGET = float(os.environ.get("TRITON_EXP_BUDGET", "135"))
SECTIONS = os.environ.get("TRITON_EXP_SECTIONS", "large,small").split(",")
OUT = Path(os.environ.get("RES", "/tmp/ir-gpu-results")) / "triton_exp"
DEV = torch.device("cuda")
DT = torch.bfloat16
LINES: list[str] = []
RESULTS: list[dict[str, Any]] = []


def left() -> float:
    return BUDGET - (time.time() - T0)


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


# ------------------------------------------------------------------ launchers

NORM_OPS = {
    "rms_norm": (False, False),
    "fused_add_rms_norm": (True, False),
    "rms_norm_static_fp8_quant": (False, True),
    "fused_add_rms_norm_static_fp8_quant": (True, True),
}


def norm_call(
    op: str, args: tuple[Any, ...], warps: int, rcp: bool, clamp: bool, imax: bool
) -> Callable[[], Any]:
    """The norm kernel with explicit meta-parameters (what the library would
    launch with those knob values), outputs allocated per call as the op does."""
    has_res, quant = NORM_OPS[op]
    x = args[0]
    r = args[1] if has_res else None
    w = args[2] if has_res else args[1]
    eps = args[3] if has_res else args[2]
    scale = args[4] if (has_res and quant) else (args[3] if quant else None)
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    block, chunks = kc.row_block(hidden)
    x2 = x.view(-1, hidden)
    r2 = r.view(-1, hidden) if r is not None else x2
    odt = torch.float8_e4m3fn if quant else x.dtype
    kern = kn.rms_norm_kernel[(rows,)]

    def fn() -> Any:
        out = torch.empty((rows, hidden), dtype=odt, device=x.device)
        res = torch.empty((rows, hidden), dtype=x.dtype, device=x.device) if has_res else out
        kern(
            x2, r2, w, scale if scale is not None else x2, out, res,
            hidden, hidden, hidden, hidden, hidden, hidden, eps,
            HAS_RESIDUAL=has_res, HAS_WEIGHT=True, QUANT=quant, EXACT=False,
            BLOCK=block, N_CHUNKS=chunks, RCP=rcp, CLAMP=clamp, IMAX=imax,
            num_warps=warps,
        )  # fmt: skip
        return (out, res) if has_res else out

    return fn


def act_call(op: str, args: tuple[Any, ...], block: int, warps: int) -> Callable[[], Any]:
    x = args[0]
    act = ka.ACT_SILU if op == "silu_and_mul" else ka.ACT_GELU
    d = x.shape[-1] // 2
    rows = x.numel() // x.shape[-1]
    kern = ka.gated_act_kernel[(rows, triton.cdiv(d, block))]

    def fn() -> Any:
        out = torch.empty((rows, d), dtype=x.dtype, device=x.device)
        kern(x, out, 2 * d, d, d, ACT=act, BLOCK=block, num_warps=warps)
        return out

    return fn


def squant_call(args: tuple[Any, ...], block: int, warps: int, clamp: bool) -> Callable[[], Any]:
    x, scale = args
    n = x.shape[-1]
    rows = x.numel() // n
    kern = kq.static_quant_kernel[(rows, triton.cdiv(n, block))]

    def fn() -> Any:
        out = torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=x.device)
        kern(x, scale, out, n, n, n, EXACT=False, BLOCK=block, CLAMP=clamp, num_warps=warps)
        return out

    return fn


def library_call(op: str, args: tuple[Any, ...]) -> Callable[[], Any]:
    """The library's own eager launcher (current defaults and knobs)."""
    mods = {"silu_and_mul": ka, "gelu_and_mul": ka, "static_scaled_fp8_quant": kq}
    if op in NORM_OPS:
        f = getattr(kn, op)
    else:
        f = getattr(mods[op], op)
    # direct=True: the eager fast launcher, what the provider uses outside tracing
    if op == "gelu_and_mul":
        return lambda: f(args[0], False, direct=True)
    if op == "rms_norm":
        return lambda: f(args[0], args[1], args[2], args[0].shape[-1], direct=True)
    if op == "fused_add_rms_norm":
        return lambda: f(args[0], args[1], args[2], args[3], args[0].shape[-1], direct=True)
    return lambda: f(*args, direct=True)


def inputs(op: str, tokens: int, hidden: int) -> tuple[Any, ...]:
    gen = getattr(ir.ops, op).input_generator
    args = tuple(gen(tokens, hidden, DT, DEV))
    if op == "gelu_and_mul":
        args = args[:1]  # the erf form; the op's tanh flag is added by the callers
    if op in ("rms_norm", "fused_add_rms_norm"):
        args = args[: 3 if op == "rms_norm" else 4]  # variance_size: None
    return args


_compiled: dict[str, Any] = {}


def compiled_call(op: str, args: tuple[Any, ...]) -> Callable[[], Any]:
    native = getattr(ir.ops, op).native
    fn = _compiled.get(op)
    if fn is None:
        fn = _compiled[op] = torch.compile(native, dynamic=False)
    if op == "gelu_and_mul":
        return lambda: fn(args[0], "none")
    return lambda: fn(*args)


# ------------------------------------------------------------------- measures


def bench_large(fn: Callable[[], Any]) -> float:
    fn()
    return float(do_bench(fn, warmup=10, rep=40, return_mode="median")) * 1e3


def bench_graph(fn: Callable[[], Any], calls: int = 50, reps: int = 25) -> float:
    """Device us per call: ``calls`` calls captured in one CUDA graph, replayed
    for >= 30 ms first (the GPU clocks down while a candidate compiles: without
    this, the first replays of a 1 us kernel run at idle clocks), then the
    median of ``reps`` timed replays / calls."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    start = time.time()
    while time.time() - start < 0.03:
        for _ in range(10):
            graph.replay()
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / calls)
    del graph
    return statistics.median(times)


def diff(a: Any, b: Any) -> str:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    n = 0
    for u, v in zip(a, b, strict=True):
        u8 = u.view(torch.uint8) if u.dtype == torch.float8_e4m3fn else u.view(torch.int16)
        v8 = v.view(torch.uint8) if v.dtype == torch.float8_e4m3fn else v.view(torch.int16)
        n += int((u8 != v8).sum())
    return "ok" if n == 0 else str(n)


def dump_inductor(fn: Callable[[], Any], tag: str) -> Any:
    """First (compiling) call of a compiled native, its Inductor code saved to
    ``inductor_<op>_<shape>.py``: what to compare a slower Triton kernel with."""
    from torch._inductor.utils import run_and_get_code

    out, codes = run_and_get_code(fn)
    if codes:
        (OUT / f"inductor_{tag}.py").write_text("\n\n# ----\n\n".join(codes))
    return out


def copy_bw() -> float:
    src = torch.ones(1 << 30, dtype=torch.uint8, device=DEV)
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), warmup=10, rep=50, return_mode="median")
    return 2 * src.numel() / (ms * 1e-3)


def row(
    section: str,
    op: str,
    tokens: int,
    hidden: int,
    cands: dict[str, Callable[[], Any]],
    timer: Callable[[Callable[[], Any]], float],
    bw: float,
    args: tuple[Any, ...],
) -> None:
    """Time ``cands`` (``compiled`` and ``default`` first) and print one line."""
    times: dict[str, float] = {}
    bits: dict[str, str] = {}
    ref = None
    for name, fn in cands.items():
        if left() < 3:
            break
        try:
            if name == "compiled" and section == "small":
                out = dump_inductor(fn, f"{op}_{tokens}x{hidden}")
            else:
                out = fn()
            torch.cuda.synchronize()
            if name == "default":
                ref = out
            elif name != "compiled" and ref is not None:
                bits[name] = diff(out, ref)
            times[name] = timer(fn)
        except Exception as exc:  # one broken candidate must not end the run
            times[name] = float("nan")
            bits[name] = f"ERR {type(exc).__name__}: {str(exc)[:80]}"
    if section == "small":  # second round-robin pass, keep the lower median (1 us noise)
        for name, fn in cands.items():
            if left() < 3 or times.get(name, float("nan")) != times.get(name):
                continue
            times[name] = min(times[name], timer(fn))
    nbytes = inputs_and_outputs(args, ref if ref is not None else ())
    comp = times.get("compiled", float("nan"))
    ok = {k: t for k, t in times.items() if k != "compiled" and t == t}
    best = min(ok, key=ok.__getitem__) if ok else ""
    cells = []
    for name, t in times.items():
        pct = 100 * nbytes / (t * 1e-6) / bw if t == t and t > 0 else float("nan")
        ratio = t / comp if comp == comp and comp > 0 else float("nan")
        mark = "*" if name == best else ""
        b = bits.get(name, "")
        b = f" bits={b}" if b and b != "ok" else ""
        if section == "large":
            cells.append(f"{name}{mark} {t:.1f}us {pct:.0f}% x{ratio:.2f}{b}")
        else:
            cells.append(f"{name}{mark} {t:.2f}us x{ratio:.2f}{b}")
    say(f"{op} {tokens}x{hidden}: " + " | ".join(cells))
    RESULTS.append(
        {"section": section, "op": op, "tokens": tokens, "hidden": hidden, "bytes": nbytes,
         "us": times, "bits": bits, "best": best}
    )  # fmt: skip


# ------------------------------------------------------------------- sections


def norm_cands(op: str, args: tuple[Any, ...], warps_list: list[int]) -> dict[str, Any]:
    hidden = args[0].shape[-1]
    block, _ = kc.row_block(hidden)
    dw = kc.row_warps(block)
    quant = NORM_OPS[op][1]
    c: dict[str, Any] = {
        "compiled": compiled_call(op, args),
        "default": library_call(op, args),
        # before this round: div_rn, clamp, float max
        "old": norm_call(op, args, dw, False, True, False),
    }
    if quant:
        c["rcp"] = norm_call(op, args, dw, True, True, False)
        c["noclamp"] = norm_call(op, args, dw, False, False, False)
    c["imax"] = norm_call(op, args, dw, False, True, True)
    for w in warps_list:
        c[f"w{w}"] = norm_call(op, args, w, True, False, True)  # every new flag, w warps
    return c


def section_large(bw: float) -> None:
    say("== large: do_bench median, L2 flushed; us, % of copy BW, x = time / compiled")
    say("   old = div_rn+clamp+float max (before); rcp/noclamp/imax = one new flag on old;")
    say("   wN = all new flags (rcp, no clamp, int max) with N warps; default = library now")
    plan = [
        ("rms_norm_static_fp8_quant", 16384, 8192, [8, 16, 32]),
        ("rms_norm_static_fp8_quant", 16384, 4096, [4, 8, 16]),
        ("fused_add_rms_norm_static_fp8_quant", 16384, 8192, [8, 16, 32]),
        ("rms_norm", 16384, 2048, [2, 4, 8]),
        ("rms_norm_static_fp8_quant", 32768, 8192, [8, 16]),
        ("rms_norm_static_fp8_quant", 16384, 2048, [2, 4, 8]),
        ("fused_add_rms_norm_static_fp8_quant", 16384, 4096, [4, 8, 16]),
        ("rms_norm", 16384, 8192, [8, 16]),
        ("rms_norm", 16384, 4096, [4, 8]),
        ("fused_add_rms_norm", 16384, 8192, [8, 16]),
        ("rms_norm_static_fp8_quant", 32768, 4096, [4, 8]),
        ("rms_norm_static_fp8_quant", 32768, 2048, [2, 4]),
        ("fused_add_rms_norm_static_fp8_quant", 32768, 8192, [8, 16]),
        ("rms_norm", 32768, 2048, [4]),
        ("fused_add_rms_norm_static_fp8_quant", 16384, 2048, [4]),
    ]
    for op, t, h, wl in plan:
        if left() < 15:
            say(f"  skipped (time budget): {op} {t}x{h} and later")
            return
        args = inputs(op, t, h)
        row("large", op, t, h, norm_cands(op, args, wl), bench_large, bw, args)
        del args
        torch.cuda.empty_cache()


def section_small(bw: float) -> None:
    say("== small: CUDA-graph device time per call (hot L2); x = time / compiled")
    say("   norms: wN = all new flags with N warps; act/quant: bB_wN = column block B, N warps")
    norm_plan = [
        ("rms_norm", 128, 2048, [2, 4, 8]),
        ("rms_norm_static_fp8_quant", 1024, 2048, [2, 4, 8]),
        ("rms_norm", 1, 4096, [2, 4, 8]),
        ("fused_add_rms_norm_static_fp8_quant", 1, 2048, [1, 2, 4]),
        ("rms_norm", 1024, 4096, [4, 8]),
        ("rms_norm_static_fp8_quant", 1, 8192, [4, 8, 16]),
    ]
    act_plan = [
        ("static_scaled_fp8_quant", 1, 8192),
        ("silu_and_mul", 1, 4096),
        ("gelu_and_mul", 1, 8192),
        ("silu_and_mul", 1024, 4096),
        ("static_scaled_fp8_quant", 1024, 4096),
    ]
    act_cfgs = [(256, 1), (512, 1), (512, 2), (1024, 2), (1024, 4), (2048, 4), (4096, 8)]
    for op, t, h, wl in norm_plan:
        if left() < 10:
            say(f"  skipped (time budget): {op} {t}x{h} and later norms")
            break
        args = inputs(op, t, h)
        row("small", op, t, h, norm_cands(op, args, wl), bench_graph, bw, args)
    for op, t, h in act_plan:
        if left() < 8:
            say(f"  skipped (time budget): {op} {t}x{h} and later")
            break
        args = inputs(op, t, h)
        c: dict[str, Any] = {"compiled": compiled_call(op, args), "default": library_call(op, args)}
        for b, w in act_cfgs:
            if op == "static_scaled_fp8_quant":
                c[f"b{b}_w{w}"] = squant_call(args, b, w, False)
            else:
                c[f"b{b}_w{w}"] = act_call(op, args, b, w)
        row("small", op, t, h, c, bench_graph, bw, args)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ir.load_providers()
    say(
        f"triton_exp: {torch.cuda.get_device_name(0)} torch {torch.__version__} "
        f"triton {triton.__version__}; budget {BUDGET:.0f}s; knobs now: "
        f"NORM_WARPS={kc.NORM_WARPS} RCP={kc.NORM_RCP} CLAMP={kc.FP8_CLAMP} IMAX={kc.NORM_IMAX}"
    )
    bw = copy_bw()
    say(f"copy bandwidth {bw / 1e9:.0f} GB/s (read + write)")
    for sec in SECTIONS:
        if left() < 10:
            say(f"skipped section {sec} (time budget)")
            continue
        {"large": section_large, "small": section_small}[sec.strip()](bw)
    say(f"done in {time.time() - T0:.0f}s")
    (OUT / "table.txt").write_text("\n".join(LINES) + "\n")
    (OUT / "results.json").write_text(json.dumps({"copy_bw": bw, "rows": RESULTS}, indent=1))


if __name__ == "__main__":
    main()
