"""Every built-in op against an independent float64 reference, opcheck, and
gradients through the torch op (autograd = VJP of native)."""

from __future__ import annotations

import math

import pytest
import torch

import ir_core as ir
from ir_core import testing
from ir_core.ops.quant import FP8_MAX

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def rms_ref(x, w, eps, vs=None):  # type: ignore[no-untyped-def]
    x64 = x.double()
    n = vs or x.shape[-1]
    rms = torch.linalg.vector_norm(x64[..., :n], dim=-1, keepdim=True) / math.sqrt(n)
    out = x64 / torch.sqrt(rms * rms + eps)
    return out * w.double() if w is not None else out


def rotate_ref(t, positions, cache, head_size, is_neox):  # type: ignore[no-untyped-def]
    """Rotation as multiplication by e^{i theta} on complex pairs."""
    rot = cache.shape[-1]
    half = rot // 2
    tokens = positions.numel()
    t64 = t.double().reshape(tokens, t.shape[-1] // head_size, head_size)
    cos = cache.double()[positions][:, None, :half]
    sin = cache.double()[positions][:, None, half:]
    if is_neox:
        z = torch.complex(t64[..., :half], t64[..., half:rot])
    else:
        z = torch.complex(t64[..., 0:rot:2], t64[..., 1:rot:2])
    z = z * torch.complex(cos, sin)
    out = t64.clone()
    if is_neox:
        out[..., :half], out[..., half:rot] = z.real, z.imag
    else:
        out[..., 0:rot:2], out[..., 1:rot:2] = z.real, z.imag
    return out.reshape(t.shape)


def fp8_ref(v64):  # type: ignore[no-untyped-def]
    return v64.clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)


def reference(name: str, args: tuple):  # type: ignore[no-untyped-def]
    if name == "rms_norm":
        return rms_ref(*args)
    if name == "fused_add_rms_norm":
        x, r, w, eps, vs = args
        res = (x.double() + r.double()).to(x.dtype)
        return rms_ref(res, w, eps, vs), res
    if name in ("silu_and_mul", "gelu_and_mul"):
        x = args[0].double()
        d = x.shape[-1] // 2
        a, b = x[..., :d], x[..., d:]
        if name == "silu_and_mul":
            return a / (1 + torch.exp(-a)) * b
        if args[1] == "tanh":
            return 0.5 * a * (1 + torch.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3))) * b
        return 0.5 * a * (1 + torch.erf(a / math.sqrt(2))) * b
    if name == "rotary_embedding":
        pos, q, k, hs, cache, neox = args
        return (
            rotate_ref(q, pos, cache, hs, neox),
            None if k is None else rotate_ref(k, pos, cache, hs, neox),
        )
    if name == "static_scaled_fp8_quant":
        x, s = args
        return fp8_ref(x.double() / s.double())
    if name == "dynamic_per_token_scaled_fp8_quant":
        x, ub = args
        amax = x.double().abs().max(dim=-1, keepdim=True).values
        if ub is not None:
            amax = amax.clamp(max=ub.double().item())
        scale = (amax / FP8_MAX).clamp(min=1 / (FP8_MAX * 512))
        return fp8_ref(x.double() / scale), scale
    if name == "per_token_group_quant_fp8":
        x, g = args
        groups = x.double().unflatten(-1, (-1, g))
        scale = groups.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-10) / FP8_MAX
        return fp8_ref(groups / scale).flatten(-2), scale.squeeze(-1)
    if name == "rms_norm_static_fp8_quant":
        x, w, eps, s = args
        return fp8_ref(rms_ref(x, w, eps).to(x.dtype).double() / s.double())
    if name == "fused_add_rms_norm_static_fp8_quant":
        x, r, w, eps, s = args
        res = (x.double() + r.double()).to(x.dtype)
        return fp8_ref(rms_ref(res, w, eps).to(x.dtype).double() / s.double()), res
    raise AssertionError(f"no reference for {name}")


BUILTIN = sorted(
    [
        "rms_norm",
        "fused_add_rms_norm",
        "silu_and_mul",
        "gelu_and_mul",
        "rotary_embedding",
        "static_scaled_fp8_quant",
        "dynamic_per_token_scaled_fp8_quant",
        "per_token_group_quant_fp8",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
    ]
)


def _cast_like(ref, out):  # type: ignore[no-untyped-def]
    if isinstance(out, tuple):
        return tuple(None if r is None else r.to(o.dtype) for r, o in zip(ref, out, strict=False))
    return ref.to(out.dtype)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_matches_float64_reference(name: str, dtype: torch.dtype) -> None:
    op = getattr(ir.ops, name)
    for variant in op.test_variants:
        for tokens in (0, 1, 7):
            torch.manual_seed(tokens)
            args = op.input_generator(tokens, 256, dtype, "cpu", **variant)
            out = op(*args)
            ref = _cast_like(reference(name, args), out)
            problem = testing.compare_outputs(op, out, ref)
            assert problem is None, f"{name} {dtype} {variant} tokens={tokens}: {problem}"


@pytest.mark.parametrize("name", BUILTIN)
def test_opcheck(name: str) -> None:
    testing.check_opcheck(name, device="cpu", dtypes=[torch.float32, torch.bfloat16])


def test_schemas() -> None:
    assert (
        ir.ops.rms_norm.schema
        == "(Tensor x, Tensor? weight, float epsilon, SymInt? variance_size=None) -> Tensor"
    )
    assert ir.ops.rotary_embedding.schema.endswith("-> (Tensor, Tensor?)")
    assert ir.ops.fused_add_rms_norm.inplace_schema.startswith(
        "(Tensor(a0!) x, Tensor(a1!) x_residual"
    )
    assert ir.ops.rotary_embedding.inplace_schema is None  # optional returns: no torch overload


def test_rms_norm_gradients_match_float64() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 64, requires_grad=True)
    w = torch.randn(64, requires_grad=True)
    ir.ops.rms_norm(x, w, 1e-6).pow(2).sum().backward()
    x64 = x.detach().double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    rms_ref(x64, w64, 1e-6).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x64.grad.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(w.grad, w64.grad.float(), atol=1e-4, rtol=1e-4)


def test_backward_works_whichever_provider_ran_forward(temp_impl) -> None:  # type: ignore[no-untyped-def]
    op = ir.ops.fused_add_rms_norm
    calls = []

    def other(x, x_residual, weight, epsilon, variance_size=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        with torch.no_grad():
            return op.native(x, x_residual, weight, epsilon, variance_size)

    p = temp_impl(op, other)
    x = torch.randn(4, 32, requires_grad=True)
    r = torch.randn(4, 32, requires_grad=True)
    w = torch.randn(32)
    with ir.priority(fused_add_rms_norm=[p]):
        out, res = op(x, r, w, 1e-6)
    assert calls == [1]
    (out.sum() + 2 * res.sum()).backward()
    x2, r2 = x.detach().clone().requires_grad_(), r.detach().clone().requires_grad_()
    o2, res2 = op.native(x2, r2, w, 1e-6)
    (o2.sum() + 2 * res2.sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(r.grad, r2.grad)


def test_op_validation_errors() -> None:
    with pytest.raises(ValueError, match="variance_size"):
        ir.ops.rms_norm(torch.randn(2, 8), None, 1e-6, 16)
    with pytest.raises(ValueError, match="approximate"):
        ir.ops.gelu_and_mul(torch.randn(2, 8), "fast")
    with pytest.raises(ValueError, match="multiple of group_size"):
        ir.ops.per_token_group_quant_fp8(torch.randn(2, 100), 64)
