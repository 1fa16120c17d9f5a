"""``ir explain OP``: which implementation runs for a call of a given shape, and why."""

from __future__ import annotations

import argparse
from typing import Any

import torch

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}") from None


def parse_shape(text: str) -> tuple[int, int]:
    """``TOKENSxHIDDEN`` (e.g. ``4096x8192``)."""
    try:
        tokens, hidden = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad shape {text!r}; expected TOKENSxHIDDEN, e.g. 4096x8192") from None
    return tokens, hidden


def add_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="which implementation an op call would run, and why")
    p.add_argument("op", help="op name, e.g. rms_norm")
    p.add_argument("--shape", default="16x4096", help="TOKENSxHIDDEN (default 16x4096)")
    p.add_argument("--dtype", default="bfloat16", help="float32, float16 or bfloat16")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if present)")
    p.add_argument(
        "--priority", default=None, help="scoped override, e.g. 'rms_norm=triton,native'"
    )
    p.add_argument("--batch-invariant", action="store_true", help="explain in batch-invariant mode")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib

    from .. import registry
    from ..priorities import batch_invariant, priority
    from ..providers import load_providers

    load_providers()
    op = registry.get(args.op)
    tokens, hidden = parse_shape(args.shape)
    dtype = parse_dtype(args.dtype)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if op.input_generator is None:
        raise ValueError(
            f"op {op.name!r} has no input generator, so ir explain cannot build inputs"
        )
    inputs = op.input_generator(tokens, hidden, dtype, device)
    with contextlib.ExitStack() as stack:
        if args.priority:
            stack.enter_context(priority(args.priority))
        if args.batch_invariant:
            stack.enter_context(batch_invariant())
        print(op.explain(*inputs))
    return 0
