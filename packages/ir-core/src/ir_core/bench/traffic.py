"""Bytes each op must move: the denominator of the benchmark's GB/s.

The count is the minimum traffic of a perfect kernel: every input element it
needs read once and every output element written once (an inplace kernel
writes its outputs over its inputs, which moves the same bytes). Extra passes
a real kernel makes (e.g. reading ``x`` twice for a reduction) are not
counted, so GB/s compares implementations against the same ideal.

Built-in ops are listed in :data:`BYTES_MOVED`; an out-of-tree op uses its
``op.bytes_moved(*args)`` if it set one, else :func:`inputs_and_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..op import IrOp

#: ``fn(args, outputs) -> bytes`` (positional args as the op takes them,
#: outputs as native returns them).
BytesFn = Callable[[Sequence[Any], Any], int]


def nbytes(t: Any) -> int:
    """Size in bytes of a tensor (0 for anything else, ``None`` included)."""
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def _flat(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def inputs_and_outputs(args: Sequence[Any], outputs: Any) -> int:
    """Every tensor argument read once plus every output written once."""
    return sum(nbytes(a) for a in args) + sum(nbytes(o) for o in _flat(outputs))


def _rotary(args: Sequence[Any], outputs: Any) -> int:
    """Positions, the cache rows they select (not the whole cache), and
    query/key read and written once each."""
    positions, query, key, _head_size, cache, _is_neox = args
    rows = int(positions.numel() * cache.shape[-1] * cache.element_size())
    return nbytes(positions) + rows + 2 * (nbytes(query) + nbytes(key))


#: Per-op byte counts of the built-in ops. Norms read x (and the residual),
#: the weight once, and write the output (and the new residual); gated
#: activations read ``[T, 2H]`` and write ``[T, H]``; quantisers read x and
#: the scale(s) and write fp8 values (and float32 scales).
BYTES_MOVED: dict[str, BytesFn] = {
    "rms_norm": inputs_and_outputs,
    "fused_add_rms_norm": inputs_and_outputs,
    "silu_and_mul": inputs_and_outputs,
    "gelu_and_mul": inputs_and_outputs,
    "static_scaled_fp8_quant": inputs_and_outputs,
    "dynamic_per_token_scaled_fp8_quant": inputs_and_outputs,
    "per_token_group_quant_fp8": inputs_and_outputs,
    "rms_norm_static_fp8_quant": inputs_and_outputs,
    "fused_add_rms_norm_static_fp8_quant": inputs_and_outputs,
    "rotary_embedding": _rotary,
}


def bytes_moved(op: IrOp, args: Sequence[Any], outputs: Any) -> int:
    """Bytes ``op`` must move for a call with ``args`` that returned ``outputs``."""
    fn = BYTES_MOVED.get(op.name)
    if fn is not None:
        return int(fn(args, outputs))
    if op.bytes_moved is not None:
        return int(op.bytes_moved(*args))
    return inputs_and_outputs(args, outputs)
