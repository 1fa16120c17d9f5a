"""Shared helpers of the end-to-end tests: tiny, randomly initialised Hugging
Face models built from configs (nothing is downloaded), the example provider
package, and the ``ir_compile`` backend."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import ir_core as ir

#: family -> (config class name, model class name)
FAMILIES: dict[str, tuple[str, str]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
}

TINY = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


def tiny_model(family: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A tiny randomly initialised causal LM of ``family`` in eval mode (fp32, CPU).

    Every RMSNorm weight is randomised too (they start at ones), so a wrong
    mapping of the norm cannot hide behind a weight of one.
    """
    transformers = pytest.importorskip("transformers")
    config_cls, model_cls = (getattr(transformers, n) for n in FAMILIES[family])
    torch.manual_seed(seed)
    config = config_cls(**{**TINY, **overrides})
    config._attn_implementation = "eager"
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def example_installed() -> bool:
    return importlib.util.find_spec("ir_provider_example") is not None


needs_example = pytest.mark.skipif(
    not example_installed(),
    reason="examples/ir-provider-example is not installed (nox -s tests-e2e installs it)",
)


def ir_backend() -> Callable[..., Any]:
    """A fresh ``ir_compile.backend()`` (Inductor plus the IR fusion and lowering passes)."""
    import ir_compile

    return ir_compile.backend()


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    """No compiled artefact from an earlier test or run: a cache hit would skip
    the IR passes (and their recorded decisions) that the tests inspect."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    with (
        inductor_config.patch(fx_graph_cache=False),
        functorch_config.patch(enable_autograd_cache=False),
    ):
        yield
    torch._dynamo.reset()


@pytest.fixture
def ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, TINY["vocab_size"], (2, 7), generator=g)


@pytest.fixture(autouse=True)
def _no_leaked_priority() -> Iterator[None]:
    yield
    ir.set_priority(None)
    ir.set_batch_invariant(None)
