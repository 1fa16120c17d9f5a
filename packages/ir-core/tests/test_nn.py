"""ir_core.nn: each module equals its op's semantics and dispatches through IR."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ir_core as ir
from ir_core import nn as irnn
from ir_core.ops.rotary import cos_sin_cache


def _ref_rms(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> torch.Tensor:
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (out * w.float() if w is not None else out).to(x.dtype)


@pytest.mark.parametrize("shape", [(5, 48), (2, 3, 48), (0, 48)])
def test_rms_norm_any_leading_dims(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    norm = irnn.RMSNorm(48, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(shape)
    with ir.trace() as t:
        y = norm(x)
    assert y.shape == x.shape and t.providers("rms_norm") == ["native"]
    torch.testing.assert_close(y, _ref_rms(x, norm.weight, 1e-5))


def test_rms_norm_with_residual_is_fused_add() -> None:
    torch.manual_seed(1)
    norm = irnn.RMSNorm(32, eps=1e-6)
    x, r = torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    with ir.trace() as t:
        y, new_r = norm(x, r)
    assert [rec.op for rec in t] == ["fused_add_rms_norm"]
    torch.testing.assert_close(new_r, x + r)
    torch.testing.assert_close(y, _ref_rms(x + r, norm.weight, 1e-6))
    assert irnn.FusedAddRMSNorm(32)(x, r)[1].shape == x.shape
    with pytest.raises(TypeError, match="needs a residual"):
        irnn.FusedAddRMSNorm(32)(x)


def test_rms_norm_shares_a_given_weight_and_checks_its_shape() -> None:
    w = torch.nn.Parameter(torch.rand(16))
    norm = irnn.RMSNorm(16, weight=w)
    assert norm.weight is w and list(norm.state_dict()) == ["weight"]
    assert irnn.RMSNorm(16, has_weight=False).weight is None
    with pytest.raises(ValueError, match=r"weight has shape \(8,\)"):
        irnn.RMSNorm(16, weight=torch.nn.Parameter(torch.ones(8)))


def test_gated_activations() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(irnn.SiluAndMul()(x), F.silu(x[..., :20]) * x[..., 20:])
    for approx in ("none", "tanh"):
        got = irnn.GeluAndMul(approx)(x)
        torch.testing.assert_close(got, F.gelu(x[..., :20], approximate=approx) * x[..., 20:])
    with pytest.raises(ValueError, match="approximate"):
        irnn.GeluAndMul("fast")


def _ref_neox(t: torch.Tensor, pos: torch.Tensor, head: int, rot: int, base: float) -> torch.Tensor:
    inv = 1.0 / (base ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))
    ang = pos.double()[:, None] * inv[None]
    cos, sin = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)
    t = t.view(t.shape[0], -1, head).double()
    r, rest = t[..., :rot], t[..., rot:]
    half = rot // 2
    rotated = torch.cat((-r[..., half:], r[..., :half]), -1)
    out = r * cos[:, None] + rotated * sin[:, None]
    return torch.cat((out, rest), -1).flatten(1).float()


@pytest.mark.parametrize("rotary_dim", [32, 16])
def test_rotary_embedding_neox_and_partial(rotary_dim: int) -> None:
    torch.manual_seed(3)
    rope = irnn.RotaryEmbedding(32, rotary_dim, max_position=128, base=500.0)
    pos = torch.randint(0, 128, (6,))
    q, k = torch.randn(6, 4 * 32), torch.randn(6, 2 * 32)
    q2, k2 = rope(pos, q, k)
    assert k2 is not None
    torch.testing.assert_close(q2, _ref_neox(q, pos, 32, rotary_dim, 500.0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k2, _ref_neox(k, pos, 32, rotary_dim, 500.0), atol=1e-5, rtol=1e-5)
    assert rope(pos, q)[1] is None


def test_rotary_embedding_uses_a_given_cache_and_validates() -> None:
    cache = cos_sin_cache(64, 16, base=123.0)
    rope = irnn.RotaryEmbedding(16, cache=cache)
    assert rope.cos_sin_cache is cache and rope.max_position == 64
    assert "cos_sin_cache" not in rope.state_dict()  # recomputed, not a checkpoint entry
    with pytest.raises(ValueError, match="rotary_dim"):
        irnn.RotaryEmbedding(16, 18)
    with pytest.raises(ValueError, match="cache has shape"):
        irnn.RotaryEmbedding(16, cache=torch.zeros(8, 8))


def test_modules_follow_the_priority() -> None:
    @ir.ops.silu_and_mul.register_impl("nn_test_probe")
    def probe(x: torch.Tensor) -> torch.Tensor:
        return torch.full((*x.shape[:-1], x.shape[-1] // 2), 7.0, dtype=x.dtype)

    try:
        with ir.priority(silu_and_mul=["nn_test_probe"]):
            assert torch.equal(irnn.SiluAndMul()(torch.zeros(3, 4)), torch.full((3, 2), 7.0))
    finally:
        ir.ops.silu_and_mul.unregister_impl("nn_test_probe")


def test_hf_mapping_imports_transformers_only_when_patching() -> None:
    import subprocess
    import sys

    code = "import sys, ir_core.nn.hf; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
