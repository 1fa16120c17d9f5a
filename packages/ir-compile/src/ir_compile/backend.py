"""``ir_compile.backend()``: a ``torch.compile`` backend, Inductor plus the IR passes.

    model = torch.compile(model, backend=ir_compile.backend())

The IR pass goes into Inductor's ``post_grad_custom_post_pass`` slot for the
duration of each compile. A pass already there (set by the user or another
library, a single pass or a list) is kept: both run, in one
:class:`ComposedPass` whose ``uuid()`` combines theirs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass

from .fusion import FUSIONS
from .lowering import Decision, IrLoweringPass

logger = logging.getLogger(__name__)


class ComposedPass(CustomGraphPass):
    """Several post-grad passes run in order as one.

    ``uuid()`` hashes every member's uuid; if a member has none (a plain
    callable, or a pass whose ``uuid()`` is ``None``), it is ``None``, which
    makes Inductor bypass its cache: correct, since nothing keys that member.
    """

    def __init__(self, passes: Sequence[Callable[[torch.fx.Graph], None]]) -> None:
        self.passes = tuple(passes)

    def __repr__(self) -> str:
        return f"ComposedPass({list(self.passes)!r})"

    def __call__(self, graph: torch.fx.Graph) -> None:
        for p in self.passes:
            p(graph)

    def uuid(self) -> str | None:
        h = hashlib.sha256()
        for p in self.passes:
            uid = p.uuid() if isinstance(p, CustomGraphPass) else None
            if uid is None:
                return None
            h.update(type(p).__qualname__.encode())
            h.update(uid if isinstance(uid, bytes) else repr(uid).encode())
        return h.hexdigest()


def compose(existing: Any, ir_pass: IrLoweringPass, *, user_first: bool = True) -> Any:
    """The post-grad pass value running ``existing`` (``None``, a pass or a
    list of passes) and ``ir_pass``; the user's passes first unless ``user_first=False``."""
    if existing is None:
        return ir_pass
    users = list(existing) if isinstance(existing, (list, tuple)) else [existing]
    passes = [*users, ir_pass] if user_first else [ir_pass, *users]
    return ComposedPass(passes)


class IrBackend:
    """A ``torch.compile`` backend: Inductor with the IR passes (see :func:`backend`).

    Attributes:
        passes: the :class:`IrLoweringPass` made for each graph compiled so far.
        compiles: how many graphs it compiled (a recompile adds one).
    """

    def __init__(
        self,
        *,
        fuse_add_rms_norm: bool = True,
        fuse_add_rms_norm_quant: bool = True,
        fuse_rms_norm_quant: bool = True,
        mode: str | None = None,
        options: dict[str, Any] | None = None,
        user_pass_first: bool = True,
    ) -> None:
        flags = {
            "add_rms_norm": fuse_add_rms_norm,
            "add_rms_norm_quant": fuse_add_rms_norm_quant,
            "rms_norm_quant": fuse_rms_norm_quant,
        }
        self.fusions = tuple(name for name in FUSIONS if flags[name])
        self.mode = mode
        self.options = dict(options or {})
        self.user_pass_first = user_pass_first
        self.passes: list[IrLoweringPass] = []

    def __repr__(self) -> str:
        return (
            f"IrBackend(fusions={list(self.fusions)}, mode={self.mode!r}, options={self.options!r})"
        )

    @property
    def compiles(self) -> int:
        return len(self.passes)

    @property
    def decisions(self) -> list[Decision]:
        """Every lowering decision of every graph compiled so far."""
        return [d for p in self.passes for d in p.decisions]

    def config_patches(self, ir_pass: IrLoweringPass) -> dict[str, Any]:
        """Inductor config patches for one compile: ``mode``'s options, ``options``,
        and the post-grad pass slot holding ``ir_pass`` composed with what was there."""
        from torch._inductor import config, list_mode_options

        patches: dict[str, Any] = {}
        if self.mode is not None:
            patches.update(list_mode_options(self.mode))
        patches.update(self.options)
        existing = patches.pop("post_grad_custom_post_pass", config.post_grad_custom_post_pass)
        patches["post_grad_custom_post_pass"] = compose(
            existing, ir_pass, user_first=self.user_pass_first
        )
        return patches

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
        from torch._inductor.compile_fx import compile_fx

        ir_pass = IrLoweringPass(fusions=self.fusions)
        self.passes.append(ir_pass)
        return compile_fx(gm, list(example_inputs), config_patches=self.config_patches(ir_pass))


def backend(
    *,
    fuse_add_rms_norm: bool = True,
    fuse_add_rms_norm_quant: bool = True,
    fuse_rms_norm_quant: bool = True,
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    user_pass_first: bool = True,
) -> IrBackend:
    """A ``torch.compile`` backend: Inductor plus the IR fusion and lowering passes.

    Args:
        fuse_add_rms_norm: residual add + ``rms_norm`` -> ``fused_add_rms_norm``.
        fuse_add_rms_norm_quant: ``fused_add_rms_norm`` + ``static_scaled_fp8_quant``
            -> ``fused_add_rms_norm_static_fp8_quant``.
        fuse_rms_norm_quant: ``rms_norm`` + ``static_scaled_fp8_quant`` ->
            ``rms_norm_static_fp8_quant``.
        mode: an Inductor mode (``"reduce-overhead"`` for CUDA graphs,
            ``"max-autotune"``, ...); ``torch.compile``'s own ``mode=`` only
            applies to its built-in Inductor backend, so give it here.
        options: further Inductor config patches (as ``torch.compile(options=...)``).
        user_pass_first: a ``post_grad_custom_post_pass`` already set runs before
            the IR passes (it sees IR ops) or, if False, after them (it sees
            the lowered code).
    """
    return IrBackend(
        fuse_add_rms_norm=fuse_add_rms_norm,
        fuse_add_rms_norm_quant=fuse_add_rms_norm_quant,
        fuse_rms_norm_quant=fuse_rms_norm_quant,
        mode=mode,
        options=options,
        user_pass_first=user_pass_first,
    )
