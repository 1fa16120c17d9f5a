# ruff: noqa: E402
"""Launch-config experiments of the Triton provider's kernels on a GPU.

Times candidate configs of the Triton kernels (launched directly, with the
meta-parameters under test) and the library's current default against
``torch.compile(native, dynamic=False)`` at the shapes where the H100 bench
showed a gap, and prints one table a section:

* ``large`` (at most 45 % of the budget): gelu/silu_and_mul and static fp8
  quant at 16384 x 8192 (grid order, block, warps), rms_norm 16384 x 2048 and
  the hidden-4096 norms (warps); ``triton.testing.do_bench`` median with the
  L2 flushed, in us and % of the copy bandwidth measured here (bytes: every
  input read once, every output written once, as ``ir bench``).
* ``small``: the <= 1024-token shapes where the H100 bench had the triton
  provider > 5 % behind Inductor (element-wise block/warps, norm warps, group
  quant tile, dynamic quant warps); device time per call inside a CUDA graph
  (50 back-to-back calls captured once, replayed 30 ms to warm the clocks,
  median of 25 timed replays / 50; hot L2; like ``ir bench``'s graph column);
  every candidate twice, round robin, the lower of the two medians.

Rows run most wanted first; rows left when a section's time is up are listed
as skipped. Candidate names are explained in each section's header lines.

Columns: ``compiled`` (Inductor on the native op), ``default`` (what the
library launches now), then each candidate; ``x`` = time / compiled (< 1.00:
faster than compiled), ``bits`` = outputs bit-identical to the default's
(``ok``) or the count of differing elements. The best candidate a row is
marked ``*``. Results: ``$RES/triton_exp/results.json`` and ``table.txt``;
``inductor_<op>_<shape>.py``: Inductor's code for each small shape.

Run: ``bash scripts/gpu/triton_exp.sh`` (or ``python3 scripts/gpu/triton_exp.py``
from the repo root). ``TRITON_EXP_BUDGET`` (seconds, default 135) bounds the
run (about that long on an H100, compiles included).
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
    op: str, args: tuple[Any, ...], warps: int, w_early: bool | None = None
) -> Callable[[], Any]:
    """The norm kernel with the library's flags and ``warps`` warps (what
    ``IR_TRITON_NORM_WARPS`` / ``IR_TRITON_NORM_QUANT_WARPS`` would launch),
    ``w_early``: the weight loaded with the row (default: the library's),
    outputs allocated per call as the op does."""
    has_res, quant = NORM_OPS[op]
    x = args[0]
    r = args[1] if has_res else None
    w = args[2] if has_res else args[1]
    eps = args[3] if has_res else args[2]
    scale = args[4] if (has_res and quant) else (args[3] if quant else None)
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    block, chunks, _, rcp, clamp, imax, early = kc.norm_meta(hidden, quant and not has_res)
    early = (early and rows < kc.NORM_WEARLY_MAX_ROWS) if w_early is None else w_early
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
            HAS_RESIDUAL=has_res, HAS_WEIGHT=True, QUANT=quant, EXACT=kc.EXACT_FP8,
            BLOCK=block, N_CHUNKS=chunks, RCP=rcp, CLAMP=clamp, IMAX=imax,
            W_EARLY=early, num_warps=warps,
        )  # fmt: skip
        return (out, res) if has_res else out

    return fn


def _ew_grid(rows: int, n: int, block: int, flat: bool) -> tuple[tuple[int, ...], int]:
    """Grid and column blocks of an element-wise launch of ``block`` columns."""
    cb = triton.cdiv(n, block)
    return ((rows * cb,) if flat else (rows, cb)), cb


def act_call(
    op: str, args: tuple[Any, ...], block: int, warps: int, flat: bool, even: bool
) -> Callable[[], Any]:
    """``gated_act_kernel`` with explicit meta-parameters: ``flat`` 1-D grid in
    memory order or the 2-D (row, column block) grid; ``even``: unmasked
    (only where the block divides the width)."""
    x = args[0]
    act = ka.ACT_SILU if op == "silu_and_mul" else ka.ACT_GELU
    d = x.shape[-1] // 2
    rows = x.numel() // x.shape[-1]
    grid, cb = _ew_grid(rows, d, block, flat)
    even = even and d % block == 0
    kern = ka.gated_act_kernel[grid]

    def fn() -> Any:
        out = torch.empty((rows, d), dtype=x.dtype, device=x.device)
        kern(
            x, out, 2 * d, d, d, ACT=act, BLOCK=block, COL_BLOCKS=cb, FLAT=flat, EVEN=even,
            num_warps=warps,
        )  # fmt: skip
        return out

    return fn


def squant_call(
    args: tuple[Any, ...], block: int, warps: int, flat: bool, even: bool, rcp: bool | None = None
) -> Callable[[], Any]:
    """``static_quant_kernel`` with explicit meta-parameters (as :func:`act_call`);
    ``rcp``: reciprocal division (default: the library's ``QUANT_RCP``)."""
    rcp = kc.QUANT_RCP if rcp is None else rcp
    x, scale = args
    n = x.shape[-1]
    rows = x.numel() // n
    grid, cb = _ew_grid(rows, n, block, flat)
    even = even and n % block == 0
    kern = kq.static_quant_kernel[grid]

    def fn() -> Any:
        out = torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=x.device)
        kern(
            x, scale, out, n, n, n, EXACT=kc.EXACT_FP8, BLOCK=block, COL_BLOCKS=cb,
            CLAMP=kc.FP8_CLAMP, FLAT=flat, EVEN=even, RCP=rcp, num_warps=warps,
        )  # fmt: skip
        return out

    return fn


def ew_call(
    op: str, args: tuple[Any, ...], cfg: tuple[int, int, bool, bool], rcp: bool | None = None
) -> Any:
    """The element-wise kernel of ``op`` with the config ``cfg`` (``rcp``: static quant only)."""
    if op == "static_scaled_fp8_quant":
        return squant_call(args, *cfg, rcp)
    return act_call(op, args, *cfg)


def group_call(args: tuple[Any, ...], groups: int, warps: int) -> Callable[[], Any]:
    """``group_quant_kernel`` with ``groups`` groups a program and ``warps`` warps."""
    x, gs = args
    n = x.shape[-1]
    rows = x.numel() // n
    ng = n // gs
    gblock = triton.next_power_of_2(gs)
    kern = kq.group_quant_kernel[(rows, triton.cdiv(ng, groups))]

    def fn() -> Any:
        out = torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=x.device)
        sc = torch.empty((rows, ng), dtype=torch.float32, device=x.device)
        kern(
            x, out, sc, n, n, ng, ng, gs, kq.GROUP_EPS, EXACT=kc.EXACT_FP8, GROUPS=groups,
            GROUP_BLOCK=gblock, num_warps=warps,
        )  # fmt: skip
        return out, sc

    return fn


def dq_call(args: tuple[Any, ...], warps: int, rcp: bool | None = None) -> Callable[[], Any]:
    """``dynamic_quant_kernel`` (no upper bound) with ``warps`` warps; ``rcp``
    as :func:`squant_call`."""
    rcp = kc.QUANT_RCP if rcp is None else rcp
    x = args[0]
    n = x.shape[-1]
    rows = x.numel() // n
    block, chunks, _ = kc.row_meta(n)
    kern = kq.dynamic_quant_kernel[(rows,)]

    def fn() -> Any:
        out = torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=x.device)
        sc = torch.empty((rows, 1), dtype=torch.float32, device=x.device)
        kern(
            x, sc, out, sc, n, n, n, kq.MIN_SCALE, HAS_UB=False, EXACT=kc.EXACT_FP8, BLOCK=block,
            N_CHUNKS=chunks, RCP=rcp, num_warps=warps,
        )  # fmt: skip
        return out, sc

    return fn


def library_call(op: str, args: tuple[Any, ...]) -> Callable[[], Any]:
    """The library's own eager launcher (current defaults and knobs)."""
    f = getattr(kn if op in NORM_OPS else ka if op.endswith("_and_mul") else kq, op)
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
    """``torch.compile(native, dynamic=False)``: one compile a shape."""
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


_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32}


def diff(a: Any, b: Any) -> str:
    """``ok`` when every output is bit-identical, else the count of differing elements."""
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    n = 0
    for u, v in zip(a, b, strict=True):
        if u.shape != v.shape:
            return f"shape {tuple(u.shape)} vs {tuple(v.shape)}"
        u, v = u.reshape(-1, u.shape[-1]), v.reshape(-1, v.shape[-1])
        bits = _INT_OF_SIZE[u.element_size()]
        n += int((u.view(bits) != v.view(bits)).sum())
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

#: Element-wise candidates (block, warps, flat grid, unmasked), named; ``old``
#: is the layout before this round (2-D grid, 1024 columns, 4 warps, masked).
EW_OLD = (1024, 4, False, False)
EW_LARGE = {
    "old": EW_OLD,
    "flat_masked": (1024, 4, True, False),  # the grid order alone
    "f1024_w4": (1024, 4, True, True),
    "f2048_w8": (2048, 8, True, True),
    "f2048_w4": (2048, 4, True, True),
}
EW_SMALL = {
    "old": EW_OLD,
    "f128_w4": (128, 4, True, True),
    "f128_w1": (128, 1, True, True),
    "f256_w4": (256, 4, True, True),
    "f512_w4": (512, 4, True, True),
    "f1024_w4": (1024, 4, True, True),
}


def ew_cands(op: str, args: tuple[Any, ...], cfgs: dict[str, Any]) -> dict[str, Any]:
    """compiled, default, then each config of ``cfgs`` not equal to the default's."""
    n = args[0].shape[-1] // (2 if op.endswith("_and_mul") else 1)
    rows = args[0].numel() // args[0].shape[-1]
    block, _, warps, flat, even = kc.ew_meta(n, rows)
    default = (block, warps, flat, even)
    c: dict[str, Any] = {"compiled": compiled_call(op, args), "default": library_call(op, args)}
    for name, cfg in cfgs.items():
        if cfg != default:  # "old": the layout and (static quant) the division before
            c[name] = ew_call(op, args, cfg, False if name == "old" else None)
    if op == "static_scaled_fp8_quant":  # the default shape, the other division
        c["rcp" if not kc.QUANT_RCP else "divrn"] = squant_call(args, *default, not kc.QUANT_RCP)
    return c


def norm_cands(op: str, args: tuple[Any, ...], warps_list: list[int]) -> dict[str, Any]:
    """compiled, default, then ``wN`` (the library's flags, N warps) for each N
    that is not the default's warps."""
    hidden = args[0].shape[-1]
    has_res, quant = NORM_OPS[op]
    meta = kc.norm_meta(hidden, quant and not has_res)
    dw = meta[2]
    c: dict[str, Any] = {"compiled": compiled_call(op, args), "default": library_call(op, args)}
    # the default warps, the other weight-load position (IR_TRITON_NORM_WEARLY)
    c["wlate" if meta[6] else "wearly"] = norm_call(op, args, dw, not meta[6])
    for w in warps_list:
        if w != dw:
            c[f"w{w}"] = norm_call(op, args, w)
    return c


def group_cands(args: tuple[Any, ...], cfgs: list[tuple[int, int]]) -> dict[str, Any]:
    """compiled, default, ``old`` (whole 2048-element tiles), ``gG_wW``."""
    x, gs = args
    n = x.shape[-1]
    ng, gblock = n // gs, triton.next_power_of_2(gs)
    old_groups = max(1, min(triton.next_power_of_2(ng), 2048 // gblock))
    old = (old_groups, max(1, min(8, old_groups * gblock // 512)))
    rows = x.numel() // n
    dg, _, _, dw = kq.group_meta(ng, gs, kq._rows_bucket(rows))
    op = "per_token_group_quant_fp8"
    c: dict[str, Any] = {"compiled": compiled_call(op, args), "default": library_call(op, args)}
    for name, (g, w) in [("old", old), *((f"g{g}_w{w}", (g, w)) for g, w in cfgs)]:
        if (g, w) != (dg, dw) and name not in c:
            c[name] = group_call(args, g, w)
    return c


def dq_cands(args: tuple[Any, ...], warps_list: list[int]) -> dict[str, Any]:
    op = "dynamic_per_token_scaled_fp8_quant"
    n = args[0].shape[-1]
    block, _, dw = kc.row_meta(n)
    dw = kc.DQ_WARPS.get(block, dw)
    c: dict[str, Any] = {"compiled": compiled_call(op, args), "default": library_call(op, args)}
    c["rcp" if not kc.QUANT_RCP else "divrn"] = dq_call(args, dw, not kc.QUANT_RCP)
    for w in warps_list:
        if w != dw:
            c[f"w{w}"] = dq_call(args, w)
    return c


def cands_for(kind: str, op: str, args: tuple[Any, ...], extra: Any) -> dict[str, Any]:
    if kind == "ew":
        return ew_cands(op, args, extra)
    if kind == "norm":
        return norm_cands(op, args, extra)
    if kind == "group":
        return group_cands(args, extra)
    return dq_cands(args, extra)


#: (kind, op, tokens, hidden, candidates), most wanted first. ``hidden`` is the
#: op's input generator's (activations: output width; the input is twice as wide).
LARGE_PLAN: list[tuple[str, str, int, int, Any]] = [
    ("ew", "gelu_and_mul", 16384, 8192, EW_LARGE),
    ("ew", "silu_and_mul", 16384, 8192, EW_LARGE),
    ("ew", "static_scaled_fp8_quant", 16384, 8192, EW_LARGE),
    ("norm", "rms_norm", 16384, 2048, [2, 4, 8, 16]),
    # the other side of the small-shape trade-offs (hidden-only warps)
    ("norm", "rms_norm_static_fp8_quant", 16384, 4096, [4, 8, 16]),
    ("norm", "rms_norm", 16384, 4096, [4, 8, 16]),
    ("ew", "silu_and_mul", 16384, 4096, {"old": EW_OLD, "flat_masked": (1024, 4, True, False)}),
]
SMALL_PLAN: list[tuple[str, str, int, int, Any]] = [
    ("ew", "gelu_and_mul", 1, 8192, EW_SMALL),
    ("ew", "static_scaled_fp8_quant", 1, 8192, EW_SMALL),
    ("norm", "rms_norm", 1, 2048, [1, 2, 4, 8, 16]),
    ("norm", "rms_norm_static_fp8_quant", 128, 4096, [4, 8, 16]),
    ("group", "per_token_group_quant_fp8", 1, 8192, [(1, 2), (1, 1), (2, 2), (4, 4), (16, 4)]),
    ("ew", "gelu_and_mul", 1, 4096, EW_SMALL),
    ("ew", "silu_and_mul", 1, 4096, EW_SMALL),
    ("ew", "static_scaled_fp8_quant", 1, 4096, EW_SMALL),
    ("ew", "gelu_and_mul", 16, 8192, EW_SMALL),
    ("dq", "dynamic_per_token_scaled_fp8_quant", 1, 2048, [1, 2, 4, 8, 16]),
    ("norm", "rms_norm", 1024, 2048, [2, 4, 8, 16]),
    ("norm", "rms_norm", 128, 4096, [4, 8, 16]),
    ("norm", "rms_norm_static_fp8_quant", 16, 4096, [4, 8, 16]),
    ("group", "per_token_group_quant_fp8", 16, 4096, [(1, 2), (2, 2), (4, 4), (16, 4)]),
    ("ew", "silu_and_mul", 1024, 4096, EW_SMALL),
]


def run_plan(section: str, plan: list[Any], until: float, bw: float) -> None:
    """Rows of ``plan`` while the run is before ``until`` s (from its start)
    and inside the budget; the rest are listed as skipped."""
    timer = bench_large if section == "large" else bench_graph
    for i, (kind, op, t, h, extra) in enumerate(plan):
        if time.time() - T0 > until or left() < 10:
            rest = ", ".join(f"{o} {tt}x{hh}" for _, o, tt, hh, _ in plan[i:])
            say(f"  skipped (time budget): {rest}")
            return
        args = inputs(op, t, h)
        try:
            cands = cands_for(kind, op, args, extra)
        except Exception as exc:  # a broken row must not end the run
            say(f"{op} {t}x{h}: ERR building candidates: {type(exc).__name__}: {exc}")
            continue
        row(section, op, t, h, cands, timer, bw, args)
        del args, cands
        torch.cuda.empty_cache()


def section_large(bw: float) -> None:
    say("== large: do_bench median, L2 flushed; us, % of copy BW, x = time / compiled")
    say("   element-wise: old = 2-D (row, block) grid, 1024 cols, 4 warps, masked, div_rn;")
    say("   flat_masked = 1-D memory-order grid, masked; fB_wN = flat, unmasked, B cols, N warps;")
    say("   static quant divrn / rcp: the default shape with the other division (QUANT_RCP)")
    say("   norms: wN = the library's flags with N warps (default: the library's own rule);")
    say("   wlate / wearly = default warps, weight loaded after the sum / with the row")
    # the large section gets at most 45 % of the budget: the small one must run too
    run_plan("large", LARGE_PLAN, 0.45 * BUDGET, bw)


def section_small(bw: float) -> None:
    say("== small: CUDA-graph device time per call (hot L2); x = time / compiled")
    say("   element-wise: as large; group: gG_wN = G groups a program, N warps,")
    say("   old = whole 2048-element tiles; dynamic quant / norms: wN = N warps;")
    say("   quant divrn / rcp: the default shape with the other division (QUANT_RCP);")
    say("   norms wlate / wearly: default warps, weight loaded after the sum / with the row")
    run_plan("small", SMALL_PLAN, BUDGET, bw)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # one compiled native per op, recompiled per shape: keep every shape compiled
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    ir.load_providers()
    say(
        f"triton_exp: {torch.cuda.get_device_name(0)} torch {torch.__version__} "
        f"triton {triton.__version__}; budget {BUDGET:.0f}s; knobs now: "
        f"NORM_WARPS={kc.NORM_WARPS} NORM_QUANT_WARPS={kc.NORM_QUANT_WARPS} "
        f"EW_FLAT={kc.EW_FLAT} EW_PROGRAMS={kc.EW_PROGRAMS} "
        f"GROUP_PROGRAMS={kc.GROUP_PROGRAMS} DQ_WARPS={kc.DQ_WARPS} QUANT_RCP={kc.QUANT_RCP} "
        f"NORM_WEARLY={kc.NORM_WEARLY}"
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
