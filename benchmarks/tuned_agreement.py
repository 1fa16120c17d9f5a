"""Which buckets of a tuned priority file change the untuned choice?

Reads a file written by ``ir tune`` (no GPU needed), ranks every measured
bucket as dispatch does (:func:`ir_core.tuning.table.rank`, the file's margin)
against a default priority, and prints the buckets whose first provider differs.
An op with none runs its untuned selector under the file (no per-call cost).

Run: ``uv run python benchmarks/tuned_agreement.py FILE [--prefer cuda,triton,native]``.
"""

from __future__ import annotations

import argparse
import json

from ir_core.tuning import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--prefer", default="cuda,triton,native", help="the untuned priority")
    args = parser.parse_args()
    prefer = tuple(p.strip() for p in args.prefer.split(",") if p.strip())
    with open(args.file) as fh:
        tuned = table.parse(json.load(fh), path=args.file)
    for name, op in sorted(tuned.ops.items()):
        changed = []
        for (dtype, hidden), buckets in sorted(op.measured.items(), key=lambda kv: kv[0][1]):
            for _, (scores, tokens) in sorted(buckets.items()):
                ranked = table.rank(scores, prefer, op.margin)
                if ranked[0] != prefer[0]:
                    changed.append(
                        f"{table.dtype_name(dtype)} tokens {','.join(map(str, tokens))} x hidden {hidden}: {ranked[0]}"
                    )
        total = sum(len(b) for b in op.measured.values())
        verdict = "agrees with the default everywhere" if not changed else f"{len(changed)} change"
        print(f"{name}: {total} measured buckets, margin {op.margin}: {verdict}")
        for line in changed:
            print(f"    {line}")


if __name__ == "__main__":
    main()
