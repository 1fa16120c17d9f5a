"""Measuring providers: :func:`tune` (what ``ir tune`` writes) and
:func:`compare` (tuned dispatch against fixed priorities)."""

from __future__ import annotations

import datetime
import functools
import logging
import platform as _pyplatform
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import registry
from ..bench.timing import best_of_rounds
from ..providers import load_providers
from .buckets import bucket_param
from .table import (
    DEFAULT_MARGIN,
    FORMAT,
    FORMAT_VERSION,
    device_key,
    dtype_name,
    load_priority,
    provider_key,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: The key of tuned dispatch among the configurations :func:`compare` times.
_TUNED = "<tuned>"


def _device(device: torch.device | str | None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def tunable_ops(names: Sequence[str] | None = None) -> list[Any]:
    """The ops to tune: ``names`` (all registered ops with an input generator
    and a tensor argument when empty)."""
    load_providers()
    if names:
        ops = [registry.get(n) for n in names]
        for op in ops:
            if op.input_generator is None:
                raise ValueError(f"op {op.name!r} has no input generator, so it cannot be tuned")
            if bucket_param(op) is None:
                raise ValueError(f"op {op.name!r} has no tensor argument to bucket its calls by")
        return ops
    return [
        op
        for _, op in sorted(registry.ops().items())
        if op.input_generator is not None and bucket_param(op) is not None
    ]


def _environment() -> dict[str, str]:
    env = {"python": _pyplatform.python_version(), "torch": torch.__version__}
    try:
        import triton

        env["triton"] = triton.__version__
    except Exception:
        pass
    if torch.version.cuda:
        env["cuda"] = str(torch.version.cuda)
    return env


def _bound(fn: Callable[..., Any], args: Sequence[Any]) -> Callable[[], Any]:
    return lambda: fn(*args)


def _shape_of(op: Any, inputs: Sequence[Any]) -> tuple[int, int]:
    """(tokens, hidden) of the bucket tensor, as dispatch sees them."""
    t = inputs[bucket_param(op)]  # type: ignore[index]
    hidden = int(t.shape[-1]) if t.dim() else 1
    return (t.numel() // hidden if hidden else 0), hidden


def _run_providers(
    op: Any,
    inputs: Sequence[Any],
    device: torch.device,
    providers: Sequence[str] | None,
    check: bool,
    budget_s: float,
) -> tuple[dict[str, float], dict[str, str]]:
    from ..testing.kit import compare_outputs

    skipped: dict[str, str] = {}
    timed: list[tuple[str, Callable[[], Any], None]] = []
    expected = op.native(*inputs) if check else None
    for name, impl in sorted(op.impls.items()):
        if providers and name not in providers:
            continue
        if not impl.is_supported():
            skipped[name] = f"unsupported here: {impl.unsupported_reason}"
            continue
        try:
            if not impl.accepts(*inputs):
                skipped[name] = "supports_args rejected the arguments"
                continue
            fn = impl.functional_fn()
            if check:
                problem = compare_outputs(op, fn(*inputs), expected)
                if problem is not None:
                    skipped[name] = f"wrong result, not timed: {problem}"
                    logger.warning(
                        "ir tune: %s/%s gives a wrong result: %s", op.name, name, problem
                    )
                    continue
            fn(*inputs)  # a call that raises is skipped here, not in the timing rounds
        except Exception as exc:
            skipped[name] = f"raised {type(exc).__name__}: {exc}"
            logger.warning("ir tune: %s/%s raised %s: %s", op.name, name, type(exc).__name__, exc)
            continue
        timed.append((name, _bound(fn, inputs), None))
    times = best_of_rounds(timed, device, budget_s=budget_s) if timed else {}
    return {k: round(v * 1e6, 3) for k, v in times.items()}, skipped


def tune(
    ops: Sequence[str] | None = None,
    *,
    tokens: Sequence[int],
    hidden: Sequence[int],
    dtypes: Sequence[torch.dtype] = (torch.bfloat16,),
    device: torch.device | str | None = None,
    providers: Sequence[str] | None = None,
    check: bool = True,
    budget_s: float = 0.02,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Time every supported provider of each op (native included) at every
    (dtype, hidden, tokens) on ``device`` and return the tuned priority file's
    JSON (see :mod:`ir_core.tuning.table`).

    ``hidden`` is passed to the op's input generator (for ``silu_and_mul`` the
    input is twice as wide; entries record the width dispatch sees).
    ``providers`` limits the providers timed (default: all). With ``check``, a
    provider whose output differs from native's is not timed (so never
    chosen). Each timing is the best of a few interleaved rounds over
    ``budget_s``. ``margin`` is stored in the file's settings (see
    :func:`ir_core.tuning.table.rank`).
    """
    dev = _device(device)
    chosen = tunable_ops(ops)
    entries: list[dict[str, Any]] = []
    recorded: dict[str, dict[str, dict[str, Any]]] = {}
    with torch.no_grad():
        for op in chosen:
            for dtype in dtypes:
                for h in hidden:
                    for t in tokens:
                        inputs = op.input_generator(t, h, dtype, dev)
                        n_tokens, width = _shape_of(op, inputs)
                        times, skipped = _run_providers(op, inputs, dev, providers, check, budget_s)
                        for p in times:
                            recorded.setdefault(op.name, {})[p] = provider_key(op, p)
                        entry = {
                            "op": op.name,
                            "dtype": dtype_name(dtype),
                            "hidden": width,
                            "tokens": n_tokens,
                            "times_us": times,
                        }
                        if skipped:
                            entry["skipped"] = skipped
                        entries.append(entry)
                        if progress is not None:
                            best = min(times, key=times.__getitem__) if times else "-"
                            progress(
                                f"{op.name:<22} {dtype_name(dtype):<9} {n_tokens:>7} x {width:<6} "
                                f"best {best:<8} "
                                + "  ".join(
                                    f"{p}={v:.2f}us"
                                    for p, v in sorted(times.items(), key=lambda kv: kv[1])
                                )
                            )
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_key(dev),
        "providers": recorded,
        "environment": _environment(),
        "settings": {
            "tokens": list(tokens),
            "hidden": list(hidden),
            "dtypes": [dtype_name(d) for d in dtypes],
            "check": check,
            "budget_s": budget_s,
            "margin": margin,
        },
        "entries": entries,
    }


def compare(
    path: str,
    ops: Sequence[str] | None = None,
    *,
    tokens: Sequence[int],
    hidden: Sequence[int],
    dtypes: Sequence[torch.dtype] = (torch.bfloat16,),
    device: torch.device | str | None = None,
    fixed: Sequence[Sequence[str]] = (("cuda", "native"), ("triton", "native"), ("native",)),
    budget_s: float = 0.02,
    rounds: int = 3,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Time dispatch (``op(*inputs)``) with the tuned file at ``path`` applied,
    and under each fixed priority (a scoped priority, which beats the tuned
    table), at every shape. Configurations are timed interleaved, ``rounds``
    times each, keeping each one's best median. Returns one row per shape. The
    tuned table stays loaded afterwards."""
    from ..priorities import effective_priority, priority

    dev = _device(device)
    load_priority(path)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for op in tunable_ops(ops):
            source = effective_priority(op.name)[1]
            if source in ("scoped", "process"):
                raise ValueError(
                    f"ir tune --compare: a {source} priority for {op.name!r} is set, so the "
                    "tuned table would not apply; unset it (IR_OP_PRIORITY?)"
                )
            for dtype in dtypes:
                for h in hidden:
                    for t in tokens:
                        inputs = op.input_generator(t, h, dtype, dev)
                        n_tokens, width = _shape_of(op, inputs)
                        row: dict[str, Any] = {
                            "op": op.name,
                            "dtype": dtype_name(dtype),
                            "hidden": width,
                            "tokens": n_tokens,
                            "fixed": {},
                            "fixed_provider": {},
                        }
                        row["tuned_provider"] = op.dispatch(*inputs).provider
                        known = registry.known_providers()
                        configs: list[tuple[str, Any]] = [(_TUNED, None)]
                        for names in fixed:
                            if all(n in known for n in names):
                                label = ",".join(names)
                                configs.append(
                                    (label, functools.partial(priority, {op.name: list(names)}))
                                )
                                with priority({op.name: list(names)}):
                                    row["fixed_provider"][label] = op.dispatch(*inputs).provider
                        best = best_of_rounds(
                            [(key, _bound(op, inputs), scope) for key, scope in configs],
                            dev,
                            budget_s=budget_s,
                            rounds=rounds,
                        )
                        row["tuned_us"] = round(best.pop(_TUNED) * 1e6, 3)
                        row["fixed"] = {k: round(v * 1e6, 3) for k, v in best.items()}
                        rows.append(row)
                        if progress is not None:
                            progress(
                                f"{op.name:<22} {row['dtype']:<9} {n_tokens:>7} x {width:<6} tuned "
                                f"{row['tuned_provider']}={row['tuned_us']:.2f}us  "
                                + "  ".join(
                                    f"[{k}]{row['fixed_provider'][k]}={v:.2f}us"
                                    for k, v in row["fixed"].items()
                                )
                            )
    return rows


def compare_markdown(
    rows: Sequence[dict[str, Any]], *, tolerance: float = 0.03, title: str = ""
) -> str:
    """A markdown table of :func:`compare` rows; a shape passes when tuned
    dispatch is within ``tolerance`` of the best fixed priority (timing noise)."""
    labels: list[str] = []
    for r in rows:
        for k in r["fixed"]:
            if k not in labels:
                labels.append(k)
    head = [
        "op",
        "dtype",
        "tokens",
        "hidden",
        "tuned (provider)",
        *[f"[{k}] us" for k in labels],
        "best fixed",
        "tuned / best",
        "same provider",
        "ok",
    ]
    lines = [
        f"# {title}" if title else "",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
    ]
    passed = same_count = 0
    worst = 0.0
    for r in rows:
        best_label = min(r["fixed"], key=r["fixed"].__getitem__) if r["fixed"] else None
        best = r["fixed"][best_label] if best_label else float("nan")
        ratio = r["tuned_us"] / best if best_label else float("nan")
        ok = bool(best_label) and ratio <= 1 + tolerance
        passed += ok
        same = bool(best_label) and r["fixed_provider"].get(best_label) == r["tuned_provider"]
        same_count += same
        worst = max(worst, ratio) if best_label else worst
        lines.append(
            "| "
            + " | ".join(
                [
                    r["op"],
                    r["dtype"],
                    str(r["tokens"]),
                    str(r["hidden"]),
                    f"{r['tuned_us']:.2f} ({r['tuned_provider']})",
                    *[f"{r['fixed'][k]:.2f}" if k in r["fixed"] else "-" for k in labels],
                    f"{best:.2f} [{best_label}]",
                    f"{ratio:.3f}",
                    "yes" if same else f"no ({r['fixed_provider'].get(best_label)})",
                    "yes" if ok else "NO",
                ]
            )
            + " |"
        )
    lines += [
        "",
        f"Tuned dispatch within {tolerance:.0%} of the best fixed priority at {passed}/{len(rows)} "
        f"shapes; worst ratio {worst:.3f}. Tuned dispatch ran the provider of the best fixed priority "
        f"at {same_count}/{len(rows)} shapes (where it did, a difference is timing noise plus the "
        "per-call bucket lookup).",
        "",
    ]
    return "\n".join(lines).lstrip("\n")
