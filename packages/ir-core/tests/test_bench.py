"""``ir bench``: rows, JSON, plot, argument errors, and wrong providers flagged.

Sweeps here are tiny (a few tokens x one small hidden size, CPU, few reps)
and name their providers, so the Triton interpreter (on in CI) is never timed.
Nothing asserts a speed: only that measurements exist and are consistent.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

import ir_core as ir
from ir_core.bench import BenchConfig, TimingSpec, bytes_moved, markdown
from ir_core.bench import runner as bench_runner
from ir_core.bench.candidates import COMPILED, candidates_for
from ir_core.bench.progress import Progress
from ir_core.bench.runner import run_bench
from ir_core.cli import main

QUICK = TimingSpec(cpu_blocks=3, cpu_block_ms=0.2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(ops: list[str], providers: list[str] | None, **kw: Any) -> BenchConfig:
    base: dict[str, Any] = dict(
        ops=ops,
        dtype=torch.float32,
        tokens=[1, 3],
        hidden=[64],
        device=torch.device("cpu"),
        providers=providers,
        compiled=False,
        timing=QUICK,
    )
    base.update(kw)
    return BenchConfig(**base)


def test_tiny_sweep_rows_have_every_field() -> None:
    result = run_bench(_config(["rms_norm"], ["torch"]), progress=False)
    assert result.complete
    assert [(r.provider, r.tokens) for r in result.rows] == [
        ("native", 1),
        ("torch F.rms_norm", 1),
        ("native", 3),
        ("torch F.rms_norm", 3),
    ]
    for r in result.rows:
        assert r.status == "ok" and r.correct is True, r
        assert r.time_us is not None and r.time_us > 0
        # x read + out written (tokens x 64 fp32 each) + the weight (64 fp32)
        assert r.bytes == 2 * r.tokens * 64 * 4 + 64 * 4
        assert r.gbps == pytest.approx(r.bytes / (r.time_us * 1e-6) / 1e9)
        assert r.bw_share == pytest.approx(r.bytes / (r.time_us * 1e-6) / result.copy_bw)
        assert r.speedup is not None and r.speedup > 0
    natives = [r for r in result.rows if r.provider == "native"]
    assert all(r.speedup == 1.0 for r in natives)
    assert result.copy_bw > 0
    d = result.to_dict()
    assert set(d["rows"][0]) >= {
        "op",
        "provider",
        "tokens",
        "hidden",
        "dtype",
        "status",
        "time_us",
        "gbps",
        "bw_share",
        "speedup",
        "correct",
        "bytes",
    }


def test_cli_writes_json_plot_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png, md = tmp_path / "b.json", tmp_path / "b.png", tmp_path / "b.md"
    argv = ["bench", "silu_and_mul", "rms_norm", "--tokens", "2,5", "--hidden", "32"]
    argv += ["--provider", "torch", "--cpu-blocks", "3", "--threads", "1", "--no-progress"]
    argv += ["--json", str(js), "--plot", str(png), "--markdown", str(md)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "### silu_and_mul" in out and "### rms_norm" in out and "torch F.rms_norm" in out
    data = json.loads(js.read_text())
    assert data["complete"] is True
    assert data["command"] == ["ir", *argv]
    assert data["device"]["type"] == "cpu" and data["device"]["name"]
    assert (
        data["versions"]["torch"] == torch.__version__
        and data["versions"]["ir_core"] == ir.__version__
    )
    assert data["copy_bandwidth_gbps"] > 0
    assert data["config"]["tokens"] == [2, 5] and data["config"]["hidden"] == [32]
    assert data["config"]["threads"] == 1 and data["config"]["dtype"] == "float32"
    assert len(data["rows"]) == 2 * 1 + 2 * 2  # silu: native; rms_norm: native + F.rms_norm
    assert {r["op"] for r in data["rows"]} == {"silu_and_mul", "rms_norm"}
    # gated activations run at the MLP's intermediate size: d = 3.5 x 32 = 112,
    # rows of 2 x 112 read and 112 written (float32)
    silu = [r for r in data["rows"] if r["op"] == "silu_and_mul"]
    assert {(r["tokens"], r["hidden"], r["bytes"]) for r in silu} == {
        (2, 32, 2 * 3 * 112 * 4),
        (5, 32, 5 * 3 * 112 * 4),
    }
    assert any("3.5 x hidden" in n for n in data["notes"])
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert out == md.read_text() + "\n"
    # CPU: eager timing only, no graph column, graph fields null
    assert data["config"]["timing"] == "eager" and "graph (us)" not in out
    assert all(r["graph_us"] is None and r["graph_gbps"] is None for r in data["rows"])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "no_such_op"], "unknown op 'no_such_op'; available: "),
        (["bench", "rms_norm", "--provider", "nope"], "unknown provider 'nope'; available: "),
        (["bench", "rms_norm", "--dtype", "int7"], "unsupported dtype 'int7'; available: "),
        (["bench", "rms_norm", "--device", "cuda:99"], "available here: cpu"),
        (["bench", "rms_norm", "--device", "mps"], "cpu and cuda devices only"),
        (["bench", "rms_norm", "--device", "warp9"], "unknown device 'warp9'"),
        (["bench", "rms_norm", "--tokens", "x"], "--tokens: 'x' is not an integer"),
        (["bench", "rms_norm", "--threads", "0"], "--threads must be at least 1"),
        (["bench", "rms_norm", "--device", "cpu", "--timing", "graph"], "needs a CUDA device"),
        (["bench", "rms_norm", "--device", "cpu", "--timing", "both"], "use --timing eager"),
    ],
)
def test_bad_arguments_exit_2_with_a_list(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
    if needle.startswith("unknown op"):
        assert "rms_norm" in err and "silu_and_mul" in err
    if needle.startswith("unknown provider"):
        assert "native" in err and "compiled" in err


def _wrong_rms_norm(
    x: torch.Tensor, weight: torch.Tensor | None, epsilon: float, variance_size: int | None = None
) -> torch.Tensor:
    return x * 2  # not an RMS norm


def test_wrong_provider_is_flagged_fail(temp_impl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    name = temp_impl(ir.ops.rms_norm, _wrong_rms_norm)
    result = run_bench(_config(["rms_norm"], [name]), progress=False)
    bad = [r for r in result.rows if r.provider == name]
    assert len(bad) == 2
    for r in bad:
        assert r.status == "FAIL" and r.correct is False
        assert "differs from native" in r.reason
    assert all(r.status == "ok" for r in result.rows if r.provider == "native")
    # the CLI shows it in the table and in JSON, and exits 1
    code = main(
        [
            "bench",
            "rms_norm",
            "--provider",
            name,
            "--tokens",
            "4",
            "--hidden",
            "16",
            "--no-progress",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and f"rms_norm/{name}" in captured.err


_INPLACE_CALLS = {"n": 0}


def _inplace_add_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    _INPLACE_CALLS["n"] += 1
    out, res = ir.ops.fused_add_rms_norm.native(x, x_residual, weight, epsilon, variance_size)
    x_residual.copy_(res)
    x.copy_(out)
    return x, x_residual


def _never(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    raise AssertionError("an unsupported provider must not run")


def _plain(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    return ir.ops.fused_add_rms_norm.native(x, x_residual, weight, epsilon, variance_size)  # type: ignore[no-any-return]


def _more_than_one_row(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return x.shape[0] > 1


def test_unsupported_rejecting_and_inplace_providers(temp_impl: Any) -> None:
    op = ir.ops.fused_add_rms_norm
    _INPLACE_CALLS["n"] = 0
    p_inplace = temp_impl(op, _inplace_add_norm, inplace=True)
    p_off = temp_impl(op, _never, supported=False)
    p_picky = temp_impl(op, _plain, supports_args=_more_than_one_row)
    result = run_bench(
        _config([op.name], [p_inplace, p_off, p_picky, "ghost_provider"]), progress=False
    )
    rows = {(r.provider, r.tokens): r for r in result.rows}
    assert rows[(p_inplace, 1)].status == "ok" and rows[(p_inplace, 3)].status == "ok"
    assert _INPLACE_CALLS["n"] > 4  # timed repeatedly on its private copy
    assert rows[(p_off, 1)].status == "skipped" and "unsupported here" in rows[(p_off, 1)].reason
    assert (
        rows[(p_picky, 1)].status == "skipped"
        and "supports_args rejected" in rows[(p_picky, 1)].reason
    )
    assert rows[(p_picky, 3)].status == "ok" and rows[(p_picky, 3)].time_us
    assert (
        rows[("ghost_provider", 3)].status == "skipped"
        and "not installed" in rows[("ghost_provider", 3)].reason
    )
    assert rows[(p_off, 1)].correct is None and rows[(p_off, 1)].time_us is None


def _boom(x: Tensor) -> Tensor:
    raise RuntimeError("kernel exploded")


def test_raising_provider_and_broken_inputs_are_errors(temp_impl: Any, temp_op_name: str) -> None:
    p = temp_impl(ir.ops.silu_and_mul, _boom)

    def scale2(x: Tensor) -> Tensor:
        return x * 2

    op = ir.register_op(scale2, name=temp_op_name)

    @op.register_input_generator
    def _inputs(tokens: int, hidden: int, dtype: torch.dtype, device: Any) -> tuple[Tensor]:
        if tokens == 3:
            raise MemoryError("too big for this test")
        return (torch.randn(tokens, hidden, dtype=dtype, device=device),)

    result = run_bench(_config(["silu_and_mul", temp_op_name], [p]), progress=False)
    rows = {(r.op, r.provider, r.tokens): r for r in result.rows}
    assert rows[("silu_and_mul", p, 1)].status == "error"
    assert "kernel exploded" in rows[("silu_and_mul", p, 1)].reason
    assert rows[("silu_and_mul", "native", 1)].status == "ok"
    assert rows[(temp_op_name, "native", 1)].status == "ok"
    assert rows[(temp_op_name, "native", 1)].bytes == 2 * 64 * 4  # generic: inputs + outputs
    assert rows[(temp_op_name, p, 1)].status == "skipped"
    broken = rows[(temp_op_name, "native", 3)]
    assert broken.status == "error" and "MemoryError: too big" in broken.reason


def test_compiled_is_listed_last_and_skipped_past_the_budget() -> None:
    labels = [c.label for c in candidates_for(ir.ops.rms_norm, None, True)]
    assert labels[0] == "native" and labels[-1] == COMPILED and "torch F.rms_norm" in labels
    result = run_bench(
        _config(["rms_norm"], ["compiled"], compiled=True, budget_s=0.0), progress=False
    )
    compiled = [r for r in result.rows if r.provider == COMPILED]
    assert len(compiled) == 2
    assert all(r.status == "skipped" and "time budget" in r.reason for r in compiled)
    assert any("time budget" in n for n in result.notes)
    # compiled native runs in a second pass; the rows come back in table order
    assert [(r.tokens, r.provider) for r in result.rows] == [
        (1, "native"),
        (1, COMPILED),
        (3, "native"),
        (3, COMPILED),
    ]


def _fake_graph_timer(calls: list[str]) -> Any:
    """Stands in for the CUDA graph timer on CPU: 2 us per call, except that
    F.rms_norm's capture 'fails'."""

    def timer(fn: Any, device: torch.device) -> float:
        calls.append(str(device))
        fn()  # the callable handed over is the timed one: it must run
        if getattr(fn, "__qualname__", "").startswith("_torch_rms_norm"):
            raise RuntimeError("operation not permitted when stream is capturing")
        return 2e-6

    return timer


def test_graph_timing_fills_its_columns_and_notes_a_failed_capture(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ir_core.bench import sweep as bench_sweep
    from ir_core.bench.plot import write_plot

    calls: list[str] = []
    monkeypatch.setattr(bench_sweep, "time_cuda_graph", _fake_graph_timer(calls))
    result = run_bench(_config(["rms_norm"], ["torch"], timing_mode="both"), progress=False)
    assert len(calls) == 4  # every row, native included
    for r in result.rows:
        assert r.status == "ok" and r.time_us is not None and r.time_us > 0
        # GB/s and the speedup still come from the eager time
        assert r.gbps == pytest.approx(r.bytes / (r.time_us * 1e-6) / 1e9)
        if r.provider == "native":
            assert r.graph_us == pytest.approx(2.0) and r.graph_error == ""
            assert r.graph_gbps == pytest.approx(r.bytes / 2e-6 / 1e9)
        else:
            assert r.graph_us is None and r.graph_gbps is None
            assert "RuntimeError: operation not permitted" in r.graph_error
    d = result.to_dict()
    assert d["config"]["timing"] == "both"
    assert {"graph_us", "graph_gbps", "graph_error"} <= set(d["rows"][0])
    text = markdown(result)
    assert "| graph (us) |" in text and "| time (us) |" in text
    assert "torch F.rms_norm: no graph time on 2 shape(s): capture failed: RuntimeError" in text
    write_plot(result, tmp_path / "g.png")  # dashed graph lines next to the eager ones
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC


def test_graph_only_timing_derives_bandwidth_from_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ir_core.bench import sweep as bench_sweep

    monkeypatch.setattr(bench_sweep, "time_cuda_graph", lambda fn, device: 4e-6)
    result = run_bench(_config(["silu_and_mul"], None, timing_mode="graph"), progress=False)
    native = [r for r in result.rows if r.provider == "native"]
    assert len(native) == 2
    for r in native:
        assert r.time_us is None and r.graph_us == pytest.approx(4.0)
        assert r.gbps == pytest.approx(r.bytes / 4e-6 / 1e9) == pytest.approx(r.graph_gbps)
        assert r.speedup == 1.0
    text = markdown(result)
    assert "| graph (us) |" in text and "| time (us) |" not in text


def test_graph_timer_refuses_a_cpu_device() -> None:
    from ir_core.bench.timing import time_cuda_graph

    with pytest.raises(RuntimeError, match="CUDA graphs need a CUDA device"):
        time_cuda_graph(lambda: None, torch.device("cpu"))


def test_interrupt_keeps_the_rows_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupting(Progress):
        calls = 0

        def step(self, message: str) -> None:
            Interrupting.calls += 1
            if Interrupting.calls == 3:  # Ctrl-C while the third row is being measured
                raise KeyboardInterrupt
            super().step(message)

    monkeypatch.setattr(bench_runner, "Progress", Interrupting)
    result = run_bench(_config(["rms_norm"], ["torch"]), progress=False)
    assert result.complete is False and len(result.rows) == 2
    assert "INCOMPLETE" in markdown(result)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_without_tqdm_and_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    term = _Stream(tty=True)
    bar = Progress(2, stream=term)
    bar.step("first")
    bar.step("second")
    bar.close()
    assert "\rir bench [" in term.getvalue() and "1/2" in term.getvalue()
    log = _Stream(tty=False)
    bar = Progress(100, stream=log)
    for i in range(100):
        bar.step(f"s{i}")
    bar.close()
    lines = log.getvalue().splitlines()
    assert 15 <= len(lines) <= 22 and "\r" not in log.getvalue()
    assert lines[-1] == lines[-1].strip() and "100/100 steps" in lines[-1]


def test_bytes_moved_counts_what_each_op_must_move() -> None:
    torch.manual_seed(0)
    rot = ir.ops.rotary_embedding
    args = rot.input_generator(5, 256, torch.float16, "cpu")
    positions, query, key, _hs, cache, _neox = args
    expected = (
        positions.numel() * 8
        + 5 * cache.shape[-1] * 2  # only the cache rows the positions select
        + 2 * (query.numel() + key.numel()) * 2
    )
    assert bytes_moved(rot, args, rot.native(*args)) == expected
    silu = ir.ops.silu_and_mul
    (x,) = silu.input_generator(3, 16, torch.bfloat16, "cpu")
    assert bytes_moved(silu, (x,), silu.native(x)) == 3 * 32 * 2 + 3 * 16 * 2


def test_stream_column_only_where_measured() -> None:
    from ir_core.bench.timing import stream_time

    result = run_bench(_config(["silu_and_mul"], None), progress=False)
    assert all(r.stream_us is None for r in result.rows)  # CPU: time_us already is a stream
    assert "stream (us)" not in markdown(result)
    for r in result.rows:  # as a GPU run fills it
        r.stream_us = 3.0
    text = markdown(result)
    assert "| stream (us) |" in text and "back-to-back calls" in text
    calls: list[int] = []
    per_call = stream_time(lambda: calls.append(1), "cpu", budget_s=0.002)
    assert per_call > 0 and len(calls) > 5  # warm-up, estimate and 5 samples at least
