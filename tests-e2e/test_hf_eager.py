"""Tiny Hugging Face models moved onto IR ops (eager): same logits, same greedy
tokens, the IR ops really run, refusals are clear, restore() is exact."""

from __future__ import annotations

import pytest
import torch
from conftest import FAMILIES, TINY, tiny_model

import ir_core as ir
from ir_core.nn import RMSNorm
from ir_core.nn.hf import IrGatedMLP, UnsupportedModelError, patch_model, unpatch_model

pytest.importorskip("transformers")

LAYERS = TINY["num_hidden_layers"]
ATOL, RTOL = 1e-5, 1e-5


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _structure(model: torch.nn.Module) -> list[tuple[str, type, int]]:
    return [(n, type(m), id(m)) for n, m in model.named_modules()]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_logits_match_and_ir_ops_run(family: str, ids: torch.Tensor) -> None:
    model = tiny_model(family)
    ref = _logits(model, ids)
    handle = patch_model(model)
    norms = 2 * LAYERS + 1 + (2 * LAYERS if family == "qwen3" else 0)  # qwen3: q_norm, k_norm
    assert handle.replaced == {"rms_norm": norms, "mlp": LAYERS, "rotary": LAYERS}
    with ir.trace() as t:
        out = _logits(model, ids)
    calls = [r.op for r in t]
    assert calls.count("rms_norm") == norms
    assert calls.count("silu_and_mul") == LAYERS
    assert calls.count("rotary_embedding") == LAYERS
    assert set(t.providers()) == {"native"}  # the CPU platform's default priority
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=RTOL)
    handle.restore()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_greedy_generate_gives_same_tokens(family: str, ids: torch.Tensor) -> None:
    model = tiny_model(family)
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
    with patch_model(model), ir.trace() as t, torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
    assert ref.shape == (2, ids.shape[1] + 8)
    assert torch.equal(out, ref)
    assert t.providers("rotary_embedding")  # the decode steps went through IR too


def test_restore_gives_back_the_original_model(ids: torch.Tensor) -> None:
    model = tiny_model("qwen3")
    before, keys, ref = _structure(model), list(model.state_dict()), _logits(model, ids)
    handle = patch_model(model)
    assert list(model.state_dict()) == keys  # parameters are shared, not copied
    assert isinstance(model.model.norm, RMSNorm) and isinstance(
        model.model.layers[0].mlp, IrGatedMLP
    )
    assert isinstance(model.model.layers[0].self_attn.q_norm, RMSNorm)
    assert "forward" in vars(model.model.layers[0].self_attn)
    handle.restore()
    assert _structure(model) == before  # the very same module objects
    assert "forward" not in vars(model.model.layers[0].self_attn)
    assert torch.equal(_logits(model, ids), ref)
    with ir.trace() as t:
        _logits(model, ids)
    assert len(t) == 0  # nothing of IR is left
    handle.restore()  # idempotent
    unpatch_model(model)  # no-op on an unpatched model


def test_the_mapping_is_live_through_dispatch(ids: torch.Tensor) -> None:
    """A deliberately wrong provider, when prioritised, changes the logits:
    the patched model really dispatches (and stops doing so on restore)."""
    model = tiny_model("llama")
    ref = _logits(model, ids)

    @ir.ops.silu_and_mul.register_impl("e2e_wrong")
    def wrong(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:-1], x.shape[-1] // 2, dtype=x.dtype, device=x.device)

    try:
        with patch_model(model):
            with ir.priority(silu_and_mul=["e2e_wrong"]):
                assert not torch.allclose(_logits(model, ids), ref, atol=1e-3)
            torch.testing.assert_close(_logits(model, ids), ref, atol=ATOL, rtol=RTOL)
        with ir.priority(silu_and_mul=["e2e_wrong"]):
            assert torch.equal(_logits(model, ids), ref)
    finally:
        ir.ops.silu_and_mul.unregister_impl("e2e_wrong")


def test_gelu_tanh_activation_maps_to_gelu_and_mul(ids: torch.Tensor) -> None:
    model = tiny_model("llama", hidden_act="gelu_pytorch_tanh")
    ref = _logits(model, ids)
    with patch_model(model), ir.trace() as t:
        out = _logits(model, ids)
    assert "gelu_and_mul" in [r.op for r in t] and "silu_and_mul" not in [r.op for r in t]
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=RTOL)


def test_scaled_rope_maps_exactly(ids: torch.Tensor) -> None:
    """llama3 RoPE scaling: the op gets the model's own scaled cos/sin rows."""
    rope = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32,
        "rope_theta": 10000.0,
    }
    try:
        model = tiny_model("llama", rope_parameters=rope)
    except TypeError:  # transformers 4.x spells it rope_scaling
        model = tiny_model("llama", rope_scaling=rope)
    assert model.model.rotary_emb.rope_type == "llama3"
    ref = _logits(model, ids)
    with patch_model(model):
        torch.testing.assert_close(_logits(model, ids), ref, atol=ATOL, rtol=RTOL)


# ---------------------------------------------------------------- refusals


def _assert_refused(model: torch.nn.Module, match: str, **kw: bool) -> None:
    before = _structure(model)
    with pytest.raises(UnsupportedModelError, match=match):
        patch_model(model, **kw)
    assert _structure(model) == before
    assert not any("forward" in vars(m) for m in model.modules())
    assert getattr(model, "_ir_patch", None) is None


def test_refuses_an_unknown_model_type() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=32)
    _assert_refused(transformers.GPT2LMHeadModel(cfg), "model type 'gpt2'")


def test_refuses_an_unsupported_activation() -> None:
    _assert_refused(tiny_model("mistral", hidden_act="relu"), "hidden_act 'relu'")
    # without the MLP the rest still maps
    model = tiny_model("mistral", hidden_act="relu")
    with patch_model(model, mlp=False) as handle:
        assert handle.replaced["mlp"] == 0 and handle.replaced["rotary"] == LAYERS


def test_refuses_an_unsupported_rope_type() -> None:
    model = tiny_model("qwen2")
    model.model.rotary_emb.rope_type = "mrope"
    _assert_refused(model, "RoPE type 'mrope'")


def test_refuses_a_norm_whose_eps_disagrees_with_the_config() -> None:
    model = tiny_model("llama")
    model.model.layers[1].post_attention_layernorm.variance_epsilon = 1e-3
    _assert_refused(model, r"layers\.1\.post_attention_layernorm has epsilon 0\.001")


def test_refuses_to_patch_twice() -> None:
    model = tiny_model("llama")
    with patch_model(model), pytest.raises(UnsupportedModelError, match="already patched"):
        patch_model(model)
