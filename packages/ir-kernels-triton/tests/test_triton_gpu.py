"""GPU-only checks: CUDA-graph capture and replay, and Inductor compiling
the ``triton_op``s (it traces into the kernels). Skipped without a GPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import HAS_GPU, SELECTED_OPS

import ir_core as ir
from ir_core import testing

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU (not the interpreter)"),
]

OPS = sorted({n for n, _ in testing.conformance_cases(provider="triton", ops=SELECTED_OPS)})


def _flat(out: Any) -> list[torch.Tensor]:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if o is not None]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.uint8) if t.element_size() == 1 else t


@pytest.mark.parametrize("tokens", [1, 300])
@pytest.mark.parametrize("op_name", OPS)
def test_cuda_graph_replay_matches_eager(op_name: str, tokens: int) -> None:
    """Capture one call through ``ir.ops.<op>`` (triton first), refill the
    static inputs with new data, replay: bit-identical to an eager call."""
    op = getattr(ir.ops, op_name)
    torch.manual_seed(0)
    static = list(op.input_generator(tokens, 4096, torch.bfloat16, "cuda"))
    torch.manual_seed(1)
    fresh = list(op.input_generator(tokens, 4096, torch.bfloat16, "cuda"))
    with ir.priority(**{op_name: ["triton", "native"]}):
        assert op.dispatch(*static).provider == "triton"
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            op(*static)  # warm up: compile kernels outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = op(*static)
        for s, f in zip(static, fresh, strict=True):
            if isinstance(s, torch.Tensor):
                s.copy_(f)
        graph.replay()
        torch.cuda.synchronize()
        expected = op(*static)
    for c, e in zip(_flat(captured), _flat(expected), strict=True):
        assert torch.equal(_bits(c), _bits(e)), op_name


KERNEL_OF = {
    "rms_norm": "rms_norm_kernel",
    "fused_add_rms_norm": "rms_norm_kernel",
    "silu_and_mul": "gated_act_kernel",
    "rms_norm_static_fp8_quant": "rms_norm_kernel",
}


@pytest.mark.parametrize("op_name", sorted(KERNEL_OF))
def test_inductor_compiles_the_triton_op(op_name: str) -> None:
    """``torch.compile`` (Inductor, fullgraph) of the implementation: the
    traced path goes through the triton_op, Inductor's generated code holds
    the Triton kernel itself (it sees into the op), and results are
    bit-identical to eager, also for more token counts (automatic dynamic
    shapes mark the token dimension dynamic at the second).

    Inductor (torch 2.10 to 2.14) types the kernel's Python-float argument
    ``eps`` fp64 where Triton's launcher passes fp32; the kernel casts it to
    fp32 first, else the norm runs in fp64 under Inductor (another rsqrt,
    other roundings: a few elements in 10**5 one bf16 ulp apart, which at 5
    tokens may happen to be none). Each call prints the type Inductor gave
    ``eps`` and the difference (``pytest -s``)."""
    import re

    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    op = getattr(ir.ops, op_name)
    impl = op.impls["triton"]
    compiled = torch.compile(impl.fn, fullgraph=True)
    for tokens in (5, 77, 1031):
        torch.manual_seed(tokens)
        args = op.input_generator(tokens, 4096, torch.bfloat16, "cuda")
        got, codes = run_and_get_code(compiled, *args)
        if tokens == 5:
            assert any(KERNEL_OF[op_name] in c for c in codes), "kernel not in Inductor's code"
        eps_types = sorted(set(re.findall(r"'eps': '(\w+)'", "\n".join(codes))))
        expected = impl(*args)
        for g, e in zip(_flat(got), _flat(expected), strict=True):
            differ = int((_bits(g) != _bits(e)).sum())
            diff = (g.float() - e.float()).abs().nan_to_num(0.0).max().item()
            print(
                f"inductor {op_name} tokens={tokens}: eps typed {eps_types or '-'} by Inductor,"
                f" {differ} of {g.numel()} elements differ from eager, max abs diff {diff}"
            )
            assert differ == 0, (op_name, tokens, differ, diff, eps_types)


def test_fp8_supported_on_this_gpu() -> None:
    """On sm89+ every fp8 op is taken by triton (no silent fall-through)."""
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 e4m3 needs compute capability 8.9")
    x = torch.randn(4, 128, device="cuda", dtype=torch.bfloat16)
    s = torch.tensor([0.01], device="cuda")
    assert ir.ops.static_scaled_fp8_quant.impls["triton"].accepts(x, s)
    assert ir.ops.per_token_group_quant_fp8.impls["triton"].accepts(x, 64)


def _misaligned_copy(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values in a tensor whose data starts one element past a
    16-byte boundary (Triton then compiles the kernel without alignment)."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    out = buf[1:].view(t.shape)
    out.copy_(t)
    assert out.data_ptr() % 16 != 0
    return out


@pytest.mark.parametrize("hidden", [4096, 20480])  # one block; the chunked path
@pytest.mark.parametrize("op_name", ["rms_norm", "fused_add_rms_norm"])
def test_norm_bits_do_not_depend_on_alignment(op_name: str, hidden: int) -> None:
    """A misaligned input compiles another kernel specialisation (other
    vector width, other register layout); the pairwise sum of squares makes
    the result bit-identical anyway (what keeps Inductor's kernel, which may
    not know an input is aligned, equal to eager)."""
    op = getattr(ir.ops, op_name)
    impl = op.impls["triton"]
    torch.manual_seed(0)
    args = list(op.input_generator(64, hidden, torch.bfloat16, "cuda"))
    shifted = [
        _misaligned_copy(a) if isinstance(a, torch.Tensor) and a.dim() == 2 else a for a in args
    ]
    assert impl.accepts(*shifted)
    for a, e in zip(_flat(impl(*shifted)), _flat(impl(*args)), strict=True):
        assert torch.equal(a, e), (op_name, hidden)


def test_fast_launch_matches_the_normal_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The eager fast path is on for this GPU, reuses Triton's compiled kernel
    (bit-identical results to Triton's own launcher), and a misaligned input
    gets its own compiled kernel instead of the aligned one."""
    from ir_kernels_triton import _fastlaunch as fl
    from ir_kernels_triton.kernels.norm import rms_norm_kernel

    assert fl.available(), "fast launch not detected on this Triton"
    impl = ir.ops.rms_norm.impls["triton"]
    torch.manual_seed(0)
    x, w, eps, vs = ir.ops.rms_norm.input_generator(33, 4096, torch.bfloat16, "cuda")
    xm = _misaligned_copy(x)
    fast = [impl(a, w, eps, vs) for a in (x, x, xm, xm)]  # second of each: the fast path
    mine = {k: v for k, v in fl._cache.items() if k[0] is rms_norm_kernel and v is not fl._SLOW}

    def scalars(key: tuple[Any, ...]) -> tuple[Any, ...]:  # the key without tensor entries
        spec = key[2]
        return tuple(
            p
            for i, p in enumerate(spec)
            if not (isinstance(p, torch.dtype) or (i and isinstance(spec[i - 1], torch.dtype)))
        )

    pairs = [
        (mine[a][4], mine[b][4])  # the compiled kernels
        for a in mine
        for b in mine
        if a[2][:2] == (torch.bfloat16, True)
        and b[2][:2] == (torch.bfloat16, False)
        and scalars(a) == scalars(b)
    ]
    assert pairs and all(ca is not cb for ca, cb in pairs)  # not the aligned kernel reused
    print("fast launch:", fl.stats())
    monkeypatch.setattr(fl, "_available", False)
    slow = [impl(a, w, eps, vs) for a in (x, xm)]
    for f, s in zip(fast, (slow[0], slow[0], slow[1], slow[1]), strict=True):
        assert torch.equal(f, s)


@pytest.mark.parametrize(
    "op_name",
    ["static_scaled_fp8_quant", "rms_norm_static_fp8_quant", "fused_add_rms_norm_static_fp8_quant"],
)
def test_fp8_saturates_like_native(op_name: str) -> None:
    """A scale 100x too small pushes most values past +-448. The kernels leave
    the clamp to the e4m3 conversion (``FP8_CLAMP`` off), which must saturate
    exactly as native's clamp: +-448, never NaN. Static quant is bitwise
    native's, inf and NaN inputs included; the norm forms may differ from
    native by one fp8 step where the norm's last bit differs (also next to
    448), but never give NaN."""
    op = getattr(ir.ops, op_name)
    torch.manual_seed(0)
    args = list(op.input_generator(37, 4096, torch.bfloat16, "cuda"))
    static = op_name == "static_scaled_fp8_quant"
    if static:
        args[0][0, :4] = torch.tensor([float("inf"), -float("inf"), float("nan"), 1e4])
    args[-1] = args[-1] / 100  # every form takes the scale last
    with ir.priority(**{op_name: ["triton", "native"]}):
        assert op.dispatch(*args).provider == "triton"
        got = _flat(op(*args))
    want = _flat(op.native(*args))
    g, w = got[0].view(torch.uint8), want[0].view(torch.uint8)
    saturated = (w & 0x7F) == 0x7E
    assert int(saturated.sum()) > 1000  # the case is exercised
    if static:
        assert torch.equal(g, w)
    else:
        # near 448 a last-bit difference of the norm may move a value one step
        assert float((g[saturated] == w[saturated]).float().mean()) > 0.99
        assert int(((g & 0x7F) == 0x7F).sum()) == int(((w & 0x7F) == 0x7F).sum()) == 0
        assert int((g.int() - w.int()).abs().max()) <= 1
    for gg, ww in zip(got[1:], want[1:], strict=True):  # the residual
        torch.testing.assert_close(gg, ww)
