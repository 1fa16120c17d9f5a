"""The patched model under ``torch.compile(backend=ir_compile.backend())``:
same logits as the unmodified model, no IR op left in the compiled code, the
prioritised providers chosen by the lowering, greedy tokens unchanged.

Kept few: each compile costs tens of seconds on a 2-core CPU (one layer only).
"""

from __future__ import annotations

import torch
from conftest import example_installed, ir_backend, tiny_model

import ir_core as ir
from ir_core.nn.hf import patch_model

ATOL, RTOL = 1e-4, 1e-4  # Inductor fuses and reorders float32 arithmetic


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def test_compiled_logits_match_and_no_ir_op_is_left(ids: torch.Tensor) -> None:
    backend = ir_backend()
    model = tiny_model("llama", num_hidden_layers=1)
    ref = _logits(model, ids)
    norms = ("rms_norm", "fused_add_rms_norm")
    prio = {op: ["example", "native"] for op in norms} if example_installed() else {}
    with patch_model(model), ir.priority(prio):
        compiled = torch.compile(model, backend=backend)
        out = _logits(compiled, ids)
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=RTOL)
        # A torch.ops.ir node left in the compiled code would dispatch at run
        # time, and every such call is recorded by ir.trace().
        with ir.trace() as t:
            again = _logits(compiled, ids)
        assert len(t) == 0, f"IR ops ran at run time, not lowered:\n{t}"
        torch.testing.assert_close(again, out, atol=0, rtol=0)
    # The lowering's decisions: every IR op of the model, each by its prioritised provider.
    chosen = {(d.op, d.provider) for d in backend.decisions}
    norm = "example" if example_installed() else "native"
    assert {op for op, _ in chosen} >= {"silu_and_mul", "rotary_embedding"}
    # ir-compile's fusion pass turns the decoder's residual add + rms_norm into fused_add_rms_norm
    assert "fused_add_rms_norm" in {op for op, _ in chosen}
    for op, provider in chosen:
        expected = norm if op in norms else "native"
        assert provider == expected, f"{op} lowered to {provider}, priority says {expected}"


def test_compiled_code_uses_the_prioritised_provider(ids: torch.Tensor) -> None:
    """A deliberately wrong silu_and_mul provider, prioritised: the compiled
    model computes what the eager patched model computes with it, not the
    reference (the lowering chose it), and native again once it is not."""
    backend = ir_backend()
    model = tiny_model("qwen3", num_hidden_layers=1)
    ref = _logits(model, ids)

    @ir.ops.silu_and_mul.register_impl("e2e_wrong")
    def wrong(x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        return (x[..., :d] * 0.5).to(x.dtype)

    try:
        with patch_model(model), ir.priority(silu_and_mul=["e2e_wrong", "native"]):
            eager_wrong = _logits(model, ids)
            assert not torch.allclose(eager_wrong, ref, atol=1e-3)
            compiled = _logits(torch.compile(model, backend=backend), ids)
            torch.testing.assert_close(compiled, eager_wrong, atol=ATOL, rtol=RTOL)
        assert {d.provider for d in backend.decisions if d.op == "silu_and_mul"} == {"e2e_wrong"}
    finally:
        ir.ops.silu_and_mul.unregister_impl("e2e_wrong")


def test_compiled_greedy_generate_gives_same_tokens(ids: torch.Tensor) -> None:
    backend = ir_backend()
    model = tiny_model("mistral", num_hidden_layers=1)
    kw = dict(
        attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False, pad_token_id=0
    )
    with torch.no_grad():
        ref = model.generate(ids, **kw)
        with patch_model(model):
            model.forward = torch.compile(model.forward, backend=backend)
            try:
                out = model.generate(ids, **kw)
            finally:
                del model.forward
    assert torch.equal(out, ref)
