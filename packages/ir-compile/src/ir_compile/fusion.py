"""Fusion passes written against IR ops (plain FX matching).

They run on the post-grad graph before lowering, while every IR op is still
one node, so they match ``torch.ops.ir.rms_norm`` and friends instead of the
shape of whatever kernel would implement them:

* ``add_rms_norm``: ``r = a + b; rms_norm(r, ...)`` -> ``fused_add_rms_norm(a, b, ...)``
  (other users of ``r`` read the fused op's new residual);
* ``add_rms_norm_quant``: ``fused_add_rms_norm(...)[0]`` fed only to
  ``static_scaled_fp8_quant`` -> ``fused_add_rms_norm_static_fp8_quant``;
* ``rms_norm_quant``: ``rms_norm`` fed only to ``static_scaled_fp8_quant`` ->
  ``rms_norm_static_fp8_quant``.

Each fused op's native implementation is exactly the unfused chain, so a
fusion changes which kernels may run, never the reference numbers. Only
functional (``.default``) overloads are matched, and only where the fused op
has the same arguments (no ``variance_size``, no broadcasting add, equal
dtypes).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable
from typing import Any

import torch
import torch.fx

from ir_core import registry

from . import _graph

logger = logging.getLogger(__name__)

#: Fusion names in the order they run.
FUSIONS = ("add_rms_norm", "add_rms_norm_quant", "rms_norm_quant")


def _ir(name: str) -> Any:
    return getattr(torch.ops.ir, name).default


def _bound(node: torch.fx.Node, name: str) -> tuple[Any, ...]:
    return registry.get(name)._bind(tuple(node.args), dict(node.kwargs))


def _is(node: Any, target: Any) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target is target


def _new_node(
    graph: torch.fx.Graph,
    before: torch.fx.Node,
    target: Any,
    args: tuple[Any, ...],
    meta_from: torch.fx.Node,
) -> torch.fx.Node:
    with graph.inserting_before(before):
        new = graph.call_function(target, args)
    new.meta["val"] = _graph.fake_run(target, args)
    for key in ("stack_trace", "nn_module_stack"):
        if key in meta_from.meta:
            new.meta[key] = meta_from.meta[key]
    return new


def _getitem(graph: torch.fx.Graph, node: torch.fx.Node, i: int) -> torch.fx.Node:
    with graph.inserting_after(node):
        item = graph.call_function(operator.getitem, (node, i))
    item.meta["val"] = node.meta["val"][i]
    return item


def _plain_add(node: Any) -> tuple[torch.fx.Node, torch.fx.Node] | None:
    """``(a, b)`` if ``node`` is ``a + b`` of two tensors of its own shape and dtype."""
    if not _is(node, torch.ops.aten.add.Tensor) or len(node.args) != 2:
        return None
    if node.kwargs.get("alpha", 1) != 1:
        return None
    a, b = node.args
    if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)):
        return None
    out, va, vb = _graph.val(node), _graph.val(a), _graph.val(b)
    if not all(isinstance(t, torch.Tensor) for t in (out, va, vb)):
        return None
    if not (va.dtype == vb.dtype == out.dtype and va.shape == vb.shape == out.shape):
        return None
    return a, b


def fuse_add_rms_norm(graph: torch.fx.Graph) -> int:
    """Residual add then ``rms_norm`` -> ``fused_add_rms_norm``. Returns the rewrite count."""
    count = 0
    rms, fused = _ir("rms_norm"), _ir("fused_add_rms_norm")
    for node in list(graph.nodes):
        if not _is(node, rms):
            continue
        x, weight, eps, variance_size = _bound(node, "rms_norm")
        pair = _plain_add(x)
        if pair is None:
            continue
        new = _new_node(graph, node, fused, (*pair, weight, eps, variance_size), node)
        out, residual = _getitem(graph, new, 0), _getitem(graph, new, 1)
        node.replace_all_uses_with(out)
        graph.erase_node(node)
        x.replace_all_uses_with(residual)
        graph.erase_node(x)
        count += 1
    return count


def fuse_add_rms_norm_quant(graph: torch.fx.Graph) -> int:
    """``fused_add_rms_norm`` whose output feeds only ``static_scaled_fp8_quant``
    -> ``fused_add_rms_norm_static_fp8_quant``."""
    count = 0
    quant, fused = _ir("static_scaled_fp8_quant"), _ir("fused_add_rms_norm")
    target = _ir("fused_add_rms_norm_static_fp8_quant")
    for node in list(graph.nodes):
        if not _is(node, quant):
            continue
        y, scale = _bound(node, "static_scaled_fp8_quant")
        if not (_is(y, operator.getitem) and y.args[1] == 0 and len(y.users) == 1):
            continue
        src = y.args[0]
        if not _is(src, fused):
            continue
        a, b, weight, eps, variance_size = _bound(src, "fused_add_rms_norm")
        if variance_size is not None:
            continue
        new = _new_node(graph, node, target, (a, b, weight, eps, scale), src)
        out, residual = _getitem(graph, new, 0), _getitem(graph, new, 1)
        node.replace_all_uses_with(out)
        graph.erase_node(node)
        graph.erase_node(y)
        for user in list(src.users):  # the residual getitem(s)
            user.replace_all_uses_with(residual)
            graph.erase_node(user)
        graph.erase_node(src)
        count += 1
    return count


def fuse_rms_norm_quant(graph: torch.fx.Graph) -> int:
    """``rms_norm`` whose output feeds only ``static_scaled_fp8_quant`` ->
    ``rms_norm_static_fp8_quant``."""
    count = 0
    quant, rms = _ir("static_scaled_fp8_quant"), _ir("rms_norm")
    target = _ir("rms_norm_static_fp8_quant")
    for node in list(graph.nodes):
        if not _is(node, quant):
            continue
        y, scale = _bound(node, "static_scaled_fp8_quant")
        if not (_is(y, rms) and len(y.users) == 1):
            continue
        x, weight, eps, variance_size = _bound(y, "rms_norm")
        if variance_size is not None:
            continue
        new = _new_node(graph, node, target, (x, weight, eps, scale), y)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        graph.erase_node(y)
        count += 1
    return count


_PASSES = {
    "add_rms_norm": fuse_add_rms_norm,
    "add_rms_norm_quant": fuse_add_rms_norm_quant,
    "rms_norm_quant": fuse_rms_norm_quant,
}


def run_fusions(graph: torch.fx.Graph, enabled: Iterable[str]) -> dict[str, int]:
    """Run the ``enabled`` fusions (in :data:`FUSIONS` order); returns rewrites per fusion."""
    from torch._inductor.pattern_matcher import stable_topological_sort

    wanted = set(enabled)
    counts: dict[str, int] = {}
    for name in FUSIONS:
        if name in wanted:
            counts[name] = _PASSES[name](graph)
            if counts[name]:
                logger.info("ir-compile: fusion %s rewrote %d site(s)", name, counts[name])
    if any(counts.values()):
        stable_topological_sort(graph)
    return counts
