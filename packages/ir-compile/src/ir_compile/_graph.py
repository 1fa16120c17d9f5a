"""FX helpers: recognise IR nodes, and replace a node by a traced function.

The replacement is traced with ``make_fx`` on the node's fake values (under
the graph's fake mode, with Inductor's decomposition table) and inlined in
front of the node, so the new nodes are the same core ATen ops (or opaque
custom-op calls) that Inductor's post-grad graph holds everywhere else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx
from torch.utils import _pytree as pytree

logger = logging.getLogger(__name__)

NAMESPACE = "ir"


def _auto_functionalized_targets() -> tuple[Any, ...]:
    hops = torch.ops.higher_order
    return tuple(
        getattr(hops, n)
        for n in ("auto_functionalized", "auto_functionalized_v2")
        if hasattr(hops, n)
    )


def ir_overload(node: torch.fx.Node) -> torch._ops.OpOverload | None:
    """The ``torch.ops.ir.*`` overload a node calls: directly, or wrapped in
    ``auto_functionalized`` (how a ``maybe_inplace`` call looks after
    AOTAutograd's functionalization). ``None`` for every other node."""
    if node.op != "call_function":
        return None
    target = node.target
    if isinstance(target, torch._ops.OpOverload) and target.namespace == NAMESPACE:
        return target
    if target in _auto_functionalized_targets() and node.args:
        inner = node.args[0]
        if isinstance(inner, torch._ops.OpOverload) and inner.namespace == NAMESPACE:
            return inner
    return None


def op_name(overload: torch._ops.OpOverload) -> str:
    """``rms_norm`` for ``torch.ops.ir.rms_norm.default``."""
    return overload._schema.name.split("::", 1)[1]


def val(x: Any) -> Any:
    """The fake value behind a node (``meta['val']``), or ``x`` itself."""
    if isinstance(x, torch.fx.Node):
        if "val" in x.meta:
            return x.meta["val"]
        if "example_value" in x.meta:
            return x.meta["example_value"]
        raise RuntimeError(
            f"ir-compile: node {x.name} has no meta['val'] (fake value); "
            "the IR passes need a graph with fake values (Inductor post-grad)"
        )
    return x


def fake_mode_of(values: Sequence[Any]) -> Any:
    """The fake mode of the first fake tensor among ``values`` (or ``None``)."""
    from torch._guards import detect_fake_mode

    return detect_fake_mode(list(values))


def fake_run(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None
) -> Any:
    """Run ``fn`` on the fake values of node ``args`` (for a new node's ``meta['val']``)."""
    vals = torch.fx.map_arg((tuple(args), kwargs or {}), val)
    mode = fake_mode_of(pytree.tree_leaves(vals))
    with mode if mode is not None else contextlib.nullcontext():
        return fn(*vals[0], **vals[1])


def flat_node_inputs(
    args: Any, kwargs: Any
) -> tuple[list[torch.fx.Node], Callable[[Sequence[Any]], Any]]:
    """The nodes among ``(args, kwargs)`` and a function rebuilding ``(args, kwargs)``
    with those nodes replaced by the values given (in the same order)."""
    leaves, spec = pytree.tree_flatten((args, kwargs))
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.fx.Node)]
    nodes = [leaves[i] for i in positions]

    def rebuild(values: Sequence[Any]) -> Any:
        new = list(leaves)
        for i, v in zip(positions, values, strict=True):
            new[i] = v
        return pytree.tree_unflatten(new, spec)

    return nodes, rebuild


def _trace(fn: Callable[..., Any], example: Sequence[Any]) -> torch.fx.GraphModule:
    """``make_fx`` of ``fn`` on ``example`` under their fake mode, functionalized
    (mutations become functional ops or ``auto_functionalized`` calls, as in
    the rest of the post-grad graph) and decomposed with Inductor's table."""
    from torch._dispatch.python import enable_python_dispatcher
    from torch._inductor.decomposition import select_decomp_table
    from torch._subclasses.functional_tensor import FunctionalTensorMode, dispatch_functionalize
    from torch.fx.experimental.proxy_tensor import make_fx

    mode = fake_mode_of(example)
    functional = dispatch_functionalize(fn, FunctionalTensorMode())
    with mode if mode is not None else contextlib.nullcontext(), enable_python_dispatcher():
        return make_fx(functional, select_decomp_table(), tracing_mode="real")(*example)


def replace_node_with_traced(
    graph: torch.fx.Graph,
    node: torch.fx.Node,
    fn: Callable[..., Any],
    inputs: Sequence[torch.fx.Node],
) -> list[torch.fx.Node]:
    """Trace ``fn(*fake values of inputs)`` and inline it in place of ``node``.

    ``fn``'s output must have the structure of ``node``'s value: a tensor (or
    other single value) for a single-output node, a tuple for a node whose
    users are ``getitem`` nodes. Returns the inserted nodes.
    """
    example = [val(n) for n in inputs]
    gm = _trace(fn, example)
    env: dict[torch.fx.Node, Any] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(inputs):
        raise RuntimeError(
            f"ir-compile: traced replacement of {node.name} has {len(placeholders)} "
            f"inputs, expected {len(inputs)}"
        )
    env.update(zip(placeholders, inputs, strict=True))
    added: list[torch.fx.Node] = []
    result: Any = None
    owner = graph.owning_module
    with graph.inserting_before(node):
        for n in gm.graph.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "output":
                result = torch.fx.map_arg(n.args[0], lambda a: env[a])
                continue
            if n.op == "get_attr":
                if owner is None:
                    raise RuntimeError(
                        "ir-compile: a traced impl holds a constant but the graph "
                        "has no owning module"
                    )
                attr = getattr(gm, str(n.target))
                name = _unique_attr(owner, f"_ir_const_{n.target}")
                setattr(owner, name, attr)
                new = graph.get_attr(name)
            elif n.op == "call_function":
                new = graph.call_function(
                    n.target,
                    torch.fx.map_arg(n.args, lambda a: env[a]),
                    torch.fx.map_arg(n.kwargs, lambda a: env[a]),
                )
            else:
                raise RuntimeError(f"ir-compile: unexpected {n.op} node in a traced impl")
            for key in ("val", "tensor_meta", "example_value"):
                if key in n.meta:
                    new.meta[key] = n.meta[key]
            for key in ("stack_trace", "nn_module_stack", "source_fn_stack", "original_aten"):
                if key in node.meta and key not in new.meta:
                    new.meta[key] = node.meta[key]
            env[n] = new
            added.append(new)
    _rewire(graph, node, result)
    return added


def _unique_attr(owner: torch.nn.Module, base: str) -> str:
    name, i = base, 0
    while hasattr(owner, name):
        i += 1
        name = f"{base}_{i}"
    return name


def _rewire(graph: torch.fx.Graph, node: torch.fx.Node, result: Any) -> None:
    """Point ``node``'s users at ``result`` and erase ``node``."""
    import operator

    if isinstance(result, (tuple, list)):
        for user in list(node.users):
            if user.op == "call_function" and user.target is operator.getitem:
                index = user.args[1]
                assert isinstance(index, int)
                new = result[index]
                if isinstance(new, torch.fx.Node):
                    user.replace_all_uses_with(new)
                elif user.users:
                    raise RuntimeError(
                        f"ir-compile: output {user.args[1]} of {node.name} is "
                        f"{new!r} in the replacement but has users"
                    )
                graph.erase_node(user)
            else:
                raise RuntimeError(
                    f"ir-compile: {node.name} returns several values but its user "
                    f"{user.name} is not a getitem"
                )
    elif isinstance(result, torch.fx.Node):
        node.replace_all_uses_with(result)
    elif node.users:
        raise RuntimeError(
            f"ir-compile: replacement of {node.name} returned {result!r}, which "
            "cannot stand for a node with users"
        )
    graph.erase_node(node)
