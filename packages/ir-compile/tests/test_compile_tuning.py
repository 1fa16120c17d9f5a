"""A tuned priority file (``ir.load_priority``) decides lowering per shape
bucket, as in eager mode, and is part of the pass's cache key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from compile_helpers import ir_targets, run_pass, trace

import ir_core as ir
from ir_compile import IrLoweringPass
from ir_core import ops
from ir_core.tuning import table


@pytest.fixture(autouse=True)
def _no_tuned_table() -> Iterator[None]:
    table.reset()
    yield
    table.reset()


def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.ops.ir.rms_norm(x, w, 1e-6)


def _tuned_file(path: Path, small: str, large: str) -> str:
    """``small`` fastest at 1 token, ``large`` from 64 tokens on (hidden 64, fp32)."""

    def entry(tokens: int, times: dict[str, float]) -> dict[str, Any]:
        return {
            "op": "rms_norm",
            "dtype": "float32",
            "hidden": 64,
            "tokens": tokens,
            "times_us": times,
        }

    data = {
        "format": table.FORMAT,
        "version": table.FORMAT_VERSION,
        "device": table.device_key(),
        "providers": {"rms_norm": {p: table.provider_key(ops.rms_norm, p) for p in (small, large)}},
        "entries": [entry(1, {small: 1.0, large: 2.0}), entry(64, {small: 5.0, large: 2.0})],
    }
    path.write_text(json.dumps(data))
    return str(path)


def test_lowering_follows_the_tuned_bucket_and_uuid_covers_the_file(
    tmp_path: Path, temp_impl: Any
) -> None:
    def plus(tag: float) -> Any:
        def impl(x, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
            return ops.rms_norm.native(x, weight, epsilon, variance_size) + tag

        return impl

    small = temp_impl(ops.rms_norm, plus(1.0))
    large = temp_impl(ops.rms_norm, plus(2.0))
    before = IrLoweringPass().uuid()
    ir.load_priority(_tuned_file(tmp_path / "tuned.json", small, large))
    assert IrLoweringPass().uuid() != before

    w = torch.randn(64)
    for tokens, provider, tag in ((1, small, 1.0), (200, large, 2.0)):
        x = torch.randn(tokens, 64)
        gm = run_pass(trace(_rms, x, w), p := IrLoweringPass())
        assert ir_targets(gm) == []
        assert [d.provider for d in p.decisions] == [provider]
        torch.testing.assert_close(gm(x, w), ops.rms_norm.native(x, w, 1e-6) + tag)
