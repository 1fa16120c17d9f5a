"""Where the host time of one eager ``ir.ops.rms_norm`` call goes (1x4096
bf16 on the GPU): each piece of the call path timed alone, per call, with
``time.perf_counter`` over many calls (no synchronisation: these are host
costs; calls that launch a kernel are host-bound at this size).

Run on a GPU machine (repo root): ``python3 scripts/gpu/host_parts.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import ir_core as ir
from ir_core.priorities import current_scope

ir.load_providers()


def per_call_us(fn: Callable[[], Any], n: int = 3000, reps: int = 7) -> float:
    for _ in range(200):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
        torch.cuda.synchronize()
    return statistics.median(times)


def main() -> None:
    op = ir.ops.rms_norm
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    rows: list[tuple[str, float]] = []
    for prov in ("cuda", "triton"):
        impl = op.impls[prov]
        assert impl.is_supported()
        rows.append(
            (f"{prov}: impl.fn (provider function)", per_call_us(lambda f=impl.fn: f(x, w, 1e-6)))
        )
        ok = impl.supports_args
        if ok is not None:
            rows.append((f"{prov}: supports_args alone", per_call_us(lambda f=ok: f(x, w, 1e-6))))
        with ir.priority(rms_norm=[prov, "native"]):
            rows.append(
                (f"{prov}: ir.ops.rms_norm (scoped priority)", per_call_us(lambda: op(x, w, 1e-6)))
            )
            scope = current_scope()
            sel = op._select(scope)
            rows.append((f"{prov}: selector alone", per_call_us(lambda f=sel: f(x, w, 1e-6, None))))
    from ir_kernels_cuda import runtime

    d = runtime._direct
    if d is not None:
        rows.append(("cuda: direct binding", per_call_us(lambda: d.rms_norm(x, w, 1e-6, None))))
    rows.append(("cuda: runtime.kernels(x, w) alone", per_call_us(lambda: runtime.kernels(x, w))))
    rows.append(("ir.ops.rms_norm (platform default)", per_call_us(lambda: op(x, w, 1e-6))))
    rows.append(("current_scope()", per_call_us(current_scope)))
    checks = {
        "torch.compiler.is_dynamo_compiling()": torch.compiler.is_dynamo_compiling,
        "torch._C._len_torch_dispatch_stack()": torch._C._len_torch_dispatch_stack,
        "torch._C._len_torch_function_stack()": torch._C._len_torch_function_stack,
        "torch._C._are_functorch_transforms_active()": torch._C._are_functorch_transforms_active,
        "torch.is_grad_enabled()": torch.is_grad_enabled,
    }
    for name, fn in checks.items():
        rows.append((name, per_call_us(fn)))
    rows.append(
        (
            "torch._C._any_requires_grad(x, w)",
            per_call_us(lambda: torch._C._any_requires_grad(x, w)),
        )
    )
    rows.append(("x.shape", per_call_us(lambda: x.shape)))
    rows.append(("x.is_contiguous()", per_call_us(lambda: x.is_contiguous())))
    rows.append(("torch.empty_like(x)", per_call_us(lambda: torch.empty_like(x))))
    rows.append(("x.mul(2)", per_call_us(lambda: x.mul(2))))
    rows.append(("empty python call", per_call_us(lambda: None)))
    print(f"host time per call, {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for name, us in rows:
        print(f"  {name:48s} {us:8.3f} us")


if __name__ == "__main__":
    main()
