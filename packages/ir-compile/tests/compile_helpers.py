"""Helpers for ir-compile tests: a cheap stand-in for Inductor's post-grad
graph (``make_fx`` with fake values) and graph inspection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.fx.experimental.proxy_tensor import make_fx


def trace(
    fn: Callable[..., Any], *args: Any, mode: str = "fake", functionalize: bool = False
) -> torch.fx.GraphModule:
    """A graph of ``fn`` whose nodes carry fake values in ``meta['val']``, like
    Inductor's post-grad graph. ``functionalize`` wraps mutating custom ops in
    ``auto_functionalized`` as AOTAutograd does."""
    if functionalize:
        from torch._subclasses.functional_tensor import dispatch_functionalize

        fn = dispatch_functionalize(fn)
    return make_fx(fn, tracing_mode=mode)(*args)


def ir_targets(gm: torch.fx.GraphModule) -> list[str]:
    """Names of the ``torch.ops.ir`` overloads called in ``gm`` (auto_functionalized included)."""
    from ir_compile._graph import ir_overload

    out = []
    for n in gm.graph.nodes:
        o = ir_overload(n)
        if o is not None:
            out.append(f"{o._schema.name.split('::')[1]}.{o._overloadname}")
    return out


def run_pass(gm: torch.fx.GraphModule, p: Any) -> torch.fx.GraphModule:
    p(gm.graph)
    gm.recompile()
    return gm
