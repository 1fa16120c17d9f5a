"""Shape buckets of a call: which row of a tuned table applies to it.

A call's bucket is read from one tensor argument, the op's *bucket tensor*:
its first activation (see :func:`ir_core.register_op`), else its first
``Tensor`` parameter. With ``hidden = t.shape[-1]`` and
``tokens = t.numel() // hidden`` (every leading dimension counts as tokens),
the bucket is ``(t.dtype, hidden, tokens.bit_length())``:

- token bucket ``b`` holds ``2**(b-1) <= tokens < 2**b`` (bucket 0 holds 0
  tokens, bucket 1 one token, bucket 5 16..31 tokens, ...);
- hidden sizes are exact (a table row per measured ``hidden``); a hidden
  size that was not measured uses the nearest measured one (ratio-wise) if
  it is within a factor of 2, else the untuned priority.

This module is pure: the eager dispatcher and the lowering pass (on fake
tensors) get the same answer from :func:`bucket_for`.

Symbolic (dynamic) dimensions, as the lowering pass sees under
``torch.compile(dynamic=True)``: the rule is evaluated over the whole value
range the shape environment knows for the token count, so the result is a
*range* of buckets ``(lo, hi)``. A tuned table applies only when every bucket
in that range picks the same priority list; otherwise the untuned priority
applies (never a guess from one size hint, which would specialise a graph
shared by every batch size). A symbolic hidden size always gives ``None``
(untuned).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from ..op import IrOp

#: Token buckets are ``int.bit_length()`` values, so 64 cover every count.
MAX_BUCKET = 63


class Bucket(NamedTuple):
    """The bucket of one call: dtype, exact hidden size and an inclusive range
    of token buckets (``lo == hi`` for a concrete token count)."""

    dtype: torch.dtype
    hidden: int
    lo: int
    hi: int

    @property
    def concrete(self) -> bool:
        return self.lo == self.hi


def token_bucket(tokens: int) -> int:
    """The token bucket of a token count: ``tokens.bit_length()``."""
    return min(int(tokens).bit_length(), MAX_BUCKET)


def bucket_tokens(bucket: int) -> tuple[int, int]:
    """Inclusive token range ``(first, last)`` of a token bucket."""
    if bucket <= 0:
        return (0, 0)
    return (1 << (bucket - 1), (1 << bucket) - 1)


def bucket_param(op: IrOp) -> int | None:
    """Position of ``op``'s bucket tensor among its parameters (``None`` when
    the op has no plain or optional ``Tensor`` parameter: it cannot be tuned)."""
    if op.activations:
        return op.param_names.index(op.activations[0])
    for i, name in enumerate(op.param_names):
        if op.tensor_kinds.get(name) in ("tensor", "optional"):
            return i
    return None


def _int_range(value: Any) -> tuple[int, int | None] | None:
    """``(lo, hi)`` of an int or SymInt (``hi`` None when unbounded); None if unknown."""
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, torch.SymInt):
        node = value.node
        try:
            hint = node.maybe_as_int() if hasattr(node, "maybe_as_int") else None
            if hint is not None:
                return (int(hint), int(hint))
            env = node.shape_env
            if env is None:
                return (0, None)
            vr = env.bound_sympy(node.expr)
            lo = int(vr.lower) if vr.lower.is_finite else 0
            hi = int(vr.upper) if vr.upper.is_finite else None
            return (max(lo, 0), hi)
        except Exception:
            return (0, None)
    return None


def bucket_for(op: IrOp, args: tuple[Any, ...] | list[Any]) -> Bucket | None:
    """The bucket of a call of ``op`` with positional ``args`` (defaults filled),
    or ``None`` when the call has no tunable shape (no bucket tensor, a
    0-dimensional one, an empty last dimension, or a symbolic hidden size).

    Works on real, fake and symbolic-shaped tensors; see the module docstring
    for the rule.
    """
    pos = bucket_param(op)
    if pos is None or pos >= len(args):
        return None
    t = args[pos]
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return None
    hidden = t.shape[-1]
    if not isinstance(hidden, int):
        return None  # symbolic hidden size: untuned
    if hidden <= 0:
        return None
    numel = t.numel()
    if isinstance(numel, int):
        b = token_bucket(numel // hidden)
        return Bucket(t.dtype, hidden, b, b)
    rng = _int_range(numel)
    if rng is None:
        return None
    lo, hi = rng
    return Bucket(
        t.dtype,
        hidden,
        token_bucket(lo // hidden),
        MAX_BUCKET if hi is None else token_bucket(hi // hidden),
    )
