"""Tuned priority files: format, validation against this machine, and lookup.

A file written by ``ir tune`` (format ``ir-tune``, version 1)::

    {
      "format": "ir-tune", "version": 1, "created": "2026-...Z",
      "device": {"platform": "cuda", "name": "NVIDIA H100 80GB HBM3", "capability": [9, 0]},
      "providers": {"rms_norm": {"cuda": {"package": "ir-kernels-cuda", "version": "0.1.0"}, ...}},
      "environment": {"torch": "...", "python": "..."},          # informational only
      "entries": [
        {"op": "rms_norm", "dtype": "bfloat16", "hidden": 4096, "tokens": 16,
         "times_us": {"cuda": 3.1, "triton": 4.0, "native": 21.7},
         "skipped": {"rocm": "unsupported here: ..."}},
        ...
      ]
    }

``hidden`` is the last dimension of the op's bucket tensor (for
``silu_and_mul`` that is twice the output width). The priority of a bucket
is its measured providers, fastest first (several entries in one bucket are
ranked by their mean time relative to each entry's best), except that the
provider the untuned priority would run first keeps its place when it is
within ``settings.margin`` (default 5 %) of the fastest: see :func:`rank`.
Where that leaves every bucket of an op with its untuned choice, dispatch
pays nothing for the table (see :mod:`ir_core.dispatch`).

A file applies only where it was made: the same platform, device name and
capability, and, for every (op, provider) in it, the same provider package
and version (``native`` is ``ir-core``'s). Anything else is refused
(``on_mismatch="error"``) or ignored as a whole with a warning
(``on_mismatch="warn"``), never applied silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform as _pyplatform
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .. import registry
from ..errors import PriorityError
from .buckets import MAX_BUCKET, Bucket, bucket_for, bucket_tokens

logger = logging.getLogger(__name__)

FORMAT = "ir-tune"
FORMAT_VERSION = 1
ENV_PRIORITY_FILE = "IR_OP_PRIORITY_FILE"
ENV_ON_MISMATCH = "IR_OP_PRIORITY_FILE_ON_MISMATCH"
_ROW = MAX_BUCKET + 1
#: A hidden size without its own row uses the nearest measured one within this factor.
MAX_HIDDEN_RATIO = 2.0
#: Default of a file's ``settings.margin``: see :func:`rank`.
DEFAULT_MARGIN = 0.05

PriorityList = tuple[str, ...]


class TuningFileError(PriorityError):
    """A tuned priority file is malformed, or was made for another device or
    other provider versions (and ``on_mismatch="error"``)."""


DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# ------------------------------------------------------------ machine keys


def device_key(device: torch.device | str | None = None) -> dict[str, Any]:
    """Platform, device name and capability of ``device`` (default: the current
    CUDA device if there is one, else the CPU): what a file is keyed by."""
    from ..platforms import current_platform

    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    plat = current_platform().name
    if dev.type == "cuda" and torch.cuda.is_available():
        index = torch.cuda.current_device() if dev.index is None else dev.index
        return {
            "platform": plat,
            "name": torch.cuda.get_device_name(index),
            "capability": list(torch.cuda.get_device_capability(index)),
        }
    if dev.type == "xpu" and hasattr(torch, "xpu") and torch.xpu.is_available():
        index = torch.xpu.current_device() if dev.index is None else dev.index
        return {"platform": plat, "name": torch.xpu.get_device_name(index), "capability": [0, 0]}
    return {"platform": plat, "name": f"cpu {_pyplatform.machine()}", "capability": [0, 0]}


def package_version(package: str | None) -> str | None:
    """Version of an implementation's package (a distribution name), ``None``
    when it is not an installed distribution (e.g. a test module)."""
    if package is None:
        return None
    if package == "ir-core":
        from .. import __version__

        return __version__
    try:
        return metadata.version(package)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def provider_key(op: Any, provider: str) -> dict[str, Any]:
    """``{"package": ..., "version": ...}`` of ``op``'s implementation by ``provider``."""
    impl = op.impls[provider]
    return {"package": impl.package, "version": package_version(impl.package)}


# ------------------------------------------------------------- the table


def _scores(entries: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Providers timed in every entry, each scored by its mean time relative
    to each entry's fastest (1.0: fastest everywhere)."""
    common = set(entries[0])
    for e in entries[1:]:
        common &= set(e)
    return {p: sum(e[p] / min(e.values()) for e in entries) / len(entries) for p in common}


def rank(scores: Mapping[str, float], prefer: Sequence[str], margin: float) -> PriorityList:
    """Providers fastest first; but the first provider of ``prefer`` (the
    untuned priority) that was measured stays first when it is within
    ``margin`` of the fastest: a measured gain smaller than that is timing
    noise, not a reason to switch providers."""
    order = sorted(scores, key=lambda p: (scores[p], p))
    for p in prefer:
        if p in scores:
            if p != order[0] and scores[p] <= scores[order[0]] * (1.0 + margin):
                order.remove(p)
                order.insert(0, p)
            break
    return tuple(order)


@dataclass
class TunedOp:
    """The tuned table of one op: per (dtype, hidden) and token bucket the
    providers' scores; :meth:`row` turns them into 64 priority lists, one per
    token bucket (unmeasured buckets take the nearest measured one; ties go
    to the smaller), ranked by :func:`rank` against the untuned priority."""

    name: str
    source: str
    #: (dtype, hidden) -> {bucket: (provider scores, measured token counts)}
    measured: dict[tuple[torch.dtype, int], dict[int, tuple[dict[str, float], tuple[int, ...]]]]
    #: a provider must be this much faster (relative) to displace the untuned first choice
    margin: float = DEFAULT_MARGIN
    hiddens: dict[torch.dtype, tuple[int, ...]] = field(default_factory=dict)
    _rows: dict[tuple[Any, ...], tuple[PriorityList, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_dtype: dict[torch.dtype, list[int]] = {}
        for dtype, hidden in self.measured:
            by_dtype.setdefault(dtype, []).append(hidden)
        self.hiddens = {d: tuple(sorted(h)) for d, h in by_dtype.items()}

    def row_key(self, dtype: torch.dtype, hidden: int) -> tuple[torch.dtype, int] | None:
        """The measured (dtype, hidden) a call of this dtype and hidden size uses:
        the exact hidden size, else the nearest one by ratio (ties: the larger)
        if it is within a factor of :data:`MAX_HIDDEN_RATIO`; else ``None``
        (untuned: a measurement that far off says little)."""
        hs = self.hiddens.get(dtype)
        if not hs or hidden <= 0:
            return None
        if (dtype, hidden) in self.measured:
            return (dtype, hidden)
        best = min(hs, key=lambda h: (abs(math.log(h / hidden)), -h))
        if abs(math.log(best / hidden)) > math.log(MAX_HIDDEN_RATIO) + 1e-9:
            return None
        return (dtype, best)

    def row(
        self, dtype: torch.dtype, hidden: int, prefer: Sequence[str] = ()
    ) -> tuple[PriorityList, ...] | None:
        """The 64 per-bucket priority lists of a call's (dtype, hidden), ranked
        against the untuned priority ``prefer``; ``None``: no row applies."""
        key = self.row_key(dtype, hidden)
        if key is None:
            return None
        cache_key = (*key, *prefer)
        row = self._rows.get(cache_key)
        if row is None:
            buckets = self.measured[key]
            known = sorted(buckets)
            ranked = {b: rank(scores, prefer, self.margin) for b, (scores, _) in buckets.items()}
            row = self._rows[cache_key] = tuple(
                ranked[min(known, key=lambda m: (abs(m - b), m))] for b in range(_ROW)
            )
        return row

    def priority_for_bucket(
        self, bucket: Bucket | None, prefer: Sequence[str] = ()
    ) -> PriorityList | None:
        """The tuned priority of a bucket; ``None``: untuned (no row for its
        dtype, or a symbolic range whose buckets disagree)."""
        if bucket is None:
            return None
        row = self.row(bucket.dtype, bucket.hidden, prefer)
        if row is None:
            return None
        choices = set(row[bucket.lo : bucket.hi + 1])
        return choices.pop() if len(choices) == 1 else None

    def priority_for(
        self, op: Any, args: Sequence[Any], prefer: Sequence[str] = ()
    ) -> PriorityList | None:
        """The tuned priority of a call (positional args, defaults filled)."""
        return self.priority_for_bucket(bucket_for(op, tuple(args)), prefer)

    def describe(self, bucket: Bucket) -> str:
        """Which measurement a bucket's choice comes from (for ``explain``)."""
        key = self.row_key(bucket.dtype, bucket.hidden)
        if key is None:
            return f"tuned {self.source}: no row for {dtype_name(bucket.dtype)}"
        measured = self.measured[key]
        lo_t, _ = bucket_tokens(bucket.lo)
        _, hi_t = bucket_tokens(bucket.hi)
        near = min(sorted(measured), key=lambda m: (abs(m - bucket.lo), m))
        hidden = f"hidden {bucket.hidden}" + (
            "" if key[1] == bucket.hidden else f" (row of {key[1]})"
        )
        tokens = f"tokens {lo_t}..{hi_t}" if bucket.hi < MAX_BUCKET else f"tokens >= {lo_t}"
        return (
            f"tuned {self.source}: {dtype_name(bucket.dtype)}, {hidden}, {tokens}; "
            f"measured at tokens {', '.join(map(str, measured[near][1]))}"
        )


@dataclass
class TunedPriority:
    """A loaded tuned priority file (see the module docstring)."""

    path: str
    data: dict[str, Any]
    ops: dict[str, TunedOp]

    @property
    def device(self) -> dict[str, Any]:
        return dict(self.data.get("device", {}))

    @property
    def fingerprint(self) -> str:
        """sha256 of the file's content (canonical JSON): part of a compile cache key."""
        text = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _fail(path: str, message: str) -> TuningFileError:
    return TuningFileError(f"tuned priority file {path}: {message}")


def parse(data: Any, *, path: str = "<data>") -> TunedPriority:
    """Validate the structure of a file's JSON and build its tables (no
    machine checks; see :func:`check_machine`)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, f'not an {FORMAT!r} file (missing "format": {FORMAT!r})')
    if data.get("version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {data.get('version')!r} is not supported "
            f"(this ir-core reads version {FORMAT_VERSION}); run `ir tune` again",
        )
    for key in ("device", "providers", "entries"):
        if key not in data:
            raise _fail(path, f"missing {key!r}")
    grouped: dict[
        str, dict[tuple[torch.dtype, int], dict[int, list[tuple[int, dict[str, float]]]]]
    ] = {}
    for i, e in enumerate(data["entries"]):
        try:
            op, dtype, hidden, tokens = (
                e["op"],
                DTYPE_NAMES[e["dtype"]],
                int(e["hidden"]),
                int(e["tokens"]),
            )
            times = {
                str(p): float(t)
                for p, t in e["times_us"].items()
                if t is not None and math.isfinite(float(t)) and float(t) > 0
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, f"entry {i} is malformed ({type(exc).__name__}: {exc})") from None
        if tokens < 0 or hidden <= 0:
            raise _fail(path, f"entry {i}: tokens must be >= 0 and hidden > 0")
        if not times:
            continue  # nothing ran there: that bucket stays untuned
        b = min(tokens.bit_length(), MAX_BUCKET)
        grouped.setdefault(op, {}).setdefault((dtype, hidden), {}).setdefault(b, []).append(
            (tokens, times)
        )
    margin = data.get("settings", {}).get("margin", DEFAULT_MARGIN)
    if not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise _fail(path, f"settings.margin must be a number in [0, 1), got {margin!r}")
    ops: dict[str, TunedOp] = {}
    for op, rows in grouped.items():
        measured = {
            key: {
                b: (_scores([t for _, t in runs]), tuple(sorted(n for n, _ in runs)))
                for b, runs in buckets.items()
            }
            for key, buckets in rows.items()
        }
        ops[op] = TunedOp(op, path, measured, float(margin))
    return TunedPriority(path, data, ops)


def check_machine(table: TunedPriority, device: torch.device | str | None = None) -> list[str]:
    """Every reason ``table`` does not apply here (empty when it applies)."""
    from ..providers import load_providers

    load_providers()
    problems: list[str] = []
    want, have = table.device, device_key(device)
    for key in ("platform", "name", "capability"):
        made, here = want.get(key), have[key]
        if key == "capability":
            made = list(made) if isinstance(made, (list, tuple)) else made
        if made != here:
            problems.append(f"made for {key} {made!r}, this machine has {here!r}")
    ops = registry.ops()
    providers = table.data["providers"]
    for op_name in sorted(table.ops):
        if op_name not in ops:
            problems.append(f"op {op_name!r} is not registered here")
            continue
        op = ops[op_name]
        for provider, key in sorted(providers.get(op_name, {}).items()):
            if provider not in op.impls:
                problems.append(
                    f"{op_name}/{provider} ({key.get('package')} {key.get('version')}) "
                    "is not installed here"
                )
                continue
            now = provider_key(op, provider)
            if (now["package"], now["version"]) != (key.get("package"), key.get("version")):
                problems.append(
                    f"{op_name}/{provider}: made with {key.get('package')} {key.get('version')}, "
                    f"installed is {now['package']} {now['version']}"
                )
        for provider in {
            p for t in table.ops[op_name].measured.values() for pr, _ in t.values() for p in pr
        }:
            if provider not in providers.get(op_name, {}):
                problems.append(f"{op_name}/{provider} was timed but its package is not recorded")
    return problems


# --------------------------------------------------------- active table

_lock = threading.Lock()
_active: TunedPriority | None = None
_env_loaded = False


def read(
    path: str | os.PathLike[str],
    *,
    on_mismatch: str = "error",
    device: torch.device | str | None = None,
    _hint: str = "pass on_mismatch='warn' to ignore it instead",
) -> TunedPriority | None:
    """Read, validate and machine-check a file without applying it. Returns
    ``None`` (after a warning) when it does not apply and ``on_mismatch="warn"``."""
    if on_mismatch not in ("error", "warn"):
        raise ValueError(f"on_mismatch must be 'error' or 'warn', got {on_mismatch!r}")
    p = str(Path(path))
    try:
        with open(p) as fh:
            data = json.load(fh)
    except OSError as exc:
        raise _fail(p, f"cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise _fail(p, f"is not valid JSON ({exc})") from None
    table = parse(data, path=p)
    problems = check_machine(table, device)
    if problems:
        message = (
            f"tuned priority file {p} does not match this machine and its providers: "
            + "; ".join(problems)
            + ". Run `ir tune` here to make a matching file."
        )
        if on_mismatch == "error":
            raise TuningFileError(f"{message} ({_hint})")
        logger.warning("ir: %s The file is ignored.", message)
        return None
    return table


def load_priority(
    path: str | os.PathLike[str] | None,
    *,
    on_mismatch: str = "error",
    device: torch.device | str | None = None,
) -> TunedPriority | None:
    """Apply a tuned priority file made by ``ir tune`` process-wide (``None``
    removes the active one).

    Dispatch then picks, per call, the providers measured fastest for the
    call's bucket (:func:`ir_core.tuning.bucket_for`), for every op in the
    file and wherever no scoped (:func:`ir_core.priority`) or process-wide
    (:func:`ir_core.set_priority`, ``IR_OP_PRIORITY``) priority names the op
    or ``"*"``: an explicit priority always wins over a measured one; the
    tuned table wins over the platform default.

    A file made for another device (platform, name, capability) or with other
    provider package versions raises :class:`TuningFileError`
    (``on_mismatch="error"``, the default) or is ignored with a warning
    (``"warn"``; the previously active table is then removed too, so what
    runs never silently comes from a stale file). Returns the applied table,
    or ``None``. ``device``: the device to check against (default: the
    current CUDA device, else the CPU).

    The environment variable ``IR_OP_PRIORITY_FILE`` loads a file on the first
    dispatch (``IR_OP_PRIORITY_FILE_ON_MISMATCH=warn`` to ignore a mismatch).
    """
    global _active, _env_loaded
    table = None if path is None else read(path, on_mismatch=on_mismatch, device=device)
    with _lock:
        _active = table
        _env_loaded = True  # an API call overrides the environment
    registry.invalidate_dispatch_caches()
    if table is not None:
        logger.info("ir: tuned priorities from %s for %s", table.path, ", ".join(sorted(table.ops)))
    return table


def active() -> TunedPriority | None:
    """The active tuned table (loading ``IR_OP_PRIORITY_FILE`` on first use)."""
    global _active, _env_loaded
    if not _env_loaded:
        with _lock:
            if not _env_loaded:
                path = os.environ.get(ENV_PRIORITY_FILE, "").strip()
                mode = os.environ.get(ENV_ON_MISMATCH, "error").strip().lower() or "error"
                _env_loaded = True
                if path:
                    try:
                        _active = read(
                            path,
                            on_mismatch=mode,
                            _hint=f"from {ENV_PRIORITY_FILE}; set {ENV_ON_MISMATCH}=warn to ignore it instead",
                        )
                    except Exception:
                        _env_loaded = False  # report again on the next dispatch, never apply
                        raise
    return _active


def reset() -> None:
    """Forget the active table and re-read ``IR_OP_PRIORITY_FILE`` on next use (tests)."""
    global _active, _env_loaded
    with _lock:
        _active, _env_loaded = None, False
    registry.invalidate_dispatch_caches()


def fingerprint() -> str:
    """The active table's :attr:`TunedPriority.fingerprint`, ``""`` when none is
    active. A lowering pass's cache key should include it (a loaded or changed
    file changes what dispatch picks)."""
    table = active()
    return "" if table is None else table.fingerprint


def tuned_op(name: str) -> TunedOp | None:
    """The active tuned table of op ``name``, if any (called once per resolution)."""
    table = active()
    return None if table is None else table.ops.get(name)
