"""``ir tune [OP ...]``: measure every provider per shape bucket and write a
tuned priority file (``ir.load_priority(path)`` / ``IR_OP_PRIORITY_FILE``).

``--compare FILE`` instead times dispatch with FILE applied against fixed
priorities and prints (or writes, ``--md``/``--json``) the comparison.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from .explain import parse_dtype


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"expected non-negative integers, got {text!r}")
    return values


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tune", help="measure providers per shape bucket and write a priority file")
    p.add_argument(
        "ops",
        nargs="*",
        metavar="OP",
        help="ops to tune (default: every op with an input generator)",
    )
    p.add_argument("--out", default=None, help="output JSON (default: ir-tune-<device>.json)")
    p.add_argument(
        "--tokens",
        default=None,
        help="token counts, e.g. 1,16,128,1024 (default: CPU 1,16,128; "
        "GPU 1,16,128,1024,4096,16384)",
    )
    p.add_argument(
        "--hidden",
        default=None,
        help="hidden sizes, e.g. 2048,4096 (default: CPU 64,256; GPU 2048,4096,8192)",
    )
    p.add_argument("--dtype", default="bfloat16", help="dtypes, comma-separated (default bfloat16)")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if present)")
    p.add_argument(
        "--providers", default=None, help="only these providers, e.g. cuda,triton,native"
    )
    p.add_argument(
        "--no-check", action="store_true", help="do not compare outputs with native before timing"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=0.02,
        help="seconds of timing per provider (or configuration) and shape, spread over 3 interleaved rounds (default 0.02)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="a provider must be this much faster (relative) than the one the untuned priority "
        "runs first to replace it in a bucket (default 0.05); stored in the file",
    )
    p.add_argument(
        "--compare",
        default=None,
        metavar="FILE",
        help="time dispatch with FILE applied vs each --fixed priority instead of tuning",
    )
    p.add_argument(
        "--fixed",
        default="cuda,native;triton,native;native",
        help="fixed priorities for --compare, ';'-separated (default 'cuda,native;triton,native;native')",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --compare: interleaved timing rounds per shape, each configuration keeping "
        "its best (default 3; more rounds steady host-bound shapes)",
    )
    p.add_argument("--md", default=None, help="with --compare: write a markdown table here")
    p.add_argument(
        "--json", dest="json_out", default=None, help="with --compare: write the rows as JSON here"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-shape progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..tuning import measure
    from ..tuning.table import device_key

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type != "cpu"
    tokens = (
        _ints(args.tokens)
        if args.tokens
        else ([1, 16, 128, 1024, 4096, 16384] if gpu else [1, 16, 128])
    )
    hidden = _ints(args.hidden) if args.hidden else ([2048, 4096, 8192] if gpu else [64, 256])
    dtypes = [parse_dtype(d.strip()) for d in args.dtype.split(",") if d.strip()]
    providers = [p.strip() for p in args.providers.split(",")] if args.providers else None

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    if args.compare:
        if args.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {args.rounds}")
        fixed = [
            tuple(p.strip() for p in group.split(",") if p.strip())
            for group in args.fixed.split(";")
            if group.strip()
        ]
        rows = measure.compare(
            args.compare,
            args.ops or None,
            tokens=tokens,
            hidden=hidden,
            dtypes=dtypes,
            device=device,
            fixed=fixed,
            budget_s=args.budget,
            rounds=args.rounds,
            progress=progress,
        )
        key = device_key(device)
        text = measure.compare_markdown(
            rows, title=f"Tuned vs fixed priorities on {key['name']} (dispatch time per call, us)"
        )
        if args.md:
            with open(args.md, "w") as fh:
                fh.write(text)
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump({"device": key, "file": args.compare, "rows": rows}, fh, indent=1)
        print(text)
        return 0

    data = measure.tune(
        args.ops or None,
        tokens=tokens,
        hidden=hidden,
        dtypes=dtypes,
        device=device,
        providers=providers,
        check=not args.no_check,
        budget_s=args.budget,
        **({} if args.margin is None else {"margin": args.margin}),
        progress=progress,
    )
    out = (
        args.out
        or "ir-tune-"
        + re.sub(r"[^a-z0-9]+", "-", data["device"]["name"].lower()).strip("-")
        + ".json"
    )
    with open(out, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    timed = sum(1 for e in data["entries"] if e["times_us"])
    print(
        f"ir tune: {timed}/{len(data['entries'])} shapes timed on {data['device']['name']}; wrote {out}",
        file=sys.stderr,
    )
    print(
        f"apply with: ir_core.load_priority({out!r})  or  IR_OP_PRIORITY_FILE={out}",
        file=sys.stderr,
    )
    return 0
