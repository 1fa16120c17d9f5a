"""Tuned priorities (issue 10): ``ir tune``, the file, per-bucket dispatch.

Dispatch tests use two test providers and a hand-written ("faked") timing
table, so which provider wins per bucket is deterministic.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import ir_core as ir
from ir_core.cli import main
from ir_core.tuning import Bucket, TuningFileError, bucket_for, table
from ir_core.tuning.measure import compare, compare_markdown, tune

OP = ir.ops.rms_norm
EPS = 1e-6


@pytest.fixture(autouse=True)
def _no_tuned_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(table.ENV_PRIORITY_FILE, raising=False)
    monkeypatch.delenv(table.ENV_ON_MISMATCH, raising=False)
    table.reset()
    yield
    table.reset()


@pytest.fixture
def providers(temp_impl: Any) -> tuple[str, str, list[str]]:
    """Two correct test providers of rms_norm that record their calls."""
    calls: list[str] = []

    def make(tag: str) -> Any:
        def impl(x, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
            calls.append(tag)
            return OP.native(x, weight, epsilon, variance_size)

        return impl

    a = temp_impl(OP, make("a"), provider="tune_a")
    b = temp_impl(OP, make("b"), provider="tune_b")
    return a, b, calls


def _entry(
    tokens: int, hidden: int, times: dict[str, float], dtype: str = "float32"
) -> dict[str, Any]:
    return {"op": "rms_norm", "dtype": dtype, "hidden": hidden, "tokens": tokens, "times_us": times}


def fake_file(path: Path, entries: list[dict[str, Any]], **overrides: Any) -> str:
    """A tuned file for this machine with the given (faked) timings."""
    names = {p for e in entries for p in e["times_us"]}
    data = {
        "format": table.FORMAT,
        "version": table.FORMAT_VERSION,
        "device": table.device_key(),
        "providers": {"rms_norm": {p: table.provider_key(OP, p) for p in sorted(names)}},
        "entries": entries,
    }
    data.update(overrides)
    path.write_text(json.dumps(data))
    return str(path)


# a is fastest at 1 token, b from 64 tokens on (hidden 64, float32)
SMALL_A_LARGE_B = [
    _entry(1, 64, {"tune_a": 1.0, "tune_b": 2.0, "native": 3.0}),
    _entry(64, 64, {"tune_a": 5.0, "tune_b": 2.0, "native": 3.0}),
]


def _call(tokens: int, hidden: int = 64, dtype: torch.dtype = torch.float32) -> tuple[Any, ...]:
    return (torch.randn(tokens, hidden, dtype=dtype), torch.randn(hidden, dtype=dtype), EPS)


# ------------------------------------------------------------ buckets


def test_bucket_for_concrete_shapes() -> None:
    x = torch.randn(5, 64)
    assert bucket_for(OP, (x, None, EPS, None)) == Bucket(torch.float32, 64, 3, 3)
    assert bucket_for(OP, (torch.randn(2, 8, 64), None, EPS, None)).lo == 5  # 16 tokens
    assert bucket_for(OP, (torch.randn(0, 64), None, EPS, None)).lo == 0
    assert bucket_for(OP, (torch.randn(4, 0), None, EPS, None)) is None
    assert bucket_for(OP, (torch.tensor(1.0), None, EPS, None)) is None
    # silu_and_mul buckets by its input width (2 * d)
    assert bucket_for(ir.ops.silu_and_mul, (torch.randn(3, 128),)).hidden == 128


def _fake_dynamic(tokens: int, hidden: int) -> tuple[Any, Any]:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

    mode = FakeTensorMode(shape_env=ShapeEnv())
    ctx = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC, DimDynamic.STATIC])
    return mode, mode.from_tensor(torch.randn(tokens, hidden), symbolic_context=ctx)


def test_bucket_for_symbolic_tokens_is_a_range() -> None:
    _, fx = _fake_dynamic(8, 64)
    assert isinstance(fx.shape[0], torch.SymInt)
    b = bucket_for(OP, (fx, None, EPS, None))
    assert b is not None and b.hidden == 64 and b.lo <= 2 and b.hi == 63 and not b.concrete


# --------------------------------------------------------- tune / file


def test_tune_writes_a_versioned_file(tmp_path: Path, temp_impl: Any) -> None:
    good = temp_impl(
        OP,
        lambda x, weight, epsilon, variance_size=None: OP.native(x, weight, epsilon, variance_size),
    )
    wrong = temp_impl(OP, lambda x, weight, epsilon, variance_size=None: x * 0 + 7)
    data = tune(
        ["rms_norm"],
        tokens=[1, 8],
        hidden=[32],
        dtypes=[torch.float32],
        providers=["native", good, wrong],
        budget_s=0.001,
    )
    assert data["format"] == "ir-tune" and data["version"] == table.FORMAT_VERSION
    assert data["device"] == table.device_key()
    assert data["providers"]["rms_norm"]["native"] == {
        "package": "ir-core",
        "version": ir.__version__,
    }
    assert set(data["providers"]["rms_norm"]) == {"native", good}
    assert [(e["tokens"], e["hidden"], e["dtype"]) for e in data["entries"]] == [
        (1, 32, "float32"),
        (8, 32, "float32"),
    ]
    for e in data["entries"]:
        assert set(e["times_us"]) == {"native", good} and all(v > 0 for v in e["times_us"].values())
        assert "wrong result" in e["skipped"][wrong]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    loaded = ir.load_priority(path)
    assert loaded is not None and set(loaded.ops) == {"rms_norm"}


def test_cli_tune_writes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.json"
    code = main(
        [
            "tune",
            "silu_and_mul",
            "--tokens",
            "1,4",
            "--hidden",
            "16",
            "--dtype",
            "float32",
            "--budget",
            "0.001",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert {e["hidden"] for e in data["entries"]} == {32}  # silu_and_mul input is 2 * hidden wide
    assert all("native" in e["times_us"] for e in data["entries"])
    assert "wrote" in capsys.readouterr().err


def test_malformed_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TuningFileError, match="not valid JSON"):
        ir.load_priority(bad)
    bad.write_text(json.dumps({"format": "ir-tune", "version": 99}))
    with pytest.raises(TuningFileError, match="version 99"):
        ir.load_priority(bad)
    with pytest.raises(TuningFileError, match="cannot be read"):
        ir.load_priority(tmp_path / "missing.json")


# ------------------------------------------------------------ dispatch


def test_load_applies_per_bucket(tmp_path: Path, providers: Any) -> None:
    _, _, calls = providers
    ir.load_priority(fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    expected = {1: "a", 2: "a", 3: "a", 64: "b", 100: "b", 5000: "b"}
    for tokens, tag in expected.items():
        calls.clear()
        out = OP(*_call(tokens))
        assert calls == [tag], tokens
        assert out.shape == (tokens, 64)
    # a hidden size without a row uses the nearest measured one
    calls.clear()
    OP(*_call(1, hidden=80))
    OP(*_call(200, hidden=80))
    assert calls == ["a", "b"]
    # ... but not one more than a factor of 2 away: untuned (native on CPU)
    assert OP.dispatch(*_call(1, hidden=129)).provider == "native"
    assert OP.dispatch(*_call(1, hidden=32)).provider == "tune_a"
    # a dtype without a row: the untuned (platform) priority, native on CPU
    calls.clear()
    assert OP.dispatch(*_call(1, dtype=torch.float16)).provider == "native"
    OP(*_call(1, dtype=torch.float16))
    assert calls == []


def test_hot_path_agrees_with_choose(tmp_path: Path, providers: Any) -> None:
    """The generated bucket selector and Resolution.choose (what the lowering
    pass calls) pick the same provider for every shape, on a shape's first call
    (bucket computed) and on later ones (looked up by shape)."""
    _, _, calls = providers
    entries = [
        *SMALL_A_LARGE_B,
        _entry(16, 256, {"tune_b": 1.0, "tune_a": 2.0}),
        _entry(4096, 256, {"tune_a": 1.0, "tune_b": 2.0}),
    ]
    ir.load_priority(fake_file(tmp_path / "t.json", entries))
    tags = {"tune_a": "a", "tune_b": "b", "native": None}
    for hidden in (64, 100, 256, 1000):
        for tokens in (0, 1, 3, 9, 31, 64, 300, 2000, 4096, 9000):
            args = (*_call(tokens, hidden), None)
            chosen = OP.resolution().choose(args).provider
            for attempt in range(2):
                calls.clear()
                OP(*args)
                assert calls == ([tags[chosen]] if tags[chosen] else []), (hidden, tokens, attempt)


def test_fake_tensors_get_the_same_choice(tmp_path: Path, providers: Any) -> None:
    ir.load_priority(fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        small = (torch.empty(1, 64), torch.empty(64), EPS, None)
        large = (torch.empty(512, 64), torch.empty(64), EPS, None)
        assert OP.resolution().choose(small).provider == "tune_a"
        assert OP.resolution().choose(large).provider == "tune_b"
    del mode
    # symbolic token count over [2, inf): buckets disagree -> untuned priority
    _, fx = _fake_dynamic(8, 64)
    assert OP.resolution().choose((fx, None, EPS, None)).provider == "native"
    # ... unless every bucket agrees
    ir.load_priority(
        fake_file(tmp_path / "u.json", [_entry(1, 64, {"tune_b": 1.0, "tune_a": 2.0})])
    )
    assert OP.resolution().choose((fx, None, EPS, None)).provider == "tune_b"


def test_scoped_and_process_priorities_win(tmp_path: Path, providers: Any) -> None:
    a, b, calls = providers
    ir.load_priority(fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    with ir.priority(rms_norm=["native"]):
        assert OP.dispatch(*_call(1)).provider == "native"
    with ir.priority({"*": [b, "native"]}):
        assert OP.dispatch(*_call(1)).provider == b
    ir.set_priority({"rms_norm": [b, "native"]})
    assert OP.dispatch(*_call(1)).provider == b
    ir.set_priority(None)
    ir.set_priority({"silu_and_mul": ["native"]})  # another op: the table still applies
    assert OP.dispatch(*_call(1)).provider == a
    # batch-invariant mode: no tuned provider (nor native) claims invariance, refused naming the file
    with (
        ir.batch_invariant(),
        pytest.raises(ir.NoImplementationError, match=r"batch-invariant.*from tuned"),
    ):
        OP.dispatch(*_call(1))
    calls.clear()
    OP(*_call(1))
    assert calls == ["a"]


def test_explain_shows_the_tuned_choice(tmp_path: Path, providers: Any) -> None:
    path = fake_file(tmp_path / "t.json", SMALL_A_LARGE_B)
    ir.load_priority(path)
    e = OP.explain(*_call(5000))
    assert e.chosen == "tune_b" and e.priority[0] == "tune_b"
    assert (
        e.source.startswith(f"tuned {path}")
        and "hidden 64" in e.source
        and "measured at tokens 64" in e.source
    )
    text = str(OP.explain(*_call(1)))
    assert "-> tune_a" in text and "tuned" in text


def test_ops_without_a_table_pay_nothing(tmp_path: Path, providers: Any) -> None:
    """Eager cost: an op with no tuned table (or one overridden by an explicit
    priority) gets exactly its plain selector, here the implementation itself."""
    from ir_core.priorities import current_scope

    ir.load_priority(fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    silu = ir.ops.silu_and_mul
    assert silu._select(current_scope()) is silu.native
    with ir.priority(rms_norm=["tune_b"]):
        assert OP._select(current_scope()) is OP.impls["tune_b"].fn
    assert OP._select(current_scope()).__name__ == "select"  # the bucket selector


def test_unload_and_fingerprint(tmp_path: Path, providers: Any) -> None:
    from ir_core.tuning import fingerprint

    assert fingerprint() == ""
    ir.load_priority(fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    first = fingerprint()
    assert OP.dispatch(*_call(1)).provider == "tune_a"
    ir.load_priority(fake_file(tmp_path / "u.json", SMALL_A_LARGE_B[:1]))
    assert fingerprint() not in ("", first)
    ir.load_priority(None)
    assert fingerprint() == ""
    assert OP.dispatch(*_call(1)).provider == "native"


# ------------------------------------------------------------ mismatch


def test_other_device_is_refused_or_warned(
    tmp_path: Path, providers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    other = {"platform": "cuda", "name": "NVIDIA H100 80GB HBM3", "capability": [9, 0]}
    path = fake_file(tmp_path / "t.json", SMALL_A_LARGE_B, device=other)
    with pytest.raises(TuningFileError, match=r"does not match this machine.*H100"):
        ir.load_priority(path)
    assert OP.dispatch(*_call(1)).provider == "native"
    ir.load_priority(fake_file(tmp_path / "ok.json", SMALL_A_LARGE_B))  # a good one first...
    with caplog.at_level(logging.WARNING, logger="ir_core"):
        assert ir.load_priority(path, on_mismatch="warn") is None
    assert "does not match" in caplog.text and "ignored" in caplog.text
    assert OP.dispatch(*_call(1)).provider == "native"  # ...is not kept either


def test_other_provider_versions_are_refused(tmp_path: Path, providers: Any) -> None:
    path = tmp_path / "t.json"
    fake_file(path, SMALL_A_LARGE_B)
    data = json.loads(path.read_text())
    data["providers"]["rms_norm"]["native"]["version"] = "0.0.1"
    data["providers"]["rms_norm"]["tune_gone"] = {"package": "ir-kernels-gone", "version": "1.0"}
    path.write_text(json.dumps(data))
    with pytest.raises(TuningFileError) as info:
        ir.load_priority(path)
    assert "rms_norm/native: made with ir-core 0.0.1" in str(info.value)
    assert "rms_norm/tune_gone" in str(info.value) and "not installed" in str(info.value)
    with pytest.raises(ValueError, match="on_mismatch"):
        ir.load_priority(path, on_mismatch="ignore")


# ---------------------------------------------------------- environment


def test_env_var_applies_and_mismatch_raises(
    tmp_path: Path, providers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(table.ENV_PRIORITY_FILE, fake_file(tmp_path / "t.json", SMALL_A_LARGE_B))
    table.reset()
    assert OP.dispatch(*_call(1)).provider == "tune_a"
    assert OP.dispatch(*_call(100)).provider == "tune_b"
    other = {"platform": "rocm", "name": "AMD Instinct MI300X", "capability": [9, 4]}
    monkeypatch.setenv(
        table.ENV_PRIORITY_FILE, fake_file(tmp_path / "o.json", SMALL_A_LARGE_B, device=other)
    )
    table.reset()
    with pytest.raises(TuningFileError, match=r"MI300X.*IR_OP_PRIORITY_FILE_ON_MISMATCH=warn"):
        OP(*_call(1))
    monkeypatch.setenv(table.ENV_ON_MISMATCH, "warn")
    table.reset()
    assert OP.dispatch(*_call(1)).provider == "native"


# ------------------------------------------------------------- compare


def test_compare_rows_and_markdown(tmp_path: Path, providers: Any) -> None:
    path = fake_file(
        tmp_path / "t.json", [_entry(1, 64, {"tune_b": 1.0, "tune_a": 2.0, "native": 3.0})]
    )
    rows = compare(
        path,
        ["rms_norm"],
        tokens=[1],
        hidden=[64],
        dtypes=[torch.float32],
        fixed=[("tune_a", "native"), ("native",)],
        budget_s=0.001,
    )
    assert len(rows) == 1
    assert rows[0]["tuned_provider"] == "tune_b"
    assert rows[0]["fixed_provider"] == {"tune_a,native": "tune_a", "native": "native"}
    text = compare_markdown(rows, title="t")
    assert "| rms_norm | float32 | 1 | 64 |" in text and "at " in text and "/1 shapes" in text


def test_time_interleaved_takes_each_candidates_best_round() -> None:
    import contextlib
    import time

    from ir_core.bench.timing import best_of_rounds

    entered: list[str] = []
    slow_rounds = {"n": 0}

    @contextlib.contextmanager
    def scope() -> Any:
        entered.append("b")
        yield

    def a() -> None:
        pass

    def b() -> None:  # slow only during its first round
        if slow_rounds["n"] < 8:  # one round: 2 warm-up, 1 estimate, 5 samples
            slow_rounds["n"] += 1
            time.sleep(0.001)

    best = best_of_rounds([("a", a, None), ("b", b, scope)], "cpu", budget_s=0.006, rounds=3)
    assert set(best) == {"a", "b"}
    assert len(entered) == 3  # the scope wraps each round's timing, not each call
    assert best["b"] < 500e-6  # the slow first round (>= 1 ms a call) did not decide


# --------------------------------------------------- margin and agreement


def test_rank_keeps_the_untuned_first_choice_within_the_margin() -> None:
    scores = {"a": 1.04, "b": 1.0, "native": 9.0}
    assert table.rank(scores, ("a", "b", "native"), 0.05) == ("a", "b", "native")
    assert table.rank(scores, ("a", "b", "native"), 0.03) == ("b", "a", "native")
    assert table.rank(scores, (), 0.05) == ("b", "a", "native")
    # only the first measured provider of the untuned priority may keep its place
    assert table.rank(scores, ("x", "native", "a"), 0.05) == ("b", "a", "native")


@pytest.fixture
def default_a_then_b(providers: Any) -> Iterator[Any]:
    """A platform whose untuned priority for rms_norm is tune_a, tune_b, native."""
    from ir_core.platforms import Platform, set_platform

    a, b, _ = providers
    set_platform(Platform("tunetest", "cpu", {"rms_norm": (a, b, "native")}))
    yield providers
    set_platform(None)


def test_a_table_that_agrees_with_the_default_costs_nothing(
    tmp_path: Path, default_a_then_b: Any
) -> None:
    from ir_core.priorities import current_scope

    _, _, calls = default_a_then_b
    untuned = OP._select(current_scope())
    # tune_b is 2-3 % faster at 64 tokens: noise within the 5 % margin, tune_a stays
    entries = [
        _entry(1, 64, {"tune_a": 1.0, "tune_b": 2.0, "native": 3.0}),
        _entry(64, 64, {"tune_a": 2.05, "tune_b": 2.0, "native": 3.0}),
        _entry(64, 256, {"tune_a": 1.03, "tune_b": 1.0, "native": 3.0}),
    ]
    ir.load_priority(fake_file(tmp_path / "t.json", entries))
    sel = OP._select(current_scope())
    assert sel.__name__ == untuned.__name__ != "select"  # the plain selector, no bucket lookup
    for tokens, hidden in ((1, 64), (64, 64), (5000, 256)):
        calls.clear()
        OP(*_call(tokens, hidden))
        assert calls == ["a"]
        assert OP.dispatch(*_call(tokens, hidden)).provider == "tune_a"
    # explain still names the measurement behind the choice
    assert OP.explain(*_call(64)).source.startswith("tuned ")
    # a larger gain than the margin does switch, and brings the bucket lookup back
    entries[1] = _entry(64, 64, {"tune_a": 2.5, "tune_b": 2.0, "native": 3.0})
    ir.load_priority(fake_file(tmp_path / "u.json", entries))
    assert OP._select(current_scope()).__name__ == "select"
    assert OP.dispatch(*_call(64)).provider == "tune_b"
    assert OP.dispatch(*_call(1)).provider == "tune_a"
    # the margin is the file's setting
    entries[1] = _entry(64, 64, {"tune_a": 2.05, "tune_b": 2.0, "native": 3.0})
    ir.load_priority(fake_file(tmp_path / "v.json", entries, settings={"margin": 0.0}))
    assert OP.dispatch(*_call(64)).provider == "tune_b"


def test_a_bad_margin_is_refused(tmp_path: Path, providers: Any) -> None:
    path = fake_file(tmp_path / "t.json", SMALL_A_LARGE_B, settings={"margin": 2})
    with pytest.raises(TuningFileError, match=r"settings\.margin"):
        ir.load_priority(path)


def test_rounds_rotate_which_candidate_goes_first() -> None:
    """No candidate is always timed first after a switch of configuration."""
    from ir_core.bench.timing import best_of_rounds

    order: list[str] = []

    def make(key: str) -> Any:
        def fn() -> None:
            if not order or order[-1] != key:
                order.append(key)

        return fn

    cands = [(k, make(k), None) for k in ("a", "b", "c")]
    best_of_rounds(cands, "cpu", budget_s=0.003, rounds=3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
