"""The benchmark's results: one Markdown table per op, and the JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sweep import Row

SCHEMA = "ir-bench/1"


@dataclass
class BenchResult:
    """Everything one ``ir bench`` run produced."""

    rows: list[Row]
    device: dict[str, Any]
    versions: dict[str, Any]
    config: dict[str, Any]
    copy_bw: float
    command: list[str]
    elapsed_s: float = 0.0
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "complete": self.complete,
            "command": self.command,
            "device": self.device,
            "versions": self.versions,
            "config": self.config,
            "copy_bandwidth_gbps": self.copy_bw / 1e9,
            "elapsed_s": round(self.elapsed_s, 2),
            "notes": self.notes,
            "rows": [r.to_dict() for r in self.rows],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _check(row: Row) -> str:
    if row.status == "ok":
        return "ok"
    return f"{row.status}: {row.reason}"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]
) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if r else c.ljust(w)
                for c, w, r in zip(cells, widths, right, strict=True)
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return [line(header), rule, *(line(r) for r in rows)]


def always_skipped(rows: Sequence[Row]) -> dict[str, str]:
    """Candidates skipped on every row for one and the same reason: label -> reason."""
    by_label: dict[str, list[Row]] = {}
    for r in rows:
        by_label.setdefault(r.provider, []).append(r)
    return {
        label: rs[0].reason
        for label, rs in by_label.items()
        if all(r.status == "skipped" for r in rs) and len({r.reason for r in rs}) == 1
    }


def graph_failures(rows: Sequence[Row]) -> list[str]:
    """One line per (candidate, reason) whose CUDA graph capture failed."""
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.graph_error:
            seen[(r.provider, r.graph_error)] = seen.get((r.provider, r.graph_error), 0) + 1
    return [
        f"- {label}: no graph time on {n} shape(s): capture failed: {reason}"
        for (label, reason), n in sorted(seen.items())
    ]


def op_table(
    op: str,
    rows: Sequence[Row],
    hidden_labels: Sequence[str] = (),
    *,
    eager: bool = True,
    graph: bool = False,
) -> list[str]:
    """The Markdown lines of one op's table. A candidate skipped on every
    shape for one reason is listed once below the table instead; those in
    ``hidden_labels`` (reported once for the whole run) are left out.
    ``eager``/``graph``: which time columns to show."""
    rows = [r for r in rows if r.provider not in hidden_labels]
    collapsed = always_skipped(rows)
    columns: list[tuple[str, bool, Any]] = [
        ("tokens", True, lambda r: str(r.tokens)),
        ("hidden", True, lambda r: str(r.hidden)),
        ("provider", False, lambda r: r.provider),
    ]
    if eager:
        columns.append(("time (us)", True, lambda r: _fmt(r.time_us, ".1f")))
    if eager and any(r.stream_us is not None for r in rows):
        columns.append(("stream (us)", True, lambda r: _fmt(r.stream_us, ".1f")))
    if graph:
        columns.append(("graph (us)", True, lambda r: _fmt(r.graph_us, ".1f")))
    columns += [
        ("GB/s", True, lambda r: _fmt(r.gbps, ".1f")),
        (
            "% copy BW",
            True,
            lambda r: _fmt(None if r.bw_share is None else 100 * r.bw_share, ".0f"),
        ),
        ("vs native", True, lambda r: "-" if r.speedup is None else f"{r.speedup:.2f}x"),
        ("check", False, _check),
    ]
    header = [c[0] for c in columns]
    right = [c[1] for c in columns]
    cells = [[c[2](r) for c in columns] for r in rows if r.provider not in collapsed]
    out = [f"### {op}", "", *_table(header, cells, right)]
    notes = [
        f"- {label}: skipped on every shape: {reason}"
        for label, reason in sorted(collapsed.items())
    ]
    if graph:
        notes += graph_failures([r for r in rows if r.provider not in collapsed])
    if notes:
        out += ["", *notes]
    fails = sorted({r.provider for r in rows if r.status == "FAIL"})
    if fails:
        out += [
            "",
            f"**FAIL**: {', '.join(fails)} gave outputs outside {op}'s tolerance (see the check column).",
        ]
    return out


def markdown(result: BenchResult) -> str:
    """The whole report: header, then one table per op."""
    d, v = result.device, result.versions
    cap = f", capability {d['capability']}" if d.get("capability") else ""
    head = [
        f"## ir bench: {d['name']} ({d['type']}{cap})",
        "",
        f"torch {v['torch']}, triton {v['triton']}, ir-core {v['ir_core']}; "
        f"dtype {result.config['dtype']}; copy bandwidth {result.copy_bw / 1e9:.1f} GB/s "
        f"(read + write); {result.elapsed_s:.0f} s"
        + ("" if result.complete else "; INCOMPLETE (interrupted)"),
        "",
        "time: median; GB/s: bytes the op must move / time; % copy BW: share of the copy bandwidth; "
        "vs native: speedup over eager native; check: output against native within the op's tolerance. "
        "Providers are called directly (not through dispatch); inplace ones are timed on a private copy "
        "of the inputs that each call overwrites (no clone in the timed region).",
    ]
    mode = result.config.get("timing", "eager")
    eager, graph = mode in ("eager", "both"), mode in ("graph", "both")
    if eager and any(r.stream_us is not None for r in result.rows):
        head += [
            "",
            "stream (us): time per call of back-to-back calls on the same inputs (CUDA events around "
            "the calls, no flush), as an eager program runs them: the host's launch cost where it "
            "exceeds the kernel's time (small shapes), the device time otherwise.",
        ]
    if graph:
        head += [
            "",
            "graph (us): device time per call inside a CUDA graph (up to 50 back-to-back calls on "
            "the same inputs captured once, up to 30 replays timed with CUDA events, median / "
            "calls): no "
            "host launch overhead and no L2 flush between calls: the device time of the call's kernels, "
            "with small inputs read from L2. "
            + (
                "GB/s, % copy BW and vs native come from the eager time (graph GB/s: `graph_gbps` "
                "in the JSON)."
                if eager
                else "GB/s, % copy BW and vs native come from the graph time."
            ),
        ]
    head += [f"- {n}" for n in result.notes]
    everywhere = always_skipped(result.rows)
    head += [
        f"- {label}: not timed on any op: {reason}" for label, reason in sorted(everywhere.items())
    ]
    ops: dict[str, list[Row]] = {}
    for r in result.rows:
        ops.setdefault(r.op, []).append(r)
    body: list[str] = []
    for op, rows in ops.items():
        body += ["", *op_table(op, rows, list(everywhere), eager=eager, graph=graph)]
    return "\n".join(head + body) + "\n"


def failures(rows: Sequence[Row]) -> list[Row]:
    """Rows whose output was wrong or whose call raised."""
    return [r for r in rows if r.status in ("FAIL", "error")]
