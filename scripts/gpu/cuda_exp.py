"""Launch-knob experiment for the `cuda` provider (ir-kernels-cuda) on one GPU.

Times the kernels under the launch knobs of csrc/launch.h (set in this
process through the library's C entry point ``ir_cuda_knob_set``: no
rebuild) against ``torch.compile(dynamic=False)`` of the native op, and
checks bitwise that the knob variants agree and how they compare to native.

* bitwise: fp8 division variants over every bf16/fp16 value; every fp8 op
  under all knobs that must not change a result; the lean norm kernel vs
  the former one vs native; silu's branch-free division over every bf16 gate;
* section 0 (candidates of this round vs the former defaults, "old"):
  large shapes with ``time_cuda`` (do_bench, L2 flushed, % of the measured
  copy bandwidth), small and mid shapes (up to 4096 tokens) with
  ``time_cuda_graph`` (device time per call in a CUDA graph, hot L2);
* sections 1-3 (the previous round's knob sweeps; ``--only-candidates``
  skips them): >= 4096 tokens do_bench, <= 1024 tokens graph.

Sections run in priority order under a time budget (``--budget`` seconds);
what does not fit is reported as skipped. Writes ``<out>/cuda_exp.txt`` and
``<out>/cuda_exp.json``; prints the same table.

Usage (device, cwd = repo root, extension prebuilt):
    python3 scripts/gpu/cuda_exp.py --out "$RES/cuda_exp" --budget 100 --only-candidates
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import ir_core as ir
from ir_core.bench.timing import TimingSpec, time_cuda, time_cuda_graph
from ir_kernels_cuda import runtime

DEV = torch.device("cuda")
BF16 = torch.bfloat16
SPEC = TimingSpec(rep_ms=25.0, warmup_ms=5.0)
KNOBS = (
    "fp8_div",
    "norm_cpt",
    "norm_rows",
    "ew_mode",
    "ew_cpt",
    "ew_threads",
    "dq_cpt",
    "gq_cpl",
    "norm_impl",
    "norm_wlate",
    "act_div",
    "rot_split",
    "gq_mode",
    "dq_mode",
    "act_mode",
)

LINES: list[str] = []
RECORDS: list[dict[str, Any]] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


class Knobs:
    """The extension's launch knobs, through its C entry points (ctypes)."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)  # the library torch already loaded: same globals
        self._set = lib.ir_cuda_knob_set
        self._set.argtypes = (ctypes.c_char_p, ctypes.c_int)
        self._set.restype = ctypes.c_int
        self.defaults = {k: self.set(k, 0) for k in KNOBS}  # env values, if any
        for k, v in self.defaults.items():
            self.set(k, v)

    def set(self, name: str, value: int) -> int:
        prev = int(self._set(name.encode(), int(value)))
        if prev == -(2**31):
            raise KeyError(f"unknown knob {name}")
        return prev

    def apply(self, values: dict[str, int]) -> None:
        for k in KNOBS:
            self.set(k, values.get(k, self.defaults[k]))


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.end - time.monotonic()

    def ok(self, what: str, need: float = 1.0) -> bool:
        if self.left() < need:
            self.skipped.append(what)
            return False
        return True


def nbytes(op: Any, args: tuple[Any, ...], out: Any) -> int:
    if op.bytes_moved is not None:
        return int(op.bytes_moved(*args))
    items = out if isinstance(out, (tuple, list)) else (out,)
    n = sum(t.numel() * t.element_size() for t in args if isinstance(t, torch.Tensor))
    return n + sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))


def measure(fn: Callable[[], Any], tokens: int, graph: bool | None = None) -> float:
    """Microseconds: graph time for few tokens, do_bench (L2 flushed) for many
    (``graph`` forces one or the other)."""
    if graph if graph is not None else tokens <= 1024:
        return time_cuda_graph(fn, DEV, calls=20, replays=10) * 1e6
    return time_cuda(fn, SPEC, DEV) * 1e6


def copy_bandwidth_gbs() -> float:
    src = torch.ones(1 << 28, dtype=torch.uint8, device=DEV)  # 256 MiB
    dst = torch.empty_like(src)
    return 2 * src.numel() / time_cuda(lambda: dst.copy_(src), SPEC, DEV) / 1e9


_COMPILED: dict[str, Any] = {}


def compiled_native(name: str) -> Any:
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(getattr(ir.ops, name).native, dynamic=False)
    return _COMPILED[name]


def run_case(
    knobs: Knobs,
    dl: Deadline,
    section: str,
    name: str,
    tokens: int,
    hidden: int,
    variants: list[tuple[str, dict[str, int]]],
    copy_gbs: float,
    compiled: bool,
    graph: bool | None = None,
) -> None:
    """One op at one shape: every knob variant, then torch.compile of native."""
    if not dl.ok(f"{section} {name} {tokens}x{hidden}", 3.0):
        return
    op = getattr(ir.ops, name)
    args = op.input_generator(tokens, hidden, BF16, "cuda")
    impl = op.impls["cuda"].fn
    out = impl(*args)
    nb = nbytes(op, args, out)
    use_graph = graph if graph is not None else tokens <= 1024
    mode = "graph" if use_graph else "do_bench"
    cells = []
    best = None
    for label, values in variants:
        if not dl.ok(f"{section} {name} {tokens}x{hidden} {label}", 1.0):
            break
        knobs.apply(values)
        try:
            us = measure(lambda: impl(*args), tokens, use_graph)
        except Exception as exc:  # report and go on
            cells.append(f"{label}=ERR({type(exc).__name__})")
            continue
        finally:
            knobs.apply({})
        pct = 100 * nb / (us * 1e-6) / copy_gbs / 1e9 if not use_graph else float("nan")
        RECORDS.append(
            dict(
                section=section,
                op=name,
                tokens=tokens,
                hidden=hidden,
                variant=label,
                knobs=values,
                us=us,
                mode=mode,
                pct_copy=pct,
                bytes=nb,
            )
        )
        cells.append(f"{label}={us:.2f}" + (f"({pct:.0f}%)" if not use_graph else ""))
        if best is None or us < best[1]:
            best = (label, us)
    ref = ""
    if compiled and dl.ok(f"{section} {name} {tokens}x{hidden} compiled", 8.0):
        try:
            fn = compiled_native(name)
            cargs = op.input_generator(tokens, hidden, BF16, "cuda")
            us = measure(lambda: fn(*cargs), tokens, use_graph)
            pct = 100 * nb / (us * 1e-6) / copy_gbs / 1e9 if not use_graph else float("nan")
            RECORDS.append(
                dict(
                    section=section,
                    op=name,
                    tokens=tokens,
                    hidden=hidden,
                    variant="compiled",
                    knobs={},
                    us=us,
                    mode=mode,
                    pct_copy=pct,
                    bytes=nb,
                )
            )
            ref = f" | compiled={us:.2f}" + (f"({pct:.0f}%)" if not use_graph else "")
        except Exception as exc:
            ref = f" | compiled=ERR({type(exc).__name__}: {str(exc)[:60]})"
    win = f" best={best[0]}" if best else ""
    say(f"{name:38s} {tokens:6d}x{hidden:<5d} {mode:8s} " + " ".join(cells) + ref + win)


def bitwise_checks(knobs: Knobs) -> None:
    """fp8 division variants (fp8_div 0 = reciprocal + near-step check, 1 =
    IEEE, 2 = reciprocal + 2 corrections) vs native, bytes."""
    say(
        "== bitwise: fp8 division (0 = reciprocal + near-step check, 1 = IEEE, 2 = + 2 corrections)"
    )
    # Every bf16 and fp16 bit pattern (NaN counted apart) through static quant.
    for dtype in (torch.bfloat16, torch.float16):
        x = torch.arange(-(2**15), 2**15, dtype=torch.int32, device=DEV).to(torch.int16)
        x = x.view(dtype).reshape(64, 1024)
        nan = torch.isnan(x.float())
        bad = {0: 0, 1: 0, 2: 0}
        bad_nan = {0: 0, 1: 0, 2: 0}
        for s in (0.0173, 1.0, 3.1e-5, 7.25, 448.0 / 3.0, 0.0625, 2.0**-40, 2.0**50):
            scale = torch.tensor([s], device=DEV)
            exp = ir.ops.static_scaled_fp8_quant.native(x, scale).view(torch.uint8)
            for div in (0, 1, 2):
                knobs.apply({"fp8_div": div})
                got = ir.ops.static_scaled_fp8_quant.impls["cuda"].fn(x, scale).view(torch.uint8)
                diff = got != exp
                bad[div] += int((diff & ~nan).sum())
                bad_nan[div] += int((diff & nan).sum())
        knobs.apply({})
        say(
            f"static quant, all {dtype} values x 8 scales: mismatches vs native "
            f"(non-NaN inputs) check={bad[0]} ieee={bad[1]} recip2={bad[2]}; NaN inputs "
            f"check={bad_nan[0]} ieee={bad_nan[1]} recip2={bad_nan[2]}"
        )
    # Every fp8 op: the division paths give the same bytes (the IEEE path is
    # the one tested bitwise against native), with the row-block, weight-timing
    # and quant launch knobs, none of which may change a result.
    torch.manual_seed(0)
    for name in (
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
        "static_scaled_fp8_quant",
        "dynamic_per_token_scaled_fp8_quant",
        "per_token_group_quant_fp8",
    ):
        op = getattr(ir.ops, name)
        for tokens, hidden in ((37, 4096), (5, 1001), (64, 8192), (3, 40000), (200, 5120)):
            args = op.input_generator(tokens, hidden, BF16, "cuda")
            outs = []
            for values in (
                {"fp8_div": 1},
                {"fp8_div": 0},
                {"fp8_div": 0, "norm_rows": 4},
                {"fp8_div": 2},
                {"norm_wlate": 1},
                {"norm_wlate": 2},
                {"gq_cpl": 4},
                {"gq_cpl": 1},
                {"dq_cpt": 4},
                {"dq_cpt": 2},
                {"gq_mode": 1},
                {"gq_mode": 2},
                {"gq_mode": 1, "fp8_div": 1},
                {"gq_mode": 2, "fp8_div": 3},
                {"dq_mode": 1},
                {"dq_mode": 2},
                {"dq_mode": 1, "fp8_div": 2},
                {"dq_mode": 2, "fp8_div": 1},
            ):
                knobs.apply(values)
                clone = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                got = op.impls["cuda"].fn(*clone)
                got = got if isinstance(got, tuple) else (got,)
                outs.append([g.view(torch.uint8) if g.dtype.itemsize == 1 else g for g in got])
            knobs.apply({})
            same = all(torch.equal(a, b) for o in outs[1:] for a, b in zip(outs[0], o, strict=True))
            ref = op.native(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
            ref = ref if isinstance(ref, tuple) else (ref,)
            fp8_ref = [r.view(torch.uint8) for r in ref if r.dtype.itemsize == 1]
            fp8_got = [g for g in outs[1] if g.dtype == torch.uint8]
            mism = sum(int((a != b).sum()) for a, b in zip(fp8_got, fp8_ref, strict=True))
            say(
                f"{name:38s} {tokens:5d}x{hidden:<6d} all knob variants equal: {same}; "
                f"fp8 bytes != native: {mism} of {sum(r.numel() for r in fp8_ref)}"
            )
    # Row-strided, 16-byte-aligned rows: the lean quant kernels' strided path.
    xs = (torch.randn(300, 4096 + 256, device=DEV) * 3).to(BF16)[:, 128 : 128 + 4096]
    for name, args in (
        ("per_token_group_quant_fp8", (xs, 128)),
        ("dynamic_per_token_scaled_fp8_quant", (xs, None)),
    ):
        op = getattr(ir.ops, name)
        outs = []
        for values in ({}, {"gq_mode": 1}, {"gq_mode": 2}, {"dq_mode": 1}, {"dq_mode": 2}):
            knobs.apply(values)
            outs.append(_as_bytes(op.impls["cuda"].fn(*args)))
        knobs.apply({})
        same = all(torch.equal(a, b) for o in outs[1:] for a, b in zip(outs[0], o, strict=True))
        say(
            f"{name:38s} strided 300x4096 (row stride 4352): lean modes equal: {same}; "
            f"!= native: {_mismatches(outs[0], _as_bytes(op.native(*args)))}"
        )


def _as_bytes(out: Any) -> list[torch.Tensor]:
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [t.view(torch.uint8) if t.dtype.itemsize == 1 else t for t in items if t is not None]


def _mismatches(got: list[torch.Tensor], ref: list[torch.Tensor]) -> int:
    return sum(int((a != b).sum()) for a, b in zip(got, ref, strict=True))


def act_bitwise(knobs: Knobs) -> None:
    """Session-4 act_mode candidate vs the default kernel, bytes, in every
    dtype: act_mode 1 (lean element-wise kernel: 16-, 8- and 4-byte pieces,
    two chunks a thread, fallback for odd halves) for the three activations."""
    torch.manual_seed(2)
    # (tokens, d): 16-byte pieces and the 256-block halving (1, 16, 1024),
    # two chunks a thread (9000 x 4096), 8- and 4-byte pieces from the
    # alignment (1004, 1002 in 16-bit types), odd d (mode-0 fallback).
    shapes = ((1, 2048), (16, 4096), (1024, 2048), (9000, 4096), (5, 1004), (7, 1002), (3, 1001))
    for dtype in (BF16, torch.float16, torch.float32):
        bits = torch.int32 if dtype == torch.float32 else torch.int16
        for name, kw in (
            ("silu_and_mul", {}),
            ("gelu_and_mul", {}),
            ("gelu_and_mul", {"approximate": "tanh"}),
        ):
            op: Any = getattr(ir.ops, name)
            bad = []
            for tokens, d in shapes:
                args = op.input_generator(tokens, d, dtype, "cuda", **kw)
                outs = []
                for values in (
                    {},
                    {"act_mode": 1},
                    {"act_mode": 1, "act_div": 1},
                    {"act_mode": 1, "act_div": 2},
                ):
                    knobs.apply(values)
                    outs.append(op.impls["cuda"].fn(*args).view(bits))
                knobs.apply({})
                if not all(torch.equal(outs[0], o) for o in outs[1:]):
                    bad.append(f"{tokens}x{d}")
            say(
                f"{name} {kw} {dtype}: act_mode 1 == 0 at {len(shapes)} shapes: "
                f"{'yes' if not bad else 'NO: ' + ', '.join(bad)}"
            )


def lean_bitwise(knobs: Knobs) -> None:
    """Lean norm kernel vs the former one vs native; silu's branch-free division
    vs IEEE vs native (every bf16 gate value); rotary's split launch vs the
    former one vs native."""
    say("== bitwise: lean norm kernel (old = norm_impl 1) and silu division (act_div)")
    torch.manual_seed(1)
    lean = [
        {},
        {"norm_wlate": 1},
        {"norm_wlate": 2},
        {"fp8_div": 2},
        {"fp8_div": 1},
        {"norm_rows": 4},
    ]
    for name in (
        "rms_norm",
        "fused_add_rms_norm",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
    ):
        op = getattr(ir.ops, name)
        for tokens, hidden in ((37, 4096), (5, 1001), (64, 8192), (16, 2048), (3, 40000)):
            args = op.input_generator(tokens, hidden, BF16, "cuda")
            outs = []
            for values in [{"norm_impl": 1}, *lean]:
                knobs.apply(values)
                clone = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                outs.append(_as_bytes(op.impls["cuda"].fn(*clone)))
            knobs.apply({})
            ref = _as_bytes(
                op.native(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
            )
            same = all(torch.equal(a, b) for o in outs[2:] for a, b in zip(outs[1], o, strict=True))
            n = sum(r.numel() for r in ref)
            say(
                f"{name:38s} {tokens:5d}x{hidden:<6d} lean variants equal: {same}; != native: "
                f"lean {_mismatches(outs[1], ref)}, old {_mismatches(outs[0], ref)} of {n}; "
                f"lean != old: {_mismatches(outs[1], outs[0])}"
            )
    # silu: every bf16 value as a gate (NaN excluded from the count), random up.
    op = ir.ops.silu_and_mul
    gate = torch.arange(-(2**15), 2**15, dtype=torch.int32, device=DEV).to(torch.int16)
    gate = gate.view(BF16).reshape(64, 1024)
    x = torch.cat([gate, torch.randn(64, 1024, device=DEV).to(BF16)], dim=-1)
    ref = op.native(x)
    nan = torch.isnan(ref.float())
    cells = []
    for label, values in (
        ("ieee", {"act_div": 1}),
        ("fast", {"act_div": 2}),
        ("auto", {}),
        ("act1.ieee", {"act_mode": 1, "act_div": 1}),
        ("act1.fast", {"act_mode": 1, "act_div": 2}),
        ("act1", {"act_mode": 1}),
    ):
        knobs.apply(values)
        got = op.impls["cuda"].fn(x)
        cells.append(
            f"{label}={int(((got.view(torch.int16) != ref.view(torch.int16)) & ~nan).sum())}"
        )
    knobs.apply({})
    say("silu_and_mul, all bf16 gate values: mismatches vs native (non-NaN) " + " ".join(cells))
    try:
        act_bitwise(knobs)
    except Exception as exc:  # report and go on with the rotary checks
        knobs.apply({})
        say(f"act bitwise checks FAILED to run: {type(exc).__name__}: {exc}")
    # rotary: prefetch (and split blocks below one token per SM; rot_split=2)
    # vs one block per token without prefetch (rot_split=1).
    rot: Any = ir.ops.rotary_embedding
    for kw in ({}, {"is_neox": False}, {"partial": True}, {"head_size": 128}):
        for tokens, hidden in ((3, 8192), (16, 8192), (300, 1024)):
            args = rot.input_generator(tokens, hidden, BF16, "cuda", **kw)
            outs = []
            for values in ({"rot_split": 1}, {"rot_split": 2}):
                knobs.apply(values)
                clone = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                outs.append(_as_bytes(rot.impls["cuda"].fn(*clone)))
            knobs.apply({})
            ref = _as_bytes(
                rot.native(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
            )
            same = all(torch.equal(a, b) for a, b in zip(outs[0], outs[1], strict=True))
            say(
                f"rotary_embedding {kw} {tokens}x{hidden}: split == former: {same}; "
                f"!= native: new {_mismatches(outs[1], ref)}, old {_mismatches(outs[0], ref)}"
            )


def lean_section(knobs: Knobs, dl: Deadline, copy_gbs: float, comp: bool) -> None:
    """Candidates of this round vs the former defaults vs torch.compile."""
    say(
        "== 0. candidates (old = former defaults; lean = lean norm kernel, auto weight "
        "timing, near-step fp8 check; small launch rules)"
    )
    old_norm = {"norm_impl": 1, "fp8_div": 2}
    vnq = [
        ("old", old_norm),
        ("lean", {}),
        ("lean.recip2", {"fp8_div": 2}),
        ("lean.early", {"norm_wlate": 1}),
        ("lean.late", {"norm_wlate": 2}),
        ("lean.c2", {"norm_cpt": 2}),
        ("lean.c4", {"norm_cpt": 4}),
    ]
    # Large shapes (do_bench, L2 flushed).
    for hidden in (8192, 2048, 4096):
        run_case(knobs, dl, "0", "rms_norm_static_fp8_quant", 16384, hidden, vnq, copy_gbs, comp)
    run_case(knobs, dl, "0", "rms_norm", 16384, 2048, vnq[:2] + vnq[3:], copy_gbs, comp)
    run_case(
        knobs,
        dl,
        "0",
        "fused_add_rms_norm_static_fp8_quant",
        16384,
        8192,
        [v for v in vnq if v[0] != "lean.recip2"],
        copy_gbs,
        False,
    )
    run_case(
        knobs,
        dl,
        "0",
        "silu_and_mul",
        16384,
        8192,
        [("old", {"act_div": 1}), ("fast", {"act_div": 2}), ("auto", {})],
        copy_gbs,
        False,
    )
    # Session-3 comparisons time the kernels that session 4 replaced by default
    # (gq_mode 3, dq_mode 3, act_mode 2: the former group, dynamic and
    # element-wise kernels, which the knobs below shape).
    former = {"gq_mode": 3, "dq_mode": 3, "act_mode": 2}
    old_gq = {"fp8_div": 2, "gq_cpl": 4, **former}
    run_case(
        knobs,
        dl,
        "0",
        "per_token_group_quant_fp8",
        16384,
        8192,
        [("old", old_gq), ("new", former)],
        copy_gbs,
        False,
    )
    # Small and mid shapes (CUDA graph, hot L2).
    old_ew = {"ew_threads": 256, "act_div": 1, "fp8_div": 2, **former}
    vew = [
        ("old", old_ew),
        ("new", former),
        ("t256", {"ew_threads": 256, **former}),
        ("t64", {"ew_threads": 64, **former}),
    ]
    vsilu = [*vew, ("div1", {"act_div": 1, **former})]
    vgq = [
        ("old", old_gq),
        ("new", former),
        ("cpl1", {"gq_cpl": 1, **former}),
        ("cpl2", {"gq_cpl": 2, **former}),
    ]
    small: list[tuple[str, int, int, list[tuple[str, dict[str, int]]]]] = [
        ("rms_norm_static_fp8_quant", 1, 2048, vnq),
        ("rms_norm_static_fp8_quant", 128, 4096, vnq),
        ("rms_norm_static_fp8_quant", 4096, 2048, vnq),
        ("fused_add_rms_norm_static_fp8_quant", 1, 8192, vnq),
        ("fused_add_rms_norm_static_fp8_quant", 128, 8192, vnq),
        ("fused_add_rms_norm_static_fp8_quant", 1024, 8192, vnq),
        ("silu_and_mul", 1, 2048, vsilu),
        ("silu_and_mul", 1, 4096, vsilu),
        ("silu_and_mul", 1, 8192, vsilu),
        ("gelu_and_mul", 1, 4096, vew),
        ("gelu_and_mul", 16, 8192, vew),
        ("static_scaled_fp8_quant", 1, 4096, vew),
        ("per_token_group_quant_fp8", 1, 2048, vgq),
        ("per_token_group_quant_fp8", 16, 2048, vgq),
        ("per_token_group_quant_fp8", 16, 4096, vgq),
        ("per_token_group_quant_fp8", 1024, 8192, vgq),
        ("per_token_group_quant_fp8", 4096, 4096, vgq),
        (
            "dynamic_per_token_scaled_fp8_quant",
            1,
            2048,
            [
                ("old", {"fp8_div": 2, "dq_cpt": 4, **former}),
                ("new", former),
                ("dq1", {"dq_cpt": 1, **former}),
            ],
        ),
        ("rotary_embedding", 16, 8192, [("old", {"rot_split": 1}), ("new", {})]),
        ("rotary_embedding", 1, 8192, [("old", {"rot_split": 1}), ("new", {})]),
        ("rms_norm", 128, 4096, vnq[:2] + vnq[3:]),
        ("rms_norm", 1, 8192, vnq[:2] + vnq[3:]),
        ("fused_add_rms_norm", 16, 4096, vnq[:2] + vnq[3:]),
    ]
    for name, tokens, hidden, variants in small:
        run_case(knobs, dl, "0", name, tokens, hidden, variants, copy_gbs, comp, graph=True)
    # Session-4 activation candidate (activation.cu documents act_mode;
    # bit-identical to "old", see the bitwise sections). act1: lean
    # element-wise kernel ((tile, row) grid, 128 threads, alignment checked on
    # the host, pieces halved down to two elements a thread below 256
    # blocks); ".c2": two 16-byte pieces a thread at every size (auto: from
    # sm_count * 4096 chunks); ".fast" / ".ieee": silu's division forced
    # (auto: fast up to 1024 chunks per SM); "fast": the division alone on the
    # old kernel. <= 4096 tokens in a CUDA graph.
    # old = the former element-wise kernel (act_mode 2; act_mode 1 is the default since)
    vact = [("old", {"act_mode": 2}), ("act1", {"act_mode": 1})]
    vsilu4 = [
        *vact,
        ("act1.fast", {"act_mode": 1, "act_div": 2}),
        ("act1.ieee", {"act_mode": 1, "act_div": 1}),
        ("act1.c2", {"act_mode": 1, "ew_cpt": 2}),
        ("fast", {"act_mode": 2, "act_div": 2}),
    ]
    act4: list[tuple[str, int, int, list[tuple[str, dict[str, int]]]]] = [
        ("silu_and_mul", 1, 8192, vsilu4),
        ("silu_and_mul", 16, 4096, vsilu4),
        ("silu_and_mul", 128, 8192, vsilu4),
        ("silu_and_mul", 1024, 2048, vsilu4),
        ("silu_and_mul", 1024, 4096, vsilu4),
        ("gelu_and_mul", 1, 2048, vact),
        ("gelu_and_mul", 128, 2048, vact),
        ("gelu_and_mul", 1024, 4096, vact),
        ("silu_and_mul", 16384, 8192, vsilu4),
        ("silu_and_mul", 32768, 4096, vsilu4),
        ("gelu_and_mul", 16384, 8192, vact),
    ]
    for name, tokens, hidden, variants in act4:
        run_case(
            knobs, dl, "0", name, tokens, hidden, variants, copy_gbs, False, graph=tokens <= 4096
        )
    # Session-4 quant candidates (quant.cu documents gq_mode / dq_mode): lean
    # kernels (aligned rows only, pairs of chunks a thread, 16-byte fp8 stores,
    # packed 16-bit max); gq1 = 16 elements a lane, gq2 = 32; dq1 = 16 elements
    # a thread at every row count, dq2 = the current 2/4-chunk split. ".chk" /
    # ".r2": the other exact division form. <= 4096 tokens in a CUDA graph.
    # old = the former kernels (gq_mode 3, dq_mode 3; gq1 / dq1.r2 are the defaults since)
    vgq4 = [
        ("old", {"gq_mode": 3}),
        ("gq1", {"gq_mode": 1}),
        ("gq2", {"gq_mode": 2}),
        ("gq1.chk", {"gq_mode": 1, "fp8_div": 3}),
        ("gq2.chk", {"gq_mode": 2, "fp8_div": 3}),
    ]
    vdq4 = [
        ("old", {"dq_mode": 3}),
        ("cpt2", {"dq_mode": 3, "dq_cpt": 2}),
        ("dq1", {"dq_mode": 1}),
        ("dq2", {"dq_mode": 2}),
        ("dq1.r2", {"dq_mode": 1, "fp8_div": 2}),
    ]
    quant4: list[tuple[str, int, int, list[tuple[str, dict[str, int]]]]] = [
        ("per_token_group_quant_fp8", 1, 2048, vgq4),
        ("per_token_group_quant_fp8", 1, 8192, vgq4),
        ("per_token_group_quant_fp8", 16, 4096, vgq4),
        ("per_token_group_quant_fp8", 1024, 4096, vgq4),
        ("per_token_group_quant_fp8", 1024, 8192, vgq4),
        ("per_token_group_quant_fp8", 4096, 2048, vgq4),
        ("per_token_group_quant_fp8", 4096, 4096, vgq4),
        ("per_token_group_quant_fp8", 16384, 2048, vgq4),
        ("per_token_group_quant_fp8", 32768, 2048, vgq4),
        ("per_token_group_quant_fp8", 16384, 8192, vgq4),
        ("dynamic_per_token_scaled_fp8_quant", 1, 4096, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 16, 8192, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 1024, 2048, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 1024, 4096, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 1024, 8192, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 4096, 2048, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 4096, 8192, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 16384, 2048, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 16384, 8192, vdq4),
        ("dynamic_per_token_scaled_fp8_quant", 32768, 4096, vdq4),
    ]
    for name, tokens, hidden, variants in quant4:
        run_case(
            knobs, dl, "0", name, tokens, hidden, variants, copy_gbs, False, graph=tokens <= 4096
        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/ir-gpu-results/cuda_exp")
    ap.add_argument("--budget", type=float, default=100.0)
    ap.add_argument("--no-compiled", action="store_true")
    ap.add_argument(
        "--no-compiled-small",
        action="store_true",
        help="section 0: torch.compile references only where the shapes are large",
    )
    ap.add_argument(
        "--only-candidates",
        action="store_true",
        help="bitwise checks and section 0 only (skip the former sections 1-3)",
    )
    opts = ap.parse_args()
    out_dir = Path(opts.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    dl = Deadline(opts.budget)
    t0 = time.monotonic()

    ir.load_providers()
    assert runtime.ensure_loaded(), runtime.unavailable_reason()
    path = runtime.library_path()
    assert path is not None
    knobs = Knobs(path)
    say(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}; library {path}")
    say(f"knob start values (env): {knobs.defaults}")

    copy_gbs = copy_bandwidth_gbs()
    say(f"copy bandwidth (256 MiB, read+write): {copy_gbs:.0f} GB/s")
    say(
        "cells: variant=us(% of copy bandwidth); large shapes do_bench with L2 flush, "
        "<= 1024 tokens device us per call in a CUDA graph"
    )

    try:
        bitwise_checks(knobs)
    except Exception as exc:
        say(f"bitwise checks FAILED to run: {type(exc).__name__}: {exc}")
    try:
        lean_bitwise(knobs)
    except Exception as exc:
        say(f"lean bitwise checks FAILED to run: {type(exc).__name__}: {exc}")

    comp = not opts.no_compiled
    lean_section(knobs, dl, copy_gbs, comp and not opts.no_compiled_small)
    if opts.only_candidates:
        return finish(out_dir, dl, t0, copy_gbs)
    # 1. norm + fp8 output at 16384 tokens: division path x chunks per thread.
    say("== 1. rms_norm_static_fp8_quant (div: 1 = IEEE as before, 0 = reciprocal)")
    v1 = [
        ("ieee", {"fp8_div": 1}),
        ("ieee.c2", {"fp8_div": 1, "norm_cpt": 2}),
        ("auto", {}),
        ("c2", {"norm_cpt": 2}),
        ("c4", {"norm_cpt": 4}),
        ("c8", {"norm_cpt": 8}),
        ("c2r2", {"norm_cpt": 2, "norm_rows": 2}),
    ]
    for hidden in (8192, 4096, 2048):
        run_case(knobs, dl, "1", "rms_norm_static_fp8_quant", 16384, hidden, v1, copy_gbs, comp)
    v1b = [("ieee", {"fp8_div": 1}), ("auto", {}), ("c4", {"norm_cpt": 4})]
    for hidden in (8192, 4096):
        run_case(
            knobs,
            dl,
            "1",
            "fused_add_rms_norm_static_fp8_quant",
            16384,
            hidden,
            v1b,
            copy_gbs,
            False,
        )
    for name, hidden in (
        ("static_scaled_fp8_quant", 8192),
        ("dynamic_per_token_scaled_fp8_quant", 8192),
        ("per_token_group_quant_fp8", 8192),
    ):
        v = [("ieee", {"fp8_div": 1}), ("auto", {})]
        if name.startswith("dynamic"):
            v += [("dq2", {"dq_cpt": 2}), ("dq8", {"dq_cpt": 8})]
        if name.startswith("per_token_group"):
            v += [("cpl2", {"gq_cpl": 2}), ("cpl1", {"gq_cpl": 1})]
        if name.startswith("static"):
            v += [("legacy", {"ew_mode": 1}), ("e1", {"ew_cpt": 1}), ("e4", {"ew_cpt": 4})]
        run_case(knobs, dl, "1", name, 16384, hidden, v, copy_gbs, False)

    # 2. hidden 2048 at many tokens: rows per block, chunks per thread; silu shapes.
    say("== 2. hidden 2048 (norm: c<cpt>r<rows>; silu: legacy = row loop, e<cpt>t<threads>)")
    v2 = [
        ("auto", {}),
        ("c2r2", {"norm_cpt": 2, "norm_rows": 2}),
        ("c2r4", {"norm_cpt": 2, "norm_rows": 4}),
        ("c4r1", {"norm_cpt": 4}),
        ("c4r4", {"norm_cpt": 4, "norm_rows": 4}),
        ("c8r1", {"norm_cpt": 8}),
        ("c8r4", {"norm_cpt": 8, "norm_rows": 4}),
        ("c8r8", {"norm_cpt": 8, "norm_rows": 8}),
    ]
    for tokens in (16384, 32768):
        run_case(knobs, dl, "2", "rms_norm", tokens, 2048, v2, copy_gbs, comp and tokens == 16384)
        run_case(knobs, dl, "2", "fused_add_rms_norm", tokens, 2048, v2, copy_gbs, False)
    vs = [
        ("legacy", {"ew_mode": 1}),
        ("auto", {}),
        ("e1t256", {"ew_cpt": 1}),
        ("e2t128", {"ew_cpt": 2, "ew_threads": 128}),
        ("e2t256", {"ew_cpt": 2}),
        ("e2t512", {"ew_cpt": 2, "ew_threads": 512}),
        ("e4t128", {"ew_cpt": 4, "ew_threads": 128}),
        ("e4t256", {"ew_cpt": 4}),
    ]
    for tokens, hidden in ((16384, 2048), (32768, 2048), (16384, 4096)):
        run_case(
            knobs,
            dl,
            "2",
            "silu_and_mul",
            tokens,
            hidden,
            vs,
            copy_gbs,
            comp and tokens == 16384 and hidden == 2048,
        )
    run_case(knobs, dl, "2", "rms_norm", 16384, 4096, v2[:6], copy_gbs, False)

    # 3. small shapes in a CUDA graph: former launch shapes vs the new defaults.
    say("== 3. small shapes, graph us/call (old = ew_mode 1 + IEEE division; new = defaults)")
    old = {"ew_mode": 1, "fp8_div": 1}
    small = [
        ("silu_and_mul", 1, 8192, True),
        ("silu_and_mul", 16, 8192, True),
        ("gelu_and_mul", 1, 8192, True),
        ("static_scaled_fp8_quant", 1, 8192, True),
        ("per_token_group_quant_fp8", 1, 2048, True),
        ("per_token_group_quant_fp8", 128, 8192, True),
        ("dynamic_per_token_scaled_fp8_quant", 1, 4096, True),
        ("rms_norm", 1, 4096, True),
        ("fused_add_rms_norm_static_fp8_quant", 1, 8192, True),
        ("rms_norm", 1, 8192, False),
        ("fused_add_rms_norm", 1, 4096, False),
        ("rms_norm_static_fp8_quant", 1, 4096, False),
        ("silu_and_mul", 128, 8192, False),
        ("silu_and_mul", 1024, 4096, False),
        ("static_scaled_fp8_quant", 1024, 8192, False),
        ("rms_norm", 1024, 4096, False),
    ]
    for name, tokens, hidden, want_ref in small:
        v3 = [("old", old), ("new", {})]
        if name.startswith("rms_norm") or name.startswith("fused_add"):
            v3 += [("c4", {"norm_cpt": 4}), ("c8", {"norm_cpt": 8})]
        if name.endswith("_and_mul") or name.startswith("static"):
            v3 += [("t128", {"ew_threads": 128}), ("t512", {"ew_threads": 512})]
        if name.startswith("per_token_group"):
            v3 += [("cpl1", {"gq_cpl": 1})]
        if name.startswith("dynamic"):
            v3 += [("dq2", {"dq_cpt": 2})]
        run_case(knobs, dl, "3", name, tokens, hidden, v3, copy_gbs, comp and want_ref)

    return finish(out_dir, dl, t0, copy_gbs)


def finish(out_dir: Path, dl: Deadline, t0: float, copy_gbs: float) -> int:
    if dl.skipped:
        say(f"skipped (time budget): {len(dl.skipped)}: " + "; ".join(dl.skipped[:12]))
    say(f"cuda_exp.py done in {time.monotonic() - t0:.0f} s")
    (out_dir / "cuda_exp.txt").write_text("\n".join(LINES) + "\n")
    (out_dir / "cuda_exp.json").write_text(
        json.dumps(dict(copy_gbs=copy_gbs, records=RECORDS, skipped=dl.skipped), indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
