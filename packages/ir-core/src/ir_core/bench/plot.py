"""``--plot``: GB/s against tokens, one line per provider, one panel per op and hidden size
(dashed: the same provider's GB/s inside a CUDA graph, when both timings ran)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import BenchResult


def write_plot(result: BenchResult, path: str | Path) -> None:
    """Write a PNG (matplotlib, Agg backend). Wrong outputs (FAIL) are drawn
    as red crosses, never as part of a provider's line. Raises ImportError
    with an install hint when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'ir-core[bench]'") from exc

    ops = list(dict.fromkeys(r.op for r in result.rows))
    hiddens = sorted({r.hidden for r in result.rows})
    labels = list(dict.fromkeys(r.provider for r in result.rows))
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    fig, axes = plt.subplots(
        len(ops),
        len(hiddens),
        figsize=(4.2 * len(hiddens), 3.0 * len(ops)),
        squeeze=False,
        sharex=True,
    )
    copy_gbps = result.copy_bw / 1e9
    # solid lines: GB/s from the eager time (or the graph time when only that
    # ran); dashed: GB/s from the graph time, drawn when both ran
    both_timings = result.config.get("timing", "eager") == "both"
    for i, op in enumerate(ops):
        for j, hidden in enumerate(hiddens):
            ax = axes[i][j]
            rows = [
                r for r in result.rows if r.op == op and r.hidden == hidden and r.gbps is not None
            ]
            drew_graph = False
            for label in labels:
                good = sorted(
                    (r.tokens, r.gbps) for r in rows if r.provider == label and r.status == "ok"
                )
                bad = [
                    (r.tokens, r.gbps) for r in rows if r.provider == label and r.status == "FAIL"
                ]
                if good:
                    ax.plot(
                        *zip(*good, strict=True), marker="o", ms=3, color=colors[label], label=label
                    )
                in_graph = sorted(
                    (r.tokens, r.graph_gbps)
                    for r in rows
                    if r.provider == label and r.status == "ok" and r.graph_gbps is not None
                )
                if in_graph and both_timings:
                    drew_graph = True
                    ax.plot(*zip(*in_graph, strict=True), ls="--", lw=0.9, color=colors[label])
                if bad:
                    ax.plot(
                        *zip(*bad, strict=True), "x", color="red", ms=7, label=f"{label} (FAIL)"
                    )
            if drew_graph:
                ax.plot([], [], ls="--", color="gray", lw=0.9, label="dashed: in a CUDA graph")
            if copy_gbps:
                ax.axhline(copy_gbps, color="gray", ls="--", lw=0.8, label="copy bandwidth")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{op}, hidden {hidden}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("GB/s", fontsize=8)
            if i == len(ops) - 1:
                ax.set_xlabel("tokens", fontsize=8)
            if rows:
                ax.legend(fontsize=6, loc="upper left")
    d = result.device
    fig.suptitle(f"ir bench: {d['name']}, {result.config['dtype']}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
