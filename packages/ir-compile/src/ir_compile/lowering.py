"""``IrLoweringPass``: replace every ``torch.ops.ir`` node by the implementation
that eager dispatch would choose, traced into the graph.

How a node is lowered: the node's call is re-traced (``make_fx`` on its fake
values, functionalized, with Inductor's decompositions) while a dispatch mode
replaces every ``torch.ops.ir`` call by the implementation dispatch chooses
(effective priority, batch-invariant mode, ``supports_args`` on the fake
values), and the trace is inlined in place of the node.

* Native code becomes ATen ops that Inductor fuses; a kernel behind a custom
  op stays one call.
* Implementations run in their functional form: an ``inplace`` one gets
  clones of its activations, and functionalization turns its writes into
  ``copy``/``auto_functionalized`` nodes that Inductor's reinplacing pass
  handles, so results are those of the functional op.
* ``auto_functionalized(torch.ops.ir.<op>.maybe_inplace, ...)`` (how
  AOTAutograd functionalizes a ``maybe_inplace`` call) is traced through its
  dense form (clones of the mutated bases, then the call); the op's outputs
  come from the chosen implementation and the bases are left as they were,
  which ``maybe_inplace``'s contract (activations' contents are given up)
  allows. Writing into the bases in place tripped an Inductor CPU codegen bug
  (torch 2.15, ``KeyError`` in outer-loop fusion), and Inductor plans buffer
  reuse on its own.
* An implementation that calls IR ops is lowered recursively (up to
  :data:`MAX_DEPTH`); if a ``torch.ops.ir`` node were left, the pass raises
  :class:`IrLoweringError` naming the op.

Dynamic shapes: see :func:`choose_impl`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
import torch.fx
from torch._inductor.custom_graph_pass import CustomGraphPass
from torch.utils._python_dispatch import TorchDispatchMode

from ir_core import registry
from ir_core.errors import NoImplementationError
from ir_core.impl import IrOpImpl
from ir_core.providers import load_providers

from . import _graph
from .cache_key import cache_key
from .fusion import FUSIONS, run_fusions

logger = logging.getLogger(__name__)

MAX_ROUNDS = 4
#: Nesting limit of IR calls made by implementations while one node is lowered.
MAX_DEPTH = 16


class Decision(NamedTuple):
    """One lowering decision: graph node name, op name, chosen provider."""

    node: str
    op: str
    provider: str


class IrLoweringError(RuntimeError):
    """A ``torch.ops.ir`` node could not be lowered."""


# ---------------------------------------------------------------- dispatch


def _symbolic(x: Any) -> bool:
    if isinstance(x, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return not x.node.is_constant() if hasattr(x.node, "is_constant") else True
    if isinstance(x, torch.Tensor):
        return any(isinstance(s, torch.SymInt) for s in (*x.shape, *x.stride(), x.storage_offset()))
    return False


def _shape_env(values: Iterable[Any]) -> Any:
    for v in values:
        syms: list[Any] = []
        if isinstance(v, torch.Tensor):
            syms = [s for s in (*v.shape, *v.stride()) if isinstance(s, torch.SymInt)]
        elif isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            syms = [v]
        for s in syms:
            env = getattr(s.node, "shape_env", None)
            if env is not None:
                return env
    return None


def accepts_for_every_size(impl: IrOpImpl, args: Sequence[Any]) -> tuple[bool, bool]:
    """Evaluate ``impl.supports_args`` on symbolic-size fake values without
    adding guards. Returns ``(accepted at the size hints, depends on a symbolic size)``."""
    flat = [t for a in args for t in (a if isinstance(a, (list, tuple)) else (a,))]
    env = _shape_env(flat)
    if env is None or not hasattr(env, "evaluate_sym_node"):
        return impl.accepts(*args), env is not None
    dependent = False
    original = env.evaluate_sym_node

    def watch(sym_node: Any, *a: Any, **k: Any) -> Any:
        nonlocal dependent
        try:
            static = env._maybe_evaluate_static(sym_node.expr)
        except Exception:
            static = None
        if static is None:
            dependent = True
        return original(sym_node, *a, **k)

    env.evaluate_sym_node = watch
    try:
        with env.suppress_guards():
            ok = impl.accepts(*args)
    finally:
        del env.evaluate_sym_node  # back to the class's method
    return ok, dependent


def choose_impl(op: Any, args: Sequence[Any], *, inplace: bool) -> tuple[IrOpImpl, list[str]]:
    """The implementation eager dispatch would choose for fake ``args``, and
    notes on candidates skipped for dynamic shapes.

    Rule for symbolic sizes: a candidate whose ``supports_args`` reads a
    symbolic size (its answer could differ between sizes the compiled code
    will see) is skipped, without adding a guard. The chosen code then holds
    for every size, and a dynamic dimension never causes a recompile. A
    ``supports_args`` that reads only static sizes, dtypes, strides known to
    be static and so on is evaluated as in eager mode. One that raises on
    fake values (``data_ptr()``, ``.item()``) is skipped too.
    """
    # A tuned priority file picks the candidate list of the call's bucket
    # (ir_core.tuning.bucket_for has its own rule for symbolic sizes).
    resolution = op.resolution(inplace=inplace).for_call(tuple(args))
    symbolic = any(
        _symbolic(t) for a in args for t in (a if isinstance(a, (list, tuple)) else (a,))
    )
    notes: list[str] = []
    for impl in resolution.candidates:
        if impl.supports_args is None:
            return impl, notes
        try:
            if not symbolic:
                if impl.accepts(*args):
                    return impl, notes
                continue
            ok, dependent = accepts_for_every_size(impl, args)
        except Exception as exc:  # e.g. data_ptr() or .item() on a fake tensor
            notes.append(
                f"{impl.provider}: supports_args cannot be evaluated on fake values "
                f"({type(exc).__name__}: {exc}); skipped"
            )
            continue
        if dependent:
            notes.append(
                f"{impl.provider}: supports_args depends on a symbolic size; skipped "
                "(conservative rule for dynamic shapes)"
            )
            continue
        if ok:
            return impl, notes
    raise NoImplementationError(
        resolution.fallback_error or f"ir.ops.{op.name}: no implementation accepts the call"
    )


# ---------------------------------------------------------------- the pass


class IrLoweringPass(CustomGraphPass):
    """Inductor post-grad pass: (optional) fusions on IR ops, then lowering of
    every ``torch.ops.ir`` node to the implementation dispatch chooses.

    Install it as ``torch._inductor.config.post_grad_custom_post_pass`` or use
    :func:`ir_compile.backend`, which also composes it with a pass already set.

    Args:
        fusions: names from :data:`ir_compile.fusion.FUSIONS` to run before
            lowering (default: none; :func:`ir_compile.backend` turns all on).

    Attributes:
        decisions: one :class:`Decision` per lowered node, over all graphs this
            instance has processed.
        fusion_counts: rewrites done per fusion name.
    """

    def __init__(self, *, fusions: Iterable[str] = ()) -> None:
        self.fusions = tuple(fusions)
        unknown = [f for f in self.fusions if f not in FUSIONS]
        if unknown:
            raise ValueError(f"ir-compile: unknown fusion(s) {unknown}; known: {list(FUSIONS)}")
        self.decisions: list[Decision] = []
        self.notes: list[str] = []
        self.fusion_counts: dict[str, int] = dict.fromkeys(self.fusions, 0)

    def __repr__(self) -> str:
        return f"IrLoweringPass(fusions={list(self.fusions)})"

    def uuid(self) -> str:
        """Cache key over priorities, batch-invariant mode, provider packages,
        implementation sources and this pass's options (see :mod:`ir_compile.cache_key`)."""
        return cache_key({"pass": "IrLoweringPass", "fusions": sorted(self.fusions)})

    def __call__(self, graph: torch.fx.Graph) -> None:
        load_providers()
        if self.fusions:
            for name, count in run_fusions(graph, self.fusions).items():
                self.fusion_counts[name] = self.fusion_counts.get(name, 0) + count
        for _ in range(MAX_ROUNDS):
            nodes = [n for n in graph.nodes if _graph.ir_overload(n) is not None]
            if not nodes:
                break
            for node in nodes:
                self._lower(graph, node)
        left = [n for n in graph.nodes if _graph.ir_overload(n) is not None]
        if left:
            names = sorted({_graph.op_name(_graph.ir_overload(n)) for n in left})  # type: ignore[arg-type]
            raise IrLoweringError(
                f"ir-compile: torch.ops.ir node(s) left after lowering: ops {names} "
                f"(nodes {[n.name for n in left]}); an implementation keeps calling "
                "IR ops"
            )
        graph.lint()

    # ------------------------------------------------------------ lowering

    def _lower(self, graph: torch.fx.Graph, node: torch.fx.Node) -> None:
        target = node.target
        inputs, rebuild = _graph.flat_node_inputs(tuple(node.args), dict(node.kwargs))
        node_name = node.name
        if target is not _graph.ir_overload(node):
            # auto_functionalized(ir op, ...): run its dense form (clone the mutated
            # bases, call the op on them); the mode lowers that call.
            from torch._higher_order_ops import auto_functionalize as af

            v2 = getattr(torch.ops.higher_order, "auto_functionalized_v2", None)
            call: Any = (
                af.auto_functionalized_v2_dense if target is v2 else af.auto_functionalized_dense
            )
        else:
            call = target

        def replacement(*values: Any) -> Any:
            a, k = rebuild(values)
            with _LowerIrMode(self, node_name):
                return call(*a, **k)

        _graph.replace_node_with_traced(graph, node, replacement, inputs)

    def _record(
        self, node_name: str, op_name: str, overload: str, impl: IrOpImpl, notes: list[str]
    ) -> None:
        self.decisions.append(Decision(node_name, op_name, impl.provider))
        for note in notes:
            self.notes.append(f"{node_name} ({op_name}): {note}")
            logger.info("ir-compile: %s (%s): %s", node_name, op_name, note)
        logger.info(
            "ir-compile: lowered %s: ir.%s.%s -> %s", node_name, op_name, overload, impl.provider
        )


class _LowerIrMode(TorchDispatchMode):  # type: ignore[no-untyped-call,misc]
    """While a node's replacement is traced: every ``torch.ops.ir`` call (the
    node's own, or one an implementation makes) runs the implementation that
    dispatch chooses for its (fake) arguments, so no IR op reaches the trace."""

    def __init__(self, owner: IrLoweringPass, node_name: str, depth: int = 0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.owner = owner
        self.node_name = node_name
        self.depth = depth

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if not (isinstance(func, torch._ops.OpOverload) and func.namespace == _graph.NAMESPACE):
            return func(*args, **kwargs)
        name = _graph.op_name(func)
        if self.depth >= MAX_DEPTH:
            raise IrLoweringError(
                f"ir-compile: lowering node {self.node_name} nests torch.ops.ir.{name} calls "
                f"{MAX_DEPTH} deep; an implementation of {name} keeps calling IR ops"
            )
        try:
            op = registry.get(name)
        except Exception as exc:
            raise IrLoweringError(
                f"ir-compile: node {self.node_name} calls torch.ops.ir.{name}, which is not a "
                "registered IR op"
            ) from exc
        inplace = func._overloadname == "maybe_inplace"
        full = op._bind(tuple(args), dict(kwargs))
        try:
            impl, notes = choose_impl(op, full, inplace=inplace)
        except NoImplementationError as exc:
            raise IrLoweringError(
                f"ir-compile: cannot lower node {self.node_name} (torch.ops.ir.{name}): {exc}"
            ) from exc
        self.owner._record(self.node_name, name, func._overloadname, impl, notes)
        fn = impl.functional_fn()
        with _LowerIrMode(self.owner, self.node_name, self.depth + 1):
            return fn(*full)
