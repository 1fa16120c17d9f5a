"""``exact_sum`` / ``sum_squares`` (:mod:`ir_kernels_triton.kernels.common`):
the norms' reduction gives the same bits in any element order (what makes
Inductor's and eager's kernels agree whatever layout each one picked), and
is accurate. Runs on the interpreter (CPU) and on a GPU."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from conftest import DEVICE

from ir_kernels_triton.kernels.common import exact_sum, sum_squares


@triton.jit
def _sums_kernel(x_ptr, out_ptr, N: tl.constexpr):
    v = tl.load(x_ptr + tl.arange(0, N))
    tl.store(out_ptr, exact_sum(v * v))
    tl.store(out_ptr + 1, sum_squares(v, N))


def _sums(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty(2, dtype=torch.float32, device=DEVICE)
    _sums_kernel[(1,)](x.to(DEVICE), out, N=x.numel())
    return out.cpu()


@pytest.mark.parametrize("n", [1, 2, 4, 256])
def test_order_does_not_change_the_bits(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g) * torch.logspace(-3, 3, n)  # wide dynamic range
    ref = _sums(x)
    for _ in range(3):
        perm = torch.randperm(n, generator=g)
        got = _sums(x[perm])
        assert torch.equal(got[0], ref[0])  # exact_sum: any order
    if n >= 4:  # sum_squares sums squares in fours first: reordering the fours keeps the bits
        quads = x.view(-1, 4)[torch.randperm(n // 4, generator=g)].flatten()
        assert torch.equal(_sums(quads)[1], ref[1])
    exact = (x.double() ** 2).sum()
    assert torch.allclose(ref.double(), exact.expand(2), rtol=1e-6, atol=0)


def test_zeros_inf_nan() -> None:
    assert _sums(torch.zeros(8)).tolist() == [0.0, 0.0]
    x = torch.ones(8)
    x[3] = float("inf")
    assert _sums(x).tolist() == [float("inf")] * 2
    x[5] = float("nan")
    assert _sums(x).isnan().all()
    tiny = torch.full((8,), 1e-30)  # squares are subnormal or zero in float32
    assert torch.equal(_sums(tiny)[0], _sums(tiny.flip(0))[0])
