"""``ir bench`` (placeholder until its issue lands: it says so and exits 2)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark every provider over a sweep of shapes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("ir bench: not implemented yet", file=sys.stderr)
    return 2
