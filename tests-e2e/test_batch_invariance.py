"""Batch invariance end to end (CPU): under ``ir.batch_invariant()`` a chain of
IR ops gives each row bit-identical output whatever batch it is in."""

from __future__ import annotations

import pytest
import torch
from conftest import needs_example

import ir_core as ir
from ir_core.ops.rotary import cos_sin_cache

HIDDEN, HEADS, HEAD = 256, 4, 64


def _chain(
    x: torch.Tensor,
    res: torch.Tensor,
    positions: torch.Tensor,
    w: torch.Tensor,
    cache: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """residual add + norm -> gated activation -> rotary on q/k -> norm."""
    h, res = ir.ops.fused_add_rms_norm(x, res, w, 1e-6)
    act = ir.ops.silu_and_mul(torch.cat((h, h.flip(-1)), dim=-1))
    q, k = ir.ops.rotary_embedding(
        positions, act, act[:, : 2 * HEAD].contiguous(), HEAD, cache, True
    )
    assert k is not None
    return ir.ops.rms_norm(q, w, 1e-6), k, res


def _inputs(rows: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(rows, HIDDEN, generator=g).to(dtype)
    res = torch.randn(rows, HIDDEN, generator=g).to(dtype)
    positions = torch.randint(0, 512, (rows,), generator=g)
    w = (1 + 0.1 * torch.randn(HIDDEN, generator=g)).to(dtype)
    return x, res, positions, w, cos_sin_cache(512, HEAD, dtype=dtype)


@needs_example
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_row_is_bit_identical_whatever_its_batch(dtype: torch.dtype) -> None:
    rows = 37
    x, res, positions, w, cache = _inputs(rows, dtype)
    with (
        ir.batch_invariant(),
        ir.priority({"rms_norm": ["example"], "fused_add_rms_norm": ["example"]}),
    ):
        with ir.trace() as t:
            full = _chain(x, res, positions, w, cache)
        assert set(zip((r.op for r in t), t.providers(), strict=True)) == {
            ("fused_add_rms_norm", "example"),
            ("silu_and_mul", "native"),
            ("rotary_embedding", "native"),
            ("rms_norm", "example"),
        }
        selections = [torch.arange(i, i + 1) for i in (0, 18, rows - 1)]  # alone
        selections += [torch.arange(0, 5), torch.arange(11, 30), torch.randperm(rows)]
        for sel in selections:
            part = _chain(x[sel], res[sel], positions[sel], w, cache)
            for got, want in zip(part, full, strict=True):
                assert torch.equal(got, want[sel]), (
                    f"rows {sel.tolist()[:5]}... differ in batch of {len(sel)}"
                )


def test_batch_invariant_mode_refuses_a_non_invariant_reduction() -> None:
    """Without a provider that claims invariance for rms_norm, the mode says so
    instead of silently running native."""
    x, _, _, w, _ = _inputs(4, torch.float32)
    with (
        ir.batch_invariant(),
        ir.priority(rms_norm=["native"]),
        pytest.raises(ir.IrError, match="batch-invariant"),
    ):
        ir.ops.rms_norm(x, w, 1e-6)
