"""``ir check [OP] [--provider P]``: the conformance kit over every provider supported here."""

from __future__ import annotations

import argparse
import unittest
from typing import Any

import torch


def add_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="run the conformance kit on providers supported here")
    p.add_argument("op", nargs="*", help="ops to check (default: all)")
    p.add_argument(
        "--provider", action="append", help="providers to check (repeatable; default: all)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if present)")
    p.add_argument("--dtype", action="append", help="dtypes (repeatable; default fp32, fp16, bf16)")
    p.add_argument("--quick", action="store_true", help="fewer shapes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import registry, testing
    from ..providers import load_providers
    from .explain import parse_dtype

    load_providers()
    ops = registry.ops()
    for name in args.op:
        registry.get(name)  # clear error for unknown ops
    known = registry.registered_providers()
    for p in args.provider or []:
        if p not in known:
            raise ValueError(f"unknown provider {p!r}; registered: {', '.join(sorted(known))}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtypes = [parse_dtype(d) for d in args.dtype] if args.dtype else None
    tokens = (1, 7) if args.quick else None
    hidden = (64,) if args.quick else None
    failures = ran = 0
    for name, op in sorted(ops.items()):
        if args.op and name not in args.op:
            continue
        for provider, impl in sorted(op.impls.items()):
            if provider == "native" or (args.provider and provider not in args.provider):
                continue
            label = f"{name}/{provider}"
            try:
                report = testing.check_impl(
                    op, provider, device=device, dtypes=dtypes, tokens=tokens, hidden=hidden
                )
                line = f"PASS  {report.summary()}"
                if impl.batch_invariant and op.has_reduction:
                    testing.check_batch_invariance(op, provider, device=device)
                    line += "; batch-invariant: proven"
                print(line)
                ran += 1
            except unittest.SkipTest as skip:
                print(f"SKIP  {label}: {skip}")
            except AssertionError as exc:
                failures += 1
                ran += 1
                print(f"FAIL  {exc}")
    if ran == 0:
        print("no provider other than native is supported here; nothing to check")
    return 1 if failures else 0
