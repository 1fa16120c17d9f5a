"""Move a Hugging Face ``transformers`` causal LM onto IR ops, reversibly.

    from ir_core.nn.hf import patch_model
    handle = patch_model(model)      # RMSNorm, gated MLP activation, rotary -> IR ops
    ...                              # eager or torch.compile: the IR ops dispatch
    handle.restore()                 # the original modules and forwards, exactly

Supported families: Llama, Qwen2, Qwen3 (including its per-head ``q_norm`` /
``k_norm``) and Mistral. What is mapped, and how:

* every ``<Family>RMSNorm`` becomes :class:`ir_core.nn.RMSNorm` sharing the
  same weight parameter (``ir.ops.rms_norm``); its epsilon must equal
  ``config.rms_norm_eps``;
* every ``<Family>MLP`` becomes a gated MLP sharing ``gate_proj``, ``up_proj``
  and ``down_proj`` whose activation is ``ir.ops.silu_and_mul`` (``hidden_act``
  ``silu``/``swish``) or ``ir.ops.gelu_and_mul`` (``gelu``, or
  ``gelu_pytorch_tanh`` with ``approximate="tanh"``);
* every ``<Family>Attention`` keeps its own forward (projections, KV cache,
  attention kernel), except that its call of ``apply_rotary_pos_emb`` goes to
  ``ir.ops.rotary_embedding`` (NeoX style). The op gets the cos/sin rows the
  model's own rotary module computed, one cache row per token, so every RoPE
  scaling that module implements in the standard layout maps exactly; the
  layout (``cos = cat(c, c)``, a full ``head_dim``) is verified on the model
  before anything changes.

Anything else (another model type, activation or RoPE type, a module that does
not look as expected) raises :class:`UnsupportedModelError` naming it, and the
model is left untouched. ``transformers`` is imported only when patching.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import ops
from ..errors import IrError
from .modules import GeluAndMul, RMSNorm, SiluAndMul

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "IrPatch",
    "UnsupportedModelError",
    "patch_model",
    "unpatch_model",
]

#: ``config.model_type`` -> class-name prefix of its modules.
SUPPORTED_MODEL_TYPES: dict[str, str] = {
    "llama": "Llama",
    "qwen2": "Qwen2",
    "qwen3": "Qwen3",
    "mistral": "Mistral",
}

#: ``config.hidden_act`` -> (IR activation module factory, description).
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": SiluAndMul,
    "swish": SiluAndMul,
    "gelu": lambda: GeluAndMul("none"),
    "gelu_pytorch_tanh": lambda: GeluAndMul("tanh"),
}

#: RoPE types whose Hugging Face rotary module yields ``cos = cat(c, c)`` rows
#: applied with ``rotate_half`` (NeoX style) in these families.
SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn", "longrope")

_ROTARY_NAME = "apply_rotary_pos_emb"
_PATCH_ATTR = "_ir_patch"


class UnsupportedModelError(IrError, ValueError):
    """The model (or a part of it) cannot be mapped onto IR ops."""


class IrGatedMLP(nn.Module):
    """``down_proj(act_and_mul(cat(gate_proj(x), up_proj(x))))``, sharing the
    projections of the Hugging Face MLP it replaces."""

    def __init__(
        self, gate_proj: nn.Module, up_proj: nn.Module, down_proj: nn.Module, act: nn.Module
    ) -> None:
        super().__init__()
        self.gate_proj = gate_proj
        self.up_proj = up_proj
        self.down_proj = down_proj
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.down_proj(
            self.act(torch.cat((self.gate_proj(x), self.up_proj(x)), dim=-1))
        )
        return out


def ir_apply_rotary_pos_emb(
    q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, unsqueeze_dim: int = 1
) -> tuple[Tensor, Tensor]:
    """Drop-in for Hugging Face's ``apply_rotary_pos_emb`` through
    ``ir.ops.rotary_embedding`` (NeoX style).

    ``q``/``k`` are ``[batch, heads, seq, head_dim]`` (``unsqueeze_dim=1``) or
    ``[batch, seq, heads, head_dim]`` (``unsqueeze_dim=2``); ``cos``/``sin`` are
    ``[batch or 1, seq, head_dim]`` with duplicated halves. Each token's
    ``(cos, sin)`` half-rows form one row of the op's cache, and token ``i``
    reads row ``i``.
    """
    if unsqueeze_dim == 1:
        qt, kt = q.transpose(1, 2), k.transpose(1, 2)
    elif unsqueeze_dim == 2:
        qt, kt = q, k
    else:
        raise UnsupportedModelError(
            f"apply_rotary_pos_emb: unsqueeze_dim={unsqueeze_dim} is not mapped (expected 1 or 2)"
        )
    b, s, hq, d = qt.shape
    hk = kt.shape[2]
    if cos.shape[-1] != d:
        raise UnsupportedModelError(
            f"apply_rotary_pos_emb: cos/sin have {cos.shape[-1]} features for "
            f"head_dim {d}; partial rotary is not mapped"
        )
    half = d // 2
    cache = torch.cat(
        (cos[..., :half].expand(b, s, half), sin[..., :half].expand(b, s, half)), dim=-1
    )
    positions = torch.arange(b * s, device=q.device)
    qr, kr = ops.rotary_embedding(
        positions,
        qt.reshape(b * s, hq, d),
        kt.reshape(b * s, hk, d),
        d,
        cache.reshape(b * s, d),
        True,
    )
    assert kr is not None
    qr, kr = qr.view(b, s, hq, d), kr.view(b, s, hk, d)
    if unsqueeze_dim == 1:
        return qr.transpose(1, 2), kr.transpose(1, 2)
    return qr, kr


# --------------------------------------------------------------- the handle


@dataclass
class IrPatch:
    """What :func:`patch_model` changed; :meth:`restore` undoes it exactly.

    Attributes: ``model``; ``replaced`` (``{"rms_norm": n, "mlp": n,
    "rotary": n}``); ``modules`` (qualified names of the replaced modules).
    Usable as a context manager (restores on exit).
    """

    model: nn.Module
    replaced: dict[str, int] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    _swaps: list[tuple[nn.Module, str, nn.Module]] = field(default_factory=list, repr=False)
    _forwards: list[tuple[nn.Module, Any]] = field(default_factory=list, repr=False)
    active: bool = True

    def restore(self) -> None:
        """Put back every original module and forward (idempotent)."""
        if not self.active:
            return
        for parent, name, original in reversed(self._swaps):
            setattr(parent, name, original)
        for module, previous in reversed(self._forwards):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self.model.__dict__.pop(_PATCH_ATTR, None)
        self.active = False
        logger.info("ir: restored %s", type(self.model).__name__)

    def __enter__(self) -> IrPatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


# ------------------------------------------------------------------ checks


def _family(model: nn.Module) -> tuple[Any, str]:
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"patch_model: model type {model_type!r} ({type(model).__name__}) is not supported; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return config, SUPPORTED_MODEL_TYPES[model_type]


def _norm_eps(module: nn.Module, name: str, config: Any) -> float:
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    weight = getattr(module, "weight", None)
    if eps is None or not isinstance(weight, nn.Parameter) or weight.dim() != 1:
        raise UnsupportedModelError(
            f"patch_model: {name} ({type(module).__name__}) has no 1-d weight "
            "and epsilon; it does not look like an RMSNorm"
        )
    expected = getattr(config, "rms_norm_eps", None)
    if expected is not None and float(eps) != float(expected):
        raise UnsupportedModelError(
            f"patch_model: {name} has epsilon {eps}, config.rms_norm_eps is "
            f"{expected}; refusing to guess which one is meant"
        )
    return float(eps)


def _activation(config: Any, mlp: nn.Module, name: str) -> nn.Module:
    act = getattr(config, "hidden_act", None)
    if act not in _ACTIVATIONS:
        raise UnsupportedModelError(
            f"patch_model: hidden_act {act!r} has no IR gated activation; "
            f"supported: {', '.join(_ACTIVATIONS)}"
        )
    from transformers.activations import ACT2FN

    if type(getattr(mlp, "act_fn", None)) is not type(ACT2FN[act]):
        raise UnsupportedModelError(
            f"patch_model: {name}.act_fn is {type(getattr(mlp, 'act_fn', None)).__name__}, "
            f"not the {act!r} activation the config names"
        )
    for proj in ("gate_proj", "up_proj", "down_proj"):
        if not isinstance(getattr(mlp, proj, None), nn.Module):
            raise UnsupportedModelError(f"patch_model: {name} has no {proj}; not a gated MLP")
    return _ACTIVATIONS[act]()


def _rope_type(model: nn.Module, config: Any) -> str:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = (
        params.get("rope_type", params.get("type", "default"))
        if isinstance(params, dict)
        else "default"
    )
    for _, m in model.named_modules():
        if hasattr(m, "rope_type") and hasattr(m, "inv_freq"):
            rope_type = m.rope_type
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"patch_model: RoPE type {rope_type!r} is not mapped onto "
            f"ir.ops.rotary_embedding; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
        )
    return str(rope_type)


def _check_rope_layout(model: nn.Module, head_dim: int) -> None:
    """Run the model's rotary module on a few positions: rows must be
    ``cat(c, c)`` over the full head (the NeoX layout the op's cache encodes)."""
    for name, m in model.named_modules():
        if not (hasattr(m, "inv_freq") and type(m).__name__.endswith("RotaryEmbedding")):
            continue
        inv = m.inv_freq
        if inv.is_meta:
            continue
        with torch.no_grad():
            probe = torch.zeros(1, dtype=torch.float32, device=inv.device)
            cos, sin = m(probe, torch.arange(4, device=inv.device)[None])
        half = cos.shape[-1] // 2
        if cos.shape[-1] != head_dim or not (
            torch.equal(cos[..., :half], cos[..., half:])
            and torch.equal(sin[..., :half], sin[..., half:])
        ):
            raise UnsupportedModelError(
                f"patch_model: {name} ({type(m).__name__}) yields cos/sin rows of {cos.shape[-1]} "
                f"features for head_dim {head_dim} not in the duplicated-halves (NeoX) layout; "
                "the rotary embedding cannot be mapped"
            )


def _ir_forward(forward: Any, cls_name: str, cache: dict[Any, Any]) -> Callable[..., Any]:
    """A copy of the attention class's forward whose global
    ``apply_rotary_pos_emb`` is :func:`ir_apply_rotary_pos_emb` (one per class)."""
    fn = getattr(forward, "__func__", forward)
    if fn in cache:
        return cache[fn]  # type: ignore[no-any-return]
    code = getattr(fn, "__code__", None)
    if code is None or hasattr(fn, "__wrapped__") or _ROTARY_NAME not in code.co_names:
        raise UnsupportedModelError(
            f"patch_model: {cls_name}.forward does not call {_ROTARY_NAME} directly (this transformers "
            "version's attention differs); pass rotary=False to map the rest"
        )
    glob = dict(fn.__globals__)
    glob[_ROTARY_NAME] = ir_apply_rotary_pos_emb
    new = types.FunctionType(code, glob, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__doc__ = fn.__doc__
    cache[fn] = new
    return new


def _parent(model: nn.Module, qualname: str) -> tuple[nn.Module, str]:
    path, _, leaf = qualname.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def _modules(model: nn.Module, suffix: str, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(qualified name, module)`` of each module of class ``<prefix><suffix>``
    (typed ``Any``: Hugging Face modules are read by attribute)."""
    for name, m in list(model.named_modules()):
        if type(m).__name__ == f"{prefix}{suffix}":
            yield name, m


# -------------------------------------------------------------------- API


def patch_model(
    model: nn.Module, *, norms: bool = True, mlp: bool = True, rotary: bool = True
) -> IrPatch:
    """Move ``model`` (a Llama, Qwen2, Qwen3 or Mistral ``transformers``
    model) onto IR ops and return the handle that restores it.

    Everything is checked before anything changes: an
    :class:`UnsupportedModelError` leaves the model as it was. ``norms``,
    ``mlp`` and ``rotary`` select what is mapped.
    """
    if getattr(model, _PATCH_ATTR, None) is not None:
        raise UnsupportedModelError(
            "patch_model: this model is already patched; restore() it first"
        )
    config, prefix = _family(model)
    handle = IrPatch(model)
    swaps: list[tuple[str, nn.Module, nn.Module]] = []  # (qualname, original, replacement)
    forwards: list[tuple[nn.Module, Any]] = []

    if norms:
        for name, m in _modules(model, "RMSNorm", prefix):
            eps = _norm_eps(m, name, config)
            swaps.append((name, m, RMSNorm(m.weight.shape[0], eps, weight=m.weight)))
    if mlp:
        for name, m in _modules(model, "MLP", prefix):
            act = _activation(config, m, name)
            swaps.append((name, m, IrGatedMLP(m.gate_proj, m.up_proj, m.down_proj, act)))
    if rotary:
        _rope_type(model, config)
        attns = list(_modules(model, "Attention", prefix))
        if attns:
            _check_rope_layout(model, int(attns[0][1].head_dim))
        per_class: dict[Any, Any] = {}
        for _, m in attns:
            new = _ir_forward(type(m).forward, type(m).__name__, per_class)
            forwards.append((m, new))
    counts = {
        "rms_norm": sum(isinstance(r, RMSNorm) for _, _, r in swaps),
        "mlp": sum(isinstance(r, IrGatedMLP) for _, _, r in swaps),
        "rotary": len(forwards),
    }
    for what, enabled in (("rms_norm", norms), ("mlp", mlp), ("rotary", rotary)):
        if enabled and counts[what] == 0:
            raise UnsupportedModelError(
                f"patch_model: found no {prefix} module to map for {what} in {type(model).__name__}"
            )

    # every check passed: apply
    for name, original, replacement in swaps:
        parent, leaf = _parent(model, name)
        setattr(parent, leaf, replacement)
        handle._swaps.append((parent, leaf, original))
        handle.modules.append(name)
    for m, new in forwards:
        handle._forwards.append((m, m.__dict__.get("forward")))
        m.forward = types.MethodType(new, m)
    handle.replaced = counts
    model.__dict__[_PATCH_ATTR] = handle
    logger.info("ir: patched %s: %s", type(model).__name__, counts)
    return handle


def unpatch_model(model: nn.Module) -> None:
    """Restore a model patched by :func:`patch_model` (no-op if it is not)."""
    handle = model.__dict__.get(_PATCH_ATTR)
    if handle is not None:
        handle.restore()
