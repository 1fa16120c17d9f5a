"""Tuned priorities: provider choice per shape bucket, from measurements.

``ir tune`` (or :func:`tune`) times every supported provider of each op per
(dtype, hidden size, token count) on this device and writes a versioned JSON
file keyed by the device and the provider package versions.
:func:`load_priority` (or ``IR_OP_PRIORITY_FILE``) applies it: dispatch then
picks, per call, the providers measured fastest for the call's bucket
(:func:`bucket_for`), in eager mode and in the lowering pass.

Precedence (first match wins): scoped priority, process-wide priority (API or
``IR_OP_PRIORITY``, an op entry or ``"*"``), **the tuned table**, the
platform default, ``["native"]``. Calls whose bucket the table has no row for
(another dtype, no tensor argument) use the untuned priority.
"""

from __future__ import annotations

from typing import Any

from .buckets import Bucket, bucket_for, bucket_param, bucket_tokens, token_bucket
from .table import (
    ENV_ON_MISMATCH,
    ENV_PRIORITY_FILE,
    FORMAT,
    FORMAT_VERSION,
    TunedOp,
    TunedPriority,
    TuningFileError,
    active,
    device_key,
    fingerprint,
    load_priority,
    read,
)


def tune(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Measure providers and return a tuned priority file's JSON (see
    :func:`ir_core.tuning.measure.tune`)."""
    from .measure import tune as _tune

    return _tune(*args, **kwargs)


__all__ = [
    "ENV_ON_MISMATCH",
    "ENV_PRIORITY_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "Bucket",
    "TunedOp",
    "TunedPriority",
    "TuningFileError",
    "active",
    "bucket_for",
    "bucket_param",
    "bucket_tokens",
    "device_key",
    "fingerprint",
    "load_priority",
    "read",
    "token_bucket",
    "tune",
]
