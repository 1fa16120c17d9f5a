"""Host replay of the near-step check of divide_by_scale (csrc/common.cuh).

The kernels quantise a / b as fp8(RN(a * RN(1 / b))) unless the product's
flag says it lies within a few units of an fp8 rounding step; this checks
with float32 arithmetic on the CPU (IEEE multiplication and division, as on
the GPU) that the unflagged products give the same fp8 bytes as the IEEE
quotient, for every bf16 and fp16 dividend and a spread of scales.
"""

from __future__ import annotations

import torch

MID_LIMIT = 0x8000  # fp8_mid_flag: low 20 bits within [-4, 3] of 0x80000
SMALL_LIMIT = 0x3C800000 * 2 - 1  # fp8_small_flag: 0 < |q0| < 2^-6


def _fp8_bytes(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-448.0, 448.0).to(torch.float8_e4m3fn).view(torch.uint8)


def _near(q0: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    bits = q0.view(torch.int32).to(torch.int64) % (1 << 32)
    mid = (bits * 4096 + 0x80004000) % (1 << 32)
    small = (bits * 2 - 1) % (1 << 32)
    if int(b.view(torch.int32)) & 0x7FFFFF == 0:  # power of two: exact reciprocal
        return torch.zeros_like(q0, dtype=torch.bool)
    return (mid < MID_LIMIT) | (small < SMALL_LIMIT)


def _scales() -> list[float]:
    g = torch.Generator().manual_seed(7)
    exps = torch.rand(160, generator=g) * 120 - 60  # log-uniform over [2^-60, 2^60]
    out = [float(torch.tensor(2.0) ** e) for e in exps]
    out += [
        float((torch.rand(1, generator=g).item() * 20 + 0.01) * (1.0 / 448.0)) for _ in range(40)
    ]
    out += [1.0, 0.0173, 3.1e-5, 7.25, 448.0 / 3.0, 0.0625, 2.0**-40, 2.0**50]
    out += [float.fromhex(h) for h in ("0x1.fffffep-3", "0x1.000002p0", "0x1.fffffep0")]
    return out


def _all_values(dtype: torch.dtype) -> torch.Tensor:
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    return bits.view(dtype).float()


def _mismatches(a: torch.Tensor, scales: list[float]) -> tuple[int, int]:
    bad = flagged = 0
    for s in scales:
        b = torch.tensor(s, dtype=torch.float32)
        y = torch.tensor(1.0, dtype=torch.float32) / b
        q0 = a * y
        exact = a / b
        near = _near(q0, b)
        diff = (_fp8_bytes(q0) != _fp8_bytes(exact)) & ~near & ~torch.isnan(exact)
        bad += int(diff.sum())
        flagged += int(near.sum())
    return bad, flagged


def test_unflagged_products_round_like_ieee_division() -> None:
    scales = _scales()
    for dtype in (torch.bfloat16, torch.float16):
        bad, _ = _mismatches(_all_values(dtype), scales)
        assert bad == 0, f"{dtype}: {bad} unflagged products round differently"


def test_wide_float_dividends() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(1 << 15, generator=g)
    a = a * torch.exp2(torch.randint(-40, 40, (1 << 15,), generator=g).float())
    bad, _ = _mismatches(a, _scales()[:60])
    assert bad == 0


def test_flag_is_rare_on_activations() -> None:
    # The slow path is a whole chunk: it must stay rare for ordinary data
    # (nearly every flag here is a quotient under 2^-6).
    g = torch.Generator().manual_seed(5)
    a = torch.randn(1 << 16, generator=g).to(torch.bfloat16).float()
    amax = a.abs().max()
    scales = [float(amax * (1.0 / 448.0) * f) for f in (1.0, 1 / 0.8, 1.3, 2.9)]
    _, flagged = _mismatches(a, scales)
    assert flagged / (a.numel() * len(scales)) < 1e-3
