"""Implementation of the conformance kit (see the package docstring)."""

from __future__ import annotations

import contextlib
import itertools
import unittest
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import registry
from ..op import IrOp
from ..providers import load_providers

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _device(device: torch.device | str | None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def default_dtypes() -> tuple[torch.dtype, ...]:
    """fp32, fp16 and bf16."""
    return FLOAT_DTYPES


def default_tokens(device: torch.device | str | None = None) -> tuple[int, ...]:
    """Token counts: zero, one, odd and (on a GPU) large enough for many blocks."""
    return (0, 1, 5, 33) if _device(device).type == "cpu" else (0, 1, 7, 128, 1031)


def default_hidden(device: torch.device | str | None = None) -> tuple[int, ...]:
    """Hidden sizes: a vector-friendly one, an odd one (no 16-byte multiple) and
    (on a GPU) model sizes including one that is not a power of two."""
    return (64, 200) if _device(device).type == "cpu" else (64, 1000, 4096, 5120, 8200)


def _as_op(op: IrOp | str) -> IrOp:
    return registry.get(op) if isinstance(op, str) else op


def _impl(op: IrOp, provider: str) -> Any:
    load_providers()
    try:
        impl = op.impls[provider]
    except KeyError:
        raise ValueError(
            f"op {op.name!r} has no provider {provider!r}; registered: "
            f"{', '.join(sorted(op.impls))}"
        ) from None
    if not impl.is_supported():
        raise unittest.SkipTest(
            f"{op.name}/{provider} is unsupported here: {impl.unsupported_reason}"
        )
    return impl


@contextlib.contextmanager
def poisoned_allocations() -> Iterator[None]:
    """Fill every fresh allocation (``torch.empty`` and friends, in Python and
    C++) with NaN (integers: their maximum) so unwritten output elements show."""
    det = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]


def _flatten(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _clone(args: Sequence[Any]) -> list[Any]:
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _row_strided(t: torch.Tensor, pad: int = 24) -> torch.Tensor:
    """The same values in a buffer whose rows are longer: a non-contiguous view."""
    if t.dim() < 2:
        return t
    buf = torch.empty(*t.shape[:-1], t.shape[-1] + pad, dtype=t.dtype, device=t.device)
    buf.normal_() if t.is_floating_point() else buf.zero_()
    view = buf[..., : t.shape[-1]]
    view.copy_(t)
    return view


def compare_outputs(op: IrOp, actual: Any, expected: Any) -> str | None:
    """``None`` when ``actual`` matches ``expected`` within the op's tolerances,
    else a one-line description of the first mismatch."""
    acts, exps = _flatten(actual), _flatten(expected)
    if len(acts) != len(exps):
        return f"returned {len(acts)} outputs, native returns {len(exps)}"
    for i, (a, e) in enumerate(zip(acts, exps, strict=False)):
        if e is None or a is None:
            if a is not e:
                return f"output {i}: {type(a).__name__} where native gives {type(e).__name__}"
            continue
        if a.shape != e.shape or a.dtype != e.dtype or a.device != e.device:
            return (
                f"output {i}: {tuple(a.shape)} {a.dtype} on {a.device}, native "
                f"{tuple(e.shape)} {e.dtype} on {e.device}"
            )
        if a.numel() == 0:
            continue
        atol, rtol = op.tolerances.get(e.dtype, (1e-5, 1e-5))
        af, ef = a.double(), e.double()
        if torch.isnan(af).any() and not torch.isnan(ef).any():
            return f"output {i}: NaN where native has none (unwritten elements?)"
        bad = ~torch.isclose(af, ef, atol=atol, rtol=rtol, equal_nan=True)
        if bad.any():
            idx = tuple(int(j) for j in bad.nonzero()[0])
            return (
                f"output {i}: {int(bad.sum())}/{a.numel()} elements off (atol={atol}, rtol={rtol}); "
                f"first at {idx}: got {af[idx].item():.6g}, native {ef[idx].item():.6g}; "
                f"max abs err {(af - ef).abs().max().item():.3g}"
            )
    return None


@dataclass
class CaseResult:
    """One generated case of a check."""

    description: str
    status: str  # "passed", "failed", "rejected"
    detail: str = ""


@dataclass
class CheckReport:
    """What a check ran: every case and its outcome."""

    op: str
    provider: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> list[CaseResult]:
        return [c for c in self.cases if c.status == "passed"]

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if c.status == "failed"]

    @property
    def rejected(self) -> list[CaseResult]:
        return [c for c in self.cases if c.status == "rejected"]

    def summary(self) -> str:
        return (
            f"{self.op}/{self.provider}: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.rejected)} rejected by supports_args"
        )

    def raise_on_failure(self) -> CheckReport:
        if self.failed:
            lines = [self.summary()] + [
                f"  FAIL {c.description}: {c.detail}" for c in self.failed[:20]
            ]
            raise AssertionError("\n".join(lines))
        if not self.passed:
            raise AssertionError(
                f"{self.summary()}: no case ran (supports_args rejected every input)"
            )
        return self


def _describe(
    op: IrOp, tokens: int, hidden: int, dtype: torch.dtype, variant: dict[str, Any], strided: bool
) -> str:
    extra = "".join(f", {k}={v}" for k, v in variant.items())
    return (
        f"{op.name}(tokens={tokens}, hidden={hidden}, {str(dtype).replace('torch.', '')}"
        f"{extra}{', row-strided' if strided else ''})"
    )


def check_impl(
    op: IrOp | str,
    provider: str,
    *,
    device: torch.device | str | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    tokens: Sequence[int] | None = None,
    hidden: Sequence[int] | None = None,
    variants: Sequence[dict[str, Any]] | None = None,
    strided: bool = True,
    seed: int = 0,
) -> CheckReport:
    """Compare ``provider``'s implementation of ``op`` with native.

    For every dtype x variant x tokens x hidden (and a row-strided copy of the
    activations when ``strided``): generate inputs, skip the case if
    ``supports_args`` rejects it, run native on clones, run the provider with
    fresh allocations poisoned, check outputs within tolerance and the inputs
    unchanged. Raises AssertionError listing failures, or if no case ran.
    """
    op = _as_op(op)
    impl = _impl(op, provider)
    dev = _device(device)
    if op.input_generator is None:
        raise ValueError(
            f"op {op.name!r} has no input generator; register one with op.register_input_generator"
        )
    report = CheckReport(op.name, provider)
    act_pos = [op.param_names.index(a) for a in op.activations]
    grid = itertools.product(
        dtypes or FLOAT_DTYPES,
        variants or op.test_variants,
        tokens or default_tokens(dev),
        hidden or default_hidden(dev),
        (False, True) if strided else (False,),
    )
    for n, (dtype, variant, t, h, strd) in enumerate(grid):
        desc = _describe(op, t, h, dtype, variant, strd)
        torch.manual_seed(seed + n)
        args = list(op.input_generator(t, h, dtype, dev, **variant))
        if strd:
            args = [
                _row_strided(a) if i in act_pos and isinstance(a, torch.Tensor) else a
                for i, a in enumerate(args)
            ]
        report.cases.append(_run_case(op, impl, args, dev, desc))
    return report.raise_on_failure()


def _run_case(op: IrOp, impl: Any, args: list[Any], dev: torch.device, desc: str) -> CaseResult:
    """One case: rejected if ``supports_args`` declines it; else native on
    clones, the provider's functional form with fresh allocations poisoned,
    then its outputs against native's and its inputs against their copies."""
    if not impl.accepts(*args):
        return CaseResult(desc, "rejected")
    expected = op.native(*_clone(args))
    before = _clone(args)
    try:
        with poisoned_allocations():
            actual = impl.functional_fn()(*args)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    except Exception as exc:
        return CaseResult(desc, "failed", f"raised {type(exc).__name__}: {exc}")
    problem = compare_outputs(op, actual, expected)
    if problem is None:
        for i, (a, b) in enumerate(zip(args, before, strict=False)):
            if isinstance(a, torch.Tensor) and not torch.equal(_bits(a), _bits(b)):
                problem = f"modified its input {op.param_names[i]!r} under the functional call"
                break
    return CaseResult(desc, "passed" if problem is None else "failed", problem or "")


def _inject_nonfinite(t: torch.Tensor) -> None:
    """Row 1 of ``t`` gets a NaN, row 2 +inf, row 3 -inf (near the start, at
    the end and in the middle of the row, flattened); row 0 and later rows
    stay finite."""
    for row, col, value in (
        (1, 0.03, float("nan")),
        (2, 1.0, float("inf")),
        (3, 0.5, -float("inf")),
    ):
        if t.shape[0] > row:
            flat = t[row].reshape(-1)
            flat[min(int(col * flat.numel()), flat.numel() - 1)] = value
            t[row] = flat.view(t[row].shape)


def check_nonfinite(
    op: IrOp | str,
    provider: str,
    *,
    device: torch.device | str | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    hidden: Sequence[int] | None = None,
    variants: Sequence[dict[str, Any]] | None = None,
) -> CheckReport:
    """Compare ``provider`` with native where the activations hold NaN and
    infinities.

    The first activation input gets a NaN in row 1, +inf in row 2 and -inf in
    row 3 (row 0 stays finite); the outputs must match native's as
    :func:`check_impl` compares them, NaN where native has NaN (a NaN in a
    reduced row or group spreads through it in native) and nowhere else, and
    the inputs must come back unchanged. Raises AssertionError listing
    failures, or if no case ran.
    """
    op = _as_op(op)
    impl = _impl(op, provider)
    dev = _device(device)
    if op.input_generator is None:
        raise ValueError(f"op {op.name!r} has no input generator")
    report = CheckReport(op.name, provider)
    first_act = op.param_names.index(op.activations[0])
    grid = itertools.product(
        dtypes or FLOAT_DTYPES,
        variants or op.test_variants,
        hidden or ((64, 200) if dev.type == "cpu" else (64, 4096, 5120)),
    )
    for n, (dtype, variant, h) in enumerate(grid):
        desc = _describe(op, 5, h, dtype, variant, False) + " with NaN and +-inf"
        torch.manual_seed(n)
        args = list(op.input_generator(5, h, dtype, dev, **variant))
        _inject_nonfinite(args[first_act])
        report.cases.append(_run_case(op, impl, args, dev, desc))
    return report.raise_on_failure()


_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Floating tensors as integers of their width, so that ``torch.equal``
    compares bit patterns (NaN equal to the same NaN; fp8 has no ``eq``)."""
    if t.is_floating_point() and t.dtype.itemsize in _INT_OF_SIZE:
        return t.view(_INT_OF_SIZE[t.dtype.itemsize])
    return t


def check_batch_invariance(
    op: IrOp | str,
    provider: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.bfloat16,
    hidden: int | None = None,
    rows: int | None = None,
    batch_sizes: Sequence[int] | None = None,
    seed: int = 0,
) -> CheckReport:
    """Prove bit for bit that each row's output does not depend on the batch.

    Runs the implementation on ``rows`` rows, then on sub-batches of several
    sizes at several offsets and on a permutation of the rows, and requires
    every row's outputs to be identical (bitwise) to the full run's.
    Per-row tensors are those whose first dimension equals ``rows``.
    """
    op = _as_op(op)
    impl = _impl(op, provider)
    dev = _device(device)
    if not impl.batch_invariant:
        raise ValueError(f"{op.name}/{provider} does not claim batch invariance")
    if op.input_generator is None:
        raise ValueError(f"op {op.name!r} has no input generator")
    gpu = dev.type != "cpu"
    rows = rows or (2048 if gpu else 48)
    hidden = hidden or (4096 if gpu else 96)
    sizes = batch_sizes or ((1, 2, 3, 17, 256, rows) if gpu else (1, 2, 3, 7, rows))
    torch.manual_seed(seed)
    args = list(op.input_generator(rows, hidden, dtype, dev))
    report = CheckReport(op.name, provider)
    if not impl.accepts(*args):
        raise AssertionError(
            f"{op.name}/{provider} rejects the batch-invariance inputs ({rows}x{hidden} {dtype})"
        )
    fn = impl.functional_fn()
    row_args = [
        i
        for i, a in enumerate(args)
        if isinstance(a, torch.Tensor) and a.dim() >= 1 and a.shape[0] == rows
    ]

    def run(select: torch.Tensor) -> list[Any]:
        sub = [a[select].contiguous() if i in row_args else a for i, a in enumerate(args)]
        return _flatten(fn(*sub))

    full = run(torch.arange(rows, device=dev))
    trials: list[tuple[str, torch.Tensor]] = []
    for b in sizes:
        for start in sorted({0, (rows - b) // 2, rows - b}):
            trials.append(
                (
                    f"rows {start}..{start + b - 1} as a batch of {b}",
                    torch.arange(start, start + b, device=dev),
                )
            )
    trials.append(("all rows permuted", torch.randperm(rows, device=dev)))
    for desc, select in trials:
        outs = run(select)
        problem = None
        for i, (o, f) in enumerate(zip(outs, full, strict=False)):
            if not isinstance(o, torch.Tensor) or o.dim() == 0 or f.shape[0] != rows:
                continue
            if not torch.equal(_bits(o), _bits(f[select])):
                diff = (o.float() - f[select].float()).abs().max().item()
                problem = f"output {i} differs from the full batch (max abs diff {diff:.3g})"
                break
        report.cases.append(
            CaseResult(desc, "passed" if problem is None else "failed", problem or "")
        )
    return report.raise_on_failure()


def check_opcheck(
    op: IrOp | str,
    *,
    device: torch.device | str | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    tokens: int = 3,
    hidden: int = 64,
) -> None:
    """``torch.library.opcheck`` of ``torch.ops.ir.<op>`` (and its
    ``maybe_inplace`` overload) on generated inputs, under the current priority."""
    op = _as_op(op)
    dev = _device(device)
    if op.input_generator is None:
        raise ValueError(f"op {op.name!r} has no input generator")
    for dtype in dtypes or FLOAT_DTYPES:
        for variant in op.test_variants:
            torch.manual_seed(0)
            args = tuple(op.input_generator(tokens, hidden, dtype, dev, **variant))
            torch.library.opcheck(op.torch_op.default, args)
            if op.inplace_schema is not None:
                torch.library.opcheck(op.torch_op.maybe_inplace, tuple(_clone(args)))


def conformance_cases(
    provider: str | None = None,
    ops: Sequence[str] | None = None,
    *,
    batch_invariant_only: bool = False,
) -> list[tuple[str, str]]:
    """``(op name, provider)`` pairs for pytest parametrisation: every
    registered non-native implementation, filtered by provider and op names.
    With ``batch_invariant_only``, only implementations that claim invariance
    of an op with a reduction (the ones :func:`check_batch_invariance` proves)."""
    load_providers()
    out = []
    for name, op in sorted(registry.ops().items()):
        if ops is not None and name not in ops:
            continue
        for p, impl in sorted(op.impls.items()):
            if p == "native" or (provider is not None and p != provider):
                continue
            if batch_invariant_only and not (impl.batch_invariant and op.has_reduction):
                continue
            out.append((name, p))
    return out
