"""Host time of one eager Triton-provider call (GPU machine).

For rms_norm, fused_add_rms_norm, silu_and_mul and static_scaled_fp8_quant at
1 x 4096 bf16: back-to-back calls (the kernels take about 2 us, so the time
per call is the host's) of

* the triton impl called directly, with the eager fast launch on and off
  (off: Triton's own launcher, ``JITFunction.run``, as with
  ``IR_TRITON_FAST_LAUNCH=0``);
* ``ir.ops.<op>`` with triton first, fast launch on and off;
* references: the ``cuda`` provider's impl (if loaded) and a bare
  ``torch.empty`` of the output.

Also checks that the fast and the normal launcher give bit-identical results,
and prints a cProfile of the direct fast path of rms_norm.

Usage: python3 scripts/gpu/triton_host_profile.py [--out DIR] [--calls N]
(DIR gets host_profile.md and host_profile.json).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import ir_core as ir
from ir_kernels_triton import _fastlaunch

OPS = ["rms_norm", "fused_add_rms_norm", "silu_and_mul", "static_scaled_fp8_quant"]


def per_call(fn: Any, n: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``n`` back-to-back calls, in us."""
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(times)


def set_fast(on: bool) -> None:
    """The fast path on or off in this process (off: Triton's own launcher)."""
    _fastlaunch._available = None if on else False
    if on:
        _fastlaunch.available()


def _flat(out: Any) -> list[torch.Tensor]:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, torch.Tensor)]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.uint8) if t.element_size() == 1 else t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--calls", type=int, default=2000)
    opts = parser.parse_args()
    n = opts.calls
    ir.load_providers()
    set_fast(True)
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for name in OPS:
        op = getattr(ir.ops, name)
        torch.manual_seed(0)
        args = op.input_generator(1, 4096, torch.bfloat16, "cuda")
        impl = op.impls["triton"]
        assert impl.accepts(*args), f"triton declines {name}"
        row: dict[str, Any] = {"op": name}
        set_fast(True)
        fast_out = impl.fn(*args)
        row["impl_fast_us"] = per_call(lambda: impl.fn(*args), n)  # noqa: B023
        with ir.priority(**{name: ["triton", "native"]}):
            row["ir_ops_fast_us"] = per_call(lambda: op(*args), n)  # noqa: B023
        set_fast(False)
        slow_out = impl.fn(*args)
        row["impl_triton_launcher_us"] = per_call(lambda: impl.fn(*args), n)  # noqa: B023
        with ir.priority(**{name: ["triton", "native"]}):
            row["ir_ops_triton_launcher_us"] = per_call(lambda: op(*args), n)  # noqa: B023
        set_fast(True)
        row["fast_equals_normal"] = all(
            torch.equal(_bits(a), _bits(b))
            for a, b in zip(_flat(fast_out), _flat(slow_out), strict=True)
        )
        cuda = op.impls.get("cuda")
        if cuda is not None and cuda.accepts(*args):
            row["cuda_impl_us"] = per_call(lambda: cuda.fn(*args), n)  # noqa: B023
        x = args[0]
        row["torch_empty_us"] = per_call(
            lambda: torch.empty(x.shape, dtype=x.dtype, device=x.device),  # noqa: B023
            n,
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    stats = _fastlaunch.stats()
    print("fast launch:", stats)

    rms = ir.ops.rms_norm
    rargs = rms.input_generator(1, 4096, torch.bfloat16, "cuda")
    tri = rms.impls["triton"].fn
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        tri(*rargs)
    torch.cuda.synchronize()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    profile_text = buf.getvalue()
    print(profile_text)

    cols = [
        ("impl_fast_us", "impl, fast launch"),
        ("impl_triton_launcher_us", "impl, Triton launcher"),
        ("ir_ops_fast_us", "ir.ops, fast launch"),
        ("ir_ops_triton_launcher_us", "ir.ops, Triton launcher"),
        ("cuda_impl_us", "cuda impl"),
        ("torch_empty_us", "torch.empty"),
    ]
    lines.append(f"Per call, us ({n} back-to-back calls, median of 5 rounds), 1 x 4096 bf16.\n")
    lines.append("| op | " + " | ".join(c[1] for c in cols) + " | fast == normal |")
    lines.append("|---" * (len(cols) + 2) + "|")
    for r in rows:
        cells = [f"{r[k]:.2f}" if k in r else "-" for k, _ in cols]
        lines.append(f"| {r['op']} | " + " | ".join(cells) + f" | {r['fast_equals_normal']} |")
    lines.append(f"\nfast launch: {stats}\n")
    lines.append("cProfile, triton rms_norm impl, fast launch:\n\n```\n" + profile_text + "```")
    table = "\n".join(lines)
    print(table)
    if opts.out is not None:
        opts.out.mkdir(parents=True, exist_ok=True)
        (opts.out / "host_profile.md").write_text(table + "\n")
        payload = {"rows": rows, "fast_launch": stats, "device": torch.cuda.get_device_name()}
        (opts.out / "host_profile.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
