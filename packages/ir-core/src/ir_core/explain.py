"""``op.explain(...)``: every candidate of a call, chosen or why it was skipped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .dispatch import resolve
from .priorities import Scope

if TYPE_CHECKING:
    from .op import IrOp


@dataclass(frozen=True)
class CandidateStatus:
    """One provider's fate for one call."""

    provider: str
    status: str  # "chosen", "skipped", "not reached"
    reason: str


@dataclass(frozen=True)
class Explanation:
    """The answer to "which implementation runs for this call, and why"."""

    op: str
    args: str
    priority: tuple[str, ...]
    source: str
    batch_invariant: bool
    chosen: str | None
    entries: tuple[CandidateStatus, ...]
    error: str | None = None

    def __str__(self) -> str:
        lines = [
            f"ir.ops.{self.op}({self.args})",
            f"  priority: {', '.join(self.priority)}  (from {self.source})",
            f"  batch-invariant mode: {'on' if self.batch_invariant else 'off'}",
        ]
        width = max([len(e.provider) for e in self.entries] + [8])
        for e in self.entries:
            mark = "->" if e.status == "chosen" else "  "
            lines.append(f"  {mark} {e.provider:<{width}}  {e.status:<11}  {e.reason}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


def describe_args(args: tuple[Any, ...], names: list[str]) -> str:
    """A short, tensor-aware description of a call's arguments."""
    parts = []
    for name, a in zip(names, args, strict=False):
        if isinstance(a, torch.Tensor):
            shape = "x".join(str(s) for s in a.shape) or "scalar"
            extra = "" if a.is_contiguous() else ", non-contiguous"
            parts.append(
                f"{name}=Tensor[{shape}, {str(a.dtype).replace('torch.', '')}, {a.device}{extra}]"
            )
        else:
            parts.append(f"{name}={a!r}")
    return ", ".join(parts)


def explain_call(op: IrOp, args: tuple[Any, ...], scope: Scope) -> Explanation:
    res = resolve(op, scope).for_call(args)  # a tuned table decides per bucket
    entries: list[CandidateStatus] = []
    chosen: str | None = None
    for provider, reason in res.skipped:
        entries.append(CandidateStatus(provider, "skipped", reason))
    for impl in res.candidates:
        if chosen is not None:
            entries.append(
                CandidateStatus(impl.provider, "not reached", f"{chosen} was chosen first")
            )
            continue
        try:
            ok = impl.accepts(*args)
            why = "supports_args rejected the arguments"
        except Exception as exc:
            ok, why = False, f"supports_args raised {type(exc).__name__}: {exc}"
        if ok:
            chosen = impl.provider
            how = (
                "appended: no listed provider accepts every call"
                if (impl.provider == "native" and res.native_appended)
                else (
                    "accepts every call" if impl.supports_args is None else "supports_args accepted"
                )
            )
            entries.append(CandidateStatus(impl.provider, "chosen", how))
        else:
            entries.append(CandidateStatus(impl.provider, "skipped", why))
    # order entries as in the priority list, then the appended native, then the rest
    order = {p: i for i, p in enumerate(res.priority)}
    entries.sort(key=lambda e: order.get(e.provider, len(order)))
    listed = {e.provider for e in entries}
    for provider, impl in sorted(op.impls.items()):
        if provider not in listed:
            entries.append(
                CandidateStatus(
                    provider,
                    "not listed",
                    "not in the priority list"
                    + ("" if impl.is_supported() else "; unsupported here"),
                )
            )
    error = None if chosen is not None else res.fallback_error
    return Explanation(
        op.name,
        describe_args(args, op.param_names),
        res.priority,
        res.source,
        res.batch_invariant,
        chosen,
        tuple(entries),
        error,
    )
