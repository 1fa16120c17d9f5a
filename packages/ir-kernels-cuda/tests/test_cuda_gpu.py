"""GPU tests of the cuda provider (NVIDIA GPU, sm_80+): the testing kit on
every op and dtype, batch invariance, opcheck of the ir_cuda ops (fake
kernels, mutation annotations), layouts the kit does not generate (partial
16-byte chunks, misaligned rows, long rows), and bitwise equality with native
where the arithmetic is the same."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ir_core as ir
from ir_core import testing
from ir_core.ops.rotary import cos_sin_cache
from ir_kernels_cuda import runtime

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
]

DEV = "cuda"
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@pytest.fixture(scope="module", autouse=True)
def extension() -> None:
    ir.load_providers()
    assert runtime.ensure_loaded(), (
        f"the ir_cuda extension is unavailable: {runtime.unavailable_reason()}"
    )


class _Knobs:
    """Sets launch knobs for a block and restores the previous values."""

    def __init__(self, **values: int) -> None:
        self.values = values
        self.previous: dict[str, int] = {}

    def __enter__(self) -> None:
        for name, value in self.values.items():
            self.previous[name] = runtime.set_knob(name, value)

    def __exit__(self, *exc: object) -> None:
        for name, value in self.previous.items():
            runtime.set_knob(name, value)


def _cases(**kw: Any) -> list[tuple[str, str]]:
    return testing.conformance_cases(provider="cuda", **kw) if torch.cuda.is_available() else []


# ------------------------------------------------------------------ the kit


@pytest.mark.parametrize("op, provider", _cases())
def test_conformance(op: str, provider: str) -> None:
    testing.check_impl(op, provider, device=DEV)


@pytest.mark.parametrize("op, provider", _cases())
def test_conformance_odd_sizes(op: str, provider: str) -> None:
    """Partial 16-byte chunks and rows that are not 16-byte aligned."""
    testing.check_impl(op, provider, device=DEV, tokens=(1, 3, 37), hidden=(3, 77, 1001, 2050))


@pytest.mark.parametrize("op, provider", _cases())
def test_nonfinite_inputs_as_native(op: str, provider: str) -> None:
    """NaN and +-inf in the activations: NaN where native has NaN, nowhere else."""
    testing.check_nonfinite(op, provider, device=DEV)


@pytest.mark.parametrize("op, provider", _cases(batch_invariant_only=True))
def test_batch_invariance(op: str, provider: str) -> None:
    for dtype in DTYPES:
        testing.check_batch_invariance(op, provider, device=DEV, dtype=dtype)
    testing.check_batch_invariance(
        op, provider, device=DEV, hidden=40000, rows=64, batch_sizes=(1, 3, 64)
    )


NORM_OPS = (
    "rms_norm",
    "fused_add_rms_norm",
    "rms_norm_static_fp8_quant",
    "fused_add_rms_norm_static_fp8_quant",
)


def _flat(out: Any) -> list[torch.Tensor]:
    items = out if isinstance(out, tuple | list) else (out,)
    return [t.view(torch.uint8) if t.dtype.itemsize == 1 else t for t in items if t is not None]


@pytest.mark.parametrize("name", NORM_OPS)
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float32))
def test_norm_rows_have_the_same_bits_under_every_launch_shape(
    name: str, dtype: torch.dtype
) -> None:
    """The canonical reduction order (norm.cu): the few-rows shape, the
    many-rows shape, and every chunks-per-thread and rows-per-block knob give
    a row the same bits, for power-of-two and other hidden sizes."""
    op = getattr(ir.ops, name)
    fn = op.impls["cuda"].functional_fn()
    for hidden in (64, 1000, 2048, 5120, 8192):
        torch.manual_seed(0)
        args = list(op.input_generator(300, hidden, dtype, DEV))  # >= 2 rows per SM
        ref = _flat(fn(*args))
        few = [
            a[:3].contiguous() if isinstance(a, torch.Tensor) and a.dim() == 2 else a for a in args
        ]
        for got, exp in zip(_flat(fn(*few)), ref, strict=True):
            if exp.dim() >= 1 and exp.shape[0] == 300:
                assert torch.equal(got, exp[:3]), f"{name} {hidden}: 3 rows differ from 300"
        for knob_name, value in (
            ("norm_cpt", 1),
            ("norm_cpt", 2),
            ("norm_cpt", 4),
            ("norm_cpt", 8),
            ("norm_rows", 4),
        ):
            with _Knobs(**{knob_name: value}):
                got_all = _flat(fn(*args))
            for got, exp in zip(got_all, ref, strict=True):
                assert torch.equal(got, exp), f"{name} {hidden} {knob_name}={value}: differs"


@pytest.mark.parametrize("name", runtime.ALL_OP_NAMES)
def test_opcheck_ir_cuda_ops(name: str) -> None:
    """Schemas, fake kernels and declared mutations agree with the CUDA kernels
    (the ir_cuda ops and their in-place ``_`` forms take the IR op's arguments
    in the same order)."""
    op = getattr(ir.ops, name.rstrip("_"))
    kernel = getattr(torch.ops.ir_cuda, name).default
    for dtype in (torch.float32, torch.bfloat16):
        for variant in op.test_variants:
            torch.manual_seed(0)
            args = op.input_generator(4, 256, dtype, DEV, **variant)
            torch.library.opcheck(kernel, args)


# ------------------------------------------------------------------ dispatch


def test_dispatch_prefers_cuda_and_falls_through() -> None:
    x = torch.randn(8, 256, device=DEV, dtype=torch.bfloat16)
    w = torch.ones(256, device=DEV, dtype=torch.bfloat16)
    with ir.priority(rms_norm=["cuda", "native"]):
        assert ir.ops.rms_norm.dispatch(x, w, 1e-6).provider == "cuda"
        assert ir.ops.rms_norm.dispatch(x.double(), None, 1e-6).provider == "native"
        assert ir.ops.rms_norm.dispatch(x.cpu(), None, 1e-6).provider == "native"
        assert ir.ops.rms_norm.dispatch(x, w.float(), 1e-6).provider == "native"
        assert ir.ops.rms_norm.dispatch(x.t(), None, 1e-6).provider == "native"
        assert ir.ops.rms_norm.dispatch(x, w, 1e-6, 300).provider == "native"
        with ir.batch_invariant():
            assert ir.ops.rms_norm.dispatch(x, w, 1e-6).provider == "cuda"


def test_functional_calls_leave_the_inputs_alone() -> None:
    """The cuda impls are functional (inplace=False): ir.ops and maybe_inplace
    get fresh outputs without clones, the inputs keep their values."""
    x = torch.randn(5, 512, device=DEV, dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(512, device=DEV, dtype=torch.bfloat16)
    x0, r0 = x.clone(), r.clone()
    exp_out, exp_res = ir.ops.fused_add_rms_norm.native(x0, r0, w, 1e-6)
    with ir.priority(fused_add_rms_norm=["cuda", "native"]):
        assert ir.ops.fused_add_rms_norm.dispatch(x, r, w, 1e-6).provider == "cuda"
        for call in (ir.ops.fused_add_rms_norm, ir.ops.fused_add_rms_norm.maybe_inplace):
            out, res = call(x, r, w, 1e-6)
            assert out.data_ptr() not in (x.data_ptr(), r.data_ptr())
            assert res.data_ptr() not in (x.data_ptr(), r.data_ptr())
            assert torch.equal(x, x0) and torch.equal(r, r0)
            torch.testing.assert_close(res, exp_res, rtol=0, atol=0)
            torch.testing.assert_close(out, exp_out, rtol=1.6e-2, atol=1e-3)


def test_inplace_forms_equal_the_functional_ones() -> None:
    """fused_add_rms_norm_ and fused_add_rms_norm_static_fp8_quant_ write into
    the caller's buffers exactly what the functional forms return, for
    contiguous and row-strided (also misaligned) operands."""
    k = runtime.K
    for dtype in DTYPES:
        base = torch.randn(7, 1001 + 9, device=DEV).to(dtype)
        x = base[:, 1:1002]  # row stride 1010, misaligned rows
        r = torch.randn(7, 1001, device=DEV).to(dtype)
        w = torch.randn(1001, device=DEV).to(dtype)
        scale = torch.tensor([0.02], device=DEV)
        for xs in (x.contiguous(), x):
            out, res = k.fused_add_rms_norm(xs, r, w, 1e-6, None)
            xi, ri = xs.clone() if xs.is_contiguous() else xs, r.clone()
            keep = base.clone()
            k.fused_add_rms_norm_(xi, ri, w, 1e-6, None)
            assert torch.equal(xi, out) and torch.equal(ri, res), dtype
            if not xs.is_contiguous():  # only the view's elements were written
                assert torch.equal(base[:, 0], keep[:, 0]) and torch.equal(
                    base[:, 1002:], keep[:, 1002:]
                )
                base.copy_(keep)
            q, res = k.fused_add_rms_norm_static_fp8_quant(xs, r, w, 1e-6, scale)
            ri = r.clone()
            qi = k.fused_add_rms_norm_static_fp8_quant_(xs, ri, w, 1e-6, scale)
            assert torch.equal(q.view(torch.uint8), qi.view(torch.uint8)) and torch.equal(ri, res)


# ------------------------------------------------------------------ layouts and paths


def _misaligned(t: torch.Tensor) -> torch.Tensor:
    """A copy of 2-D ``t`` whose rows start one element past a 16-byte boundary
    (and, with an odd row stride, alternate alignment): the element-wise path."""
    buf = torch.full((t.shape[0], t.shape[1] + 9), float("nan"), device=DEV, dtype=t.dtype)
    view = buf[:, 1 : t.shape[1] + 1]
    view.copy_(t)
    return view


def _clone(args: tuple[Any, ...]) -> list[Any]:
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_rows_match_native(dtype: torch.dtype) -> None:
    x = torch.randn(7, 4096, device=DEV).to(dtype)
    r = torch.randn(7, 4096, device=DEV).to(dtype)
    w = (1 + 0.1 * torch.randn(4096, device=DEV)).to(dtype)
    scale = torch.tensor([0.02], device=DEV)
    for name, args in (
        ("rms_norm", (x, w, 1e-6, None)),
        ("fused_add_rms_norm", (x, r, w, 1e-6, None)),
        ("fused_add_rms_norm_static_fp8_quant", (x, r, w, 1e-6, scale)),
        ("silu_and_mul", (x,)),
        ("gelu_and_mul", (x, "tanh")),
        ("static_scaled_fp8_quant", (x, scale)),
        ("dynamic_per_token_scaled_fp8_quant", (x, None)),
        ("per_token_group_quant_fp8", (x, 128)),
    ):
        op = getattr(ir.ops, name)
        impl = op.impls["cuda"]
        exp = op.native(*_clone(args))
        odd = [_misaligned(a) if isinstance(a, torch.Tensor) and a.dim() == 2 else a for a in args]
        assert odd[0].data_ptr() % 16 != 0 and impl.accepts(*odd), name
        got = impl.fn(*odd)  # no functional clone: the kernel sees the misaligned rows
        problem = testing.compare_outputs(op, got, exp)
        assert problem is None, f"{name}: {problem}"


@pytest.mark.parametrize(
    "name",
    [
        "rms_norm",
        "fused_add_rms_norm",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
        "dynamic_per_token_scaled_fp8_quant",
    ],
)
def test_long_rows_take_the_looped_kernels(name: str) -> None:
    # 40000 bf16 = 5000 chunks > 1024 threads x 4 chunks: the two-pass kernels.
    testing.check_impl(
        name,
        "cuda",
        device=DEV,
        dtypes=(torch.bfloat16, torch.float32),
        tokens=(1, 9),
        hidden=(40000, 40001),
    )


@pytest.mark.parametrize("is_neox", [True, False])
def test_rotary_layouts(is_neox: bool) -> None:
    op = ir.ops.rotary_embedding
    impl = op.impls["cuda"]
    tokens, heads, hs = 11, 4, 128
    pos32 = torch.randint(0, 256, (tokens,), device=DEV, dtype=torch.int32)
    q3 = torch.randn(tokens, heads, hs, device=DEV, dtype=torch.bfloat16)
    k3 = torch.randn(tokens, 1, hs, device=DEV, dtype=torch.bfloat16)
    for cache_dtype in (torch.float32, torch.bfloat16):
        cache = cos_sin_cache(256, 64, dtype=cache_dtype, device=DEV)  # partial rotary
        args = (pos32, q3, k3, hs, cache, is_neox)
        assert impl.accepts(*args)
        exp = op.native(pos32.long(), q3.clone(), k3.clone(), hs, cache, is_neox)
        got = impl(*args)
        assert testing.compare_outputs(op, got, exp) is None
    # a head-strided 3-D view (heads not adjacent): the functional form returns
    # a new contiguous tensor; the in-place form rotates the view, the rest untouched
    big = torch.randn(tokens, heads, 2 * hs, device=DEV, dtype=torch.float16)
    for rot in (hs, 64):  # full and partial rotary (the tail is copied out of place)
        cache = cos_sin_cache(256, rot, device=DEV)
        exp = op.native(pos32.long(), big[:, :, :hs].clone(), None, hs, cache, is_neox)
        work = big.clone()
        q, k = impl.fn(pos32, work[:, :, :hs], None, hs, cache, is_neox)
        assert k is None and q.is_contiguous() and q.shape == (tokens, heads, hs)
        assert torch.equal(work, big)
        assert testing.compare_outputs(op, (q, None), exp) is None
        runtime.K.rotary_embedding_(pos32, work[:, :, :hs], None, hs, cache, is_neox)
        assert torch.equal(work[:, :, :hs], q)
        assert torch.equal(work[:, :, hs:], big[:, :, hs:])


# ------------------------------------------------------------------ bitwise equality


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.uint8) if t.dtype.itemsize == 1 else t


def _same_bits_or_both_nan(got: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """Per element: the same bit pattern, or NaN in both (payloads aside).
    fp8 bytes compare as bytes (a NaN byte is 0x7f or 0xff)."""
    if got.dtype.itemsize == 1:
        return got.view(torch.uint8) == exp.view(torch.uint8)
    word = torch.int16 if got.dtype.itemsize == 2 else torch.int32
    return (got.view(word) == exp.view(word)) | (got.isnan() & exp.isnan())


@pytest.mark.parametrize("dtype", DTYPES)
def test_quant_is_bitwise_native(dtype: torch.dtype) -> None:
    """Same IEEE division, same scale arithmetic, round-to-nearest-even fp8."""
    torch.manual_seed(0)
    x = (torch.randn(300, 1536, device=DEV) * 3).to(dtype)
    x[0, :7] = torch.tensor([0.0, 1e-6, -1e-6, 1e4, -1e4, 448.0, 0.001], device=DEV).to(dtype)
    scale = torch.tensor([0.0173], device=DEV)
    ub = torch.tensor([2.5], device=DEV)
    cases = (
        ("static_scaled_fp8_quant", (x, scale)),
        ("dynamic_per_token_scaled_fp8_quant", (x, None)),
        ("dynamic_per_token_scaled_fp8_quant", (x, ub)),
        ("per_token_group_quant_fp8", (x, 128)),
        ("per_token_group_quant_fp8", (x, 64)),
        # 1 to 32 lanes per group, 1 to 4 chunks per lane, whole and partial warps
        ("per_token_group_quant_fp8", (x, 24)),
        ("per_token_group_quant_fp8", (x, 96)),
        ("per_token_group_quant_fp8", (x, 512)),
    )
    for name, args in cases:
        op = getattr(ir.ops, name)
        got, exp = op.impls["cuda"](*args), op.native(*args)
        got_l = got if isinstance(got, tuple) else (got,)
        exp_l = exp if isinstance(exp, tuple) else (exp,)
        for g, e in zip(got_l, exp_l, strict=True):
            assert torch.equal(_bits(g), _bits(e)), f"{name} {dtype}: differs from native"


def _scale_from_bits(bits: int) -> float:
    return float(torch.tensor(bits, dtype=torch.int32).view(torch.float32))


# fp8_div knob: 0 default (one correction where exact), 2 two corrections,
# 3 near-step check, 4 one correction (same as 0).
@pytest.mark.parametrize("fp8_div", [0, 2, 3, 4])
def test_fp8_division_forms_are_bitwise_native(fp8_div: int) -> None:
    """Every bf16 and fp16 value through static quant (against native), and
    rms_norm + fp8 on generated rows (against the IEEE division form), over
    scales of every kind, including divisors inside and just outside the
    one-correction window (common.cuh): the same fp8 bytes, whatever the
    division form."""
    scales = [0.0173, 0.01, 3.1e-5, 7.25, 448.0 / 3.0, 0.0625, 1.0 / 448.0, 2.3 / 448.0]
    scales += [
        _scale_from_bits(b)
        for b in (0x3F800001, 0x3F800007, 0x3F80000F, 0x3F800010, 0x3FBFFFFF, 0x3C23D70B)
    ]
    previous = runtime.set_knob("fp8_div", fp8_div)
    try:
        for dtype in (torch.bfloat16, torch.float16):
            bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
            x = bits.view(dtype).reshape(256, 256).to(DEV)
            for s in scales:
                scale = torch.tensor([s], device=DEV)
                got = ir.ops.static_scaled_fp8_quant.impls["cuda"](x, scale)
                exp = ir.ops.static_scaled_fp8_quant.native(x, scale)
                g, e = _bits(got), _bits(exp)
                assert torch.equal(g, e), f"{dtype} scale {s!r}: {(g != e).sum()} bytes differ"
        # The norm's own reduction order differs from torch's, so the fused
        # form is compared with the same kernel dividing by IEEE division.
        torch.manual_seed(1)
        op = ir.ops.rms_norm_static_fp8_quant
        x, w, eps, _ = op.input_generator(512, 4096, torch.bfloat16, DEV)
        for s in scales:
            scale = torch.tensor([s], device=DEV)
            got = _bits(op.impls["cuda"](x, w, eps, scale))
            runtime.set_knob("fp8_div", 1)
            exp = _bits(op.impls["cuda"](x, w, eps, scale))
            runtime.set_knob("fp8_div", fp8_div)
            assert torch.equal(got, exp), f"norm+fp8 scale {s!r}: differs from IEEE division"
    finally:
        runtime.set_knob("fp8_div", previous)


@pytest.mark.parametrize("is_neox", [True, False])
def test_rotary_is_bitwise_native(is_neox: bool) -> None:
    args = ir.ops.rotary_embedding.input_generator(64, 1024, torch.float32, DEV, is_neox=is_neox)
    op = ir.ops.rotary_embedding
    exp = op.native(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
    got = op.impls["cuda"](*args)
    assert torch.equal(got[0], exp[0]) and torch.equal(got[1], exp[1])


@pytest.mark.parametrize("is_neox", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_vector_path_equals_scalar_path(dtype: torch.dtype, is_neox: bool) -> None:
    """Aligned heads take the 16-byte vector kernel, misaligned rows the scalar
    one: same arithmetic per pair, so the results are bit for bit equal."""
    torch.manual_seed(0)
    impl = ir.ops.rotary_embedding.impls["cuda"]
    tokens, heads, kv_heads, hs = 37, 8, 2, 128
    pos = torch.randint(0, 512, (tokens,), device=DEV)
    q = torch.randn(tokens, heads * hs, device=DEV).to(dtype)
    k = torch.randn(tokens, kv_heads * hs, device=DEV).to(dtype)

    def misaligned(t: torch.Tensor) -> torch.Tensor:
        buf = torch.empty(t.shape[0], t.shape[1] + 1, dtype=t.dtype, device=DEV)
        buf[:, 1:].copy_(t)
        return buf[:, 1:]

    for rot in (hs, 64):  # full and partial rotary
        cache = cos_sin_cache(512, rot, dtype=dtype, device=DEV)
        qm, km = misaligned(q), misaligned(k)
        assert qm.data_ptr() % 16 != 0 and impl.accepts(pos, qm, km, hs, cache, is_neox)
        qa, ka = impl.fn(pos, q, k, hs, cache, is_neox)  # functional, vector kernel
        qf, kf = impl.fn(pos, qm, km, hs, cache, is_neox)  # functional, scalar kernel
        assert not torch.equal(qa, q), "nothing was rotated"
        assert torch.equal(qa, qf) and torch.equal(ka, kf), f"rotary_dim {rot}"
        tail = (slice(None), slice(None), slice(rot, hs))
        assert torch.equal(qa.view(tokens, heads, hs)[tail], q.view(tokens, heads, hs)[tail])
        # in place (vector and scalar kernels): the same values in the caller's buffers
        qi, ki = q.clone(), k.clone()
        runtime.K.rotary_embedding_(pos, qi, ki, hs, cache, is_neox)
        runtime.K.rotary_embedding_(pos, qm, km, hs, cache, is_neox)
        for got in (qi, qm):
            assert torch.equal(got, qa), f"in place, rotary_dim {rot}"
        assert torch.equal(ki, ka) and torch.equal(km, ka)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_out_of_place_odd_heads(dtype: torch.dtype) -> None:
    """Head sizes whose tail is not whole 16-byte chunks, and a zero-width
    rotary part: the functional form copies every unrotated feature."""
    op = ir.ops.rotary_embedding
    impl = op.impls["cuda"]
    tokens = 9
    pos = torch.randint(0, 64, (tokens,), device=DEV)
    for hs, rot in ((80, 32), (72, 64), (100, 36), (64, 0)):
        q = torch.randn(tokens, 3 * hs, device=DEV).to(dtype)
        k = torch.randn(tokens, hs, device=DEV).to(dtype)
        cache = torch.randn(64, rot, device=DEV)
        for is_neox in (True, False):
            args = (pos, q, k, hs, cache, is_neox)
            assert impl.accepts(*args), (hs, rot)
            exp = op.native(*_clone(args))
            got = impl.fn(*args)
            assert testing.compare_outputs(op, got, exp) is None, (hs, rot, is_neox)
            for g, t in zip(got, (q, k), strict=True):
                heads = t.shape[1] // hs
                assert torch.equal(
                    g.view(tokens, heads, hs)[:, :, rot:], t.view(tokens, heads, hs)[:, :, rot:]
                ), (hs, rot)


# ------------------------------------------------------------------ lean kernels vs the former ones


@pytest.mark.parametrize("dtype", DTYPES)
def test_static_quant_lean_kernel_equals_the_former(dtype: torch.dtype) -> None:
    """sq_mode 1 (lean: host-checked 16- or 8-byte pieces, (tile, row) grid)
    against sq_mode 2 (the element-wise kernel), bytes, for few and many rows,
    every piece width and chunks per thread, and rows the lean kernel refuses
    (odd hidden sizes, misaligned rows: the former kernel either way)."""
    torch.manual_seed(0)
    impl = ir.ops.static_scaled_fp8_quant.impls["cuda"]
    scale = torch.tensor([0.0173], device=DEV)
    for tokens, hidden in (
        (1, 2048),
        (3, 4096),
        (16, 8192),
        (300, 1536),
        (1024, 4096),
        (5, 40),
        (7, 36),
    ):
        x = (torch.randn(tokens, hidden, device=DEV) * 3).to(dtype)
        x[0, :4] = torch.tensor([0.0, -0.0, 1e4, float("nan")], device=DEV).to(dtype)
        with _Knobs(sq_mode=2):
            exp = _bits(impl(x, scale))
        assert torch.equal(exp, _bits(ir.ops.static_scaled_fp8_quant.native(x, scale)))
        for knobs in ({}, {"ew_cpt": 1}, {"ew_cpt": 2}, {"ew_cpt": 4}, {"ew_threads": 64}):
            with _Knobs(sq_mode=1, **knobs):
                got = _bits(impl(x, scale))
            assert torch.equal(got, exp), f"{tokens}x{hidden} {knobs}: differs"
    odd = _misaligned(torch.randn(9, 4096, device=DEV).to(dtype))
    with _Knobs(sq_mode=1):
        got = _bits(impl(odd, scale))
    assert torch.equal(got, _bits(ir.ops.static_scaled_fp8_quant.native(odd.contiguous(), scale)))


@pytest.mark.parametrize("is_neox", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_lean_kernel_equals_the_former(dtype: torch.dtype, is_neox: bool) -> None:
    """rot_mode 1 (lean: per-thread cos/sin loads, no shared-memory staging)
    against rot_mode 2 (the former kernels), bits, in place and out of place,
    for both cache dtypes, int32 and int64 positions, with and without a key,
    few tokens and more tokens than SMs, full and partial rotary (partial out
    of place copies a tail: the former kernel either way)."""
    torch.manual_seed(0)
    impl = ir.ops.rotary_embedding.impls["cuda"]
    for tokens, heads, kv_heads, hs, rot in (
        (1, 32, 8, 64, 64),
        (5, 8, 2, 128, 128),
        (300, 16, 4, 64, 64),
        (9, 4, 1, 128, 64),
        (3, 2, 2, 256, 256),
        (4, 3, 1, 80, 80),
    ):
        pos = torch.randint(0, 512, (tokens,), device=DEV)
        q = torch.randn(tokens, heads * hs, device=DEV).to(dtype)
        k = torch.randn(tokens, kv_heads * hs, device=DEV).to(dtype)
        for cache_dtype in {dtype, torch.float32}:
            cache = cos_sin_cache(512, rot, dtype=cache_dtype, device=DEV)
            for p in (pos, pos.to(torch.int32)):
                for key in (k, None):
                    args = (p, q, key, hs, cache, is_neox)
                    with _Knobs(rot_mode=2):
                        exp = impl.fn(*args)
                        exp_q, exp_k = q.clone(), None if key is None else key.clone()
                        runtime.K.rotary_embedding_(p, exp_q, exp_k, hs, cache, is_neox)
                    with _Knobs(rot_mode=1):
                        got = impl.fn(*args)
                        got_q, got_k = q.clone(), None if key is None else key.clone()
                        runtime.K.rotary_embedding_(p, got_q, got_k, hs, cache, is_neox)
                    case = (tokens, hs, rot, cache_dtype, p.dtype, key is None)
                    assert torch.equal(got[0], exp[0]) and torch.equal(got_q, exp_q), case
                    assert not torch.equal(got_q, q), case
                    if key is not None:
                        assert torch.equal(got[1], exp[1]) and torch.equal(got_k, exp_k), case


@pytest.mark.parametrize("dtype", DTYPES)
def test_lean_quant_kernels_take_row_strided_rows(dtype: torch.dtype) -> None:
    """Row-strided (16-byte aligned) rows through the lean group, dynamic and
    static quant kernels give the bytes and scales of the contiguous rows,
    for 1 row and for more rows than SMs (the group kernel's strided path
    divides by the groups a row; its contiguous path does not)."""
    torch.manual_seed(0)
    for tokens in (1, 300):
        buf = (torch.randn(tokens, 2048 + 64, device=DEV) * 3).to(dtype)
        view = buf[:, :2048]
        dense = view.contiguous()
        assert view.stride(0) == 2048 + 64 and view.data_ptr() % 16 == 0
        for name, extra in (
            ("per_token_group_quant_fp8", (128,)),
            ("per_token_group_quant_fp8", (64,)),
            ("dynamic_per_token_scaled_fp8_quant", (None,)),
            ("static_scaled_fp8_quant", (torch.tensor([0.0173], device=DEV),)),
        ):
            impl = getattr(ir.ops, name).impls["cuda"]
            assert impl.accepts(view, *extra), name
            got, exp = impl.fn(view, *extra), impl.fn(dense, *extra)
            got_l = got if isinstance(got, tuple) else (got,)
            exp_l = exp if isinstance(exp, tuple) else (exp,)
            for g, e in zip(got_l, exp_l, strict=True):
                assert torch.equal(_bits(g), _bits(e)), f"{name} {extra} {tokens} rows"


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_quant_few_groups_kernel_equals_the_lean_one(dtype: torch.dtype) -> None:
    """gq_mode 4 (4 or 8 elements a lane, up to 32 lanes a group) against
    gq_mode 1 (16 a lane) and native, bytes and scales: group sizes that
    take 8- and 16-byte pieces (and 512, which no piece splits into 32
    lanes: the lean kernel either way), contiguous and row-strided rows,
    few and many rows, inputs with zeros, large values and a NaN (whose
    group's scale and bytes are NaN, as native's)."""
    torch.manual_seed(0)
    op = ir.ops.per_token_group_quant_fp8
    impl = op.impls["cuda"]
    for tokens, special in ((1, 0.0), (3, 0.0), (300, 0.0), (3, float("nan"))):
        buf = (torch.randn(tokens, 4096 + 64, device=DEV) * 3).to(dtype)
        buf[0, :4] = torch.tensor([0.0, -0.0, special, 1e4], device=DEV).to(dtype)
        for rows in (buf[:, :4096].contiguous(), buf[:, :4096]):
            for gs in (32, 64, 128, 256, 512):
                with _Knobs(gq_mode=1):
                    exp = impl.fn(rows, gs)
                with _Knobs(gq_mode=4):
                    got = impl.fn(rows, gs)
                ref = op.native(rows.contiguous(), gs)
                case = (tokens, gs, rows.is_contiguous())
                for g, e, r in zip(got, exp, ref, strict=True):
                    assert bool(_same_bits_or_both_nan(g, e).all()), case
                    assert bool(_same_bits_or_both_nan(g, r).all()), case


@pytest.mark.parametrize("dtype", DTYPES)
def test_quant_maxima_propagate_nan_as_native(dtype: torch.dtype) -> None:
    """A NaN in a row (dynamic per-token quant, with and without scale_ub)
    or in a group makes that row's or group's scale and fp8 bytes NaN, as
    native's amax does, and leaves the other rows and groups as native's:
    every dynamic and group kernel, a NaN first, last or alone in a row."""
    torch.manual_seed(0)
    nan = float("nan")
    x = (torch.randn(6, 4096, device=DEV) * 3).to(dtype)
    x[1, 7] = nan
    x[2, 4095] = -nan
    x[3, :] = nan
    x[4, 2048:2050] = torch.tensor([nan, float("inf")], device=DEV).to(dtype)
    ub = torch.tensor([1.5], device=DEV)
    dyn = ir.ops.dynamic_per_token_scaled_fp8_quant
    grp = ir.ops.per_token_group_quant_fp8
    cases = [(dyn, (x, None), {"dq_mode": m}) for m in (1, 2, 3)]
    cases += [(dyn, (x, ub), {"dq_mode": m}) for m in (1, 3)]
    cases += [(grp, (x, gs), {"gq_mode": m}) for gs in (64, 128) for m in (1, 2, 3, 4)]
    for op, args, knobs in cases:
        with _Knobs(**knobs):
            got = op.impls["cuda"].fn(*args)
        exp = op.native(*args)
        for g, e in zip(got, exp, strict=True):
            same = _same_bits_or_both_nan(g, e)
            assert bool(same.all()), f"{op.name} {dtype} {knobs}: differs from native"
        assert bool(got[1].isnan().any()), f"{op.name} {knobs}: no NaN scale"


# ------------------------------------------------------------------ silu's checked reciprocal


@pytest.mark.parametrize(
    ("dtype", "form"),
    ((torch.bfloat16, 1), (torch.bfloat16, 3), (torch.float16, 1)),
    ids=("bf16-exp2", "bf16-rcp", "fp16-rcp"),
)
def test_silu_checked_forms_are_exhaustively_native(dtype: torch.dtype, form: int) -> None:
    """Every (x, u) pair of 16-bit patterns (2^32 for each dtype, NaNs,
    infinities, zeros and subnormals included): each checked form (knob
    silu_rcp 1: approximate exponential and reciprocal on bf16, native's expf
    and the approximate reciprocal on fp16; 3: the latter on bf16;
    activation.cu) gives the bits of silu_rcp 2 (the IEEE quotient), and that
    gives native's (a NaN where native has one). Each slab holds all 65536
    gates against 256 ups."""
    impl = ir.ops.silu_and_mul.impls["cuda"]
    gates = torch.arange(-32768, 32768, device=DEV, dtype=torch.int32).to(torch.int16)
    rows = 256
    x = torch.empty(rows, 2 * 65536, device=DEV, dtype=dtype)
    x[:, :65536] = gates.view(dtype)
    mismatched = 0
    for first in range(-32768, 32768, rows):
        ups = torch.arange(first, first + rows, device=DEV, dtype=torch.int32).to(torch.int16)
        x[:, 65536:] = ups.view(dtype)[:, None]
        with _Knobs(silu_rcp=form):
            got = impl(x)
        with _Knobs(silu_rcp=2):
            ieee = impl(x)
        mismatched += int((got.view(torch.int16) != ieee.view(torch.int16)).sum())
        if first % 8192 == 0:  # native on one slab in 32 (its float copies are slow)
            ok = _same_bits_or_both_nan(ieee, ir.ops.silu_and_mul.native(x))
            assert bool(ok.all()), f"{dtype} ups from {first}: IEEE form differs from native"
    assert mismatched == 0, f"{dtype} form {form}: {mismatched} of 2^32 pairs differ from IEEE"


@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_forms_are_bitwise_native_under_every_kernel(dtype: torch.dtype) -> None:
    """silu_and_mul against native, bits, for every launch shape (lean
    kernel's 16-, 8- and 4-byte pieces and one or two a thread; the former
    kernel, aligned and element-wise) and every quotient form (silu_rcp,
    act_div); inputs with zeros, infinities, NaN, tiny and huge values."""
    torch.manual_seed(0)
    impl = ir.ops.silu_and_mul.impls["cuda"]
    specials = torch.tensor(
        [0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-30, -1e-30, 88.5, -88.5, -100.0],
        device=DEV,
    )
    for rows, d in ((1, 7168), (3, 40), (300, 4096), (5, 14), (2, 8)):
        x = (torch.randn(rows, 2 * d, device=DEV) * 4).to(dtype)
        n = min(len(specials), d)
        x[0, :n] = specials[:n].to(dtype)
        x[-1, d : d + n] = specials[:n].to(dtype)
        for src in (x, _misaligned(x)):
            exp = ir.ops.silu_and_mul.native(src.contiguous())
            for knobs in (
                {},
                {"silu_rcp": 1},
                {"silu_rcp": 3},
                {"silu_rcp": 2},
                {"silu_rcp": 2, "act_div": 1},
                {"silu_rcp": 2, "act_div": 2},
                {"act_mode": 2},
                {"act_mode": 2, "silu_rcp": 1},
                {"act_mode": 2, "silu_rcp": 3},
                {"act_mode": 2, "silu_rcp": 2, "act_div": 2},
                {"ew_cpt": 2},
                {"ew_threads": 32},
            ):
                with _Knobs(**knobs):
                    got = impl.fn(src)
                same = _same_bits_or_both_nan(got, exp)
                assert bool(same.all()), f"{dtype} {rows}x{d} {knobs}: differs from native"
