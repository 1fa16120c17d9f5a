"""ir-core: a functional IR for PyTorch kernel ops.

An op is defined once by its native (PyTorch) implementation; providers
register implementations; one dispatcher picks among them by per-op priority,
per-call argument checks and batch-invariant mode, eagerly and under
``torch.compile``.

    import ir_core as ir
    ir.ops.rms_norm(x, w, 1e-6)
    print(ir.ops.rms_norm.explain(x, w, 1e-6))
    with ir.priority(rms_norm=["triton", "native"]): ...
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import ops, platforms
from .dispatch import Resolution
from .errors import IrError, NoImplementationError, PriorityError, RegistrationError, UnknownOpError
from .explain import Explanation
from .impl import Gate, IrOpImpl, Unsupported
from .op import IrOp, register_op
from .platforms import Platform, current_platform, device_capability
from .priorities import (
    add_priority_arguments,
    apply_priority_arguments,
    batch_invariant,
    effective_priority,
    get_priority,
    is_batch_invariant,
    parse_priority_string,
    priority,
    priority_from_arguments,
    set_batch_invariant,
    set_priority,
)
from .providers import load_providers, provider_packages
from .tracing import Trace, trace
from .tuning import TuningFileError, load_priority

__all__ = [
    "IrError",
    "IrOp",
    "IrOpImpl",
    "Explanation",
    "Gate",
    "NoImplementationError",
    "Platform",
    "PriorityError",
    "RegistrationError",
    "Resolution",
    "Trace",
    "TuningFileError",
    "UnknownOpError",
    "Unsupported",
    "__version__",
    "add_priority_arguments",
    "apply_priority_arguments",
    "batch_invariant",
    "current_platform",
    "device_capability",
    "effective_priority",
    "get_priority",
    "is_batch_invariant",
    "load_priority",
    "load_providers",
    "ops",
    "parse_priority_string",
    "platforms",
    "priority",
    "priority_from_arguments",
    "provider_packages",
    "register_op",
    "set_batch_invariant",
    "set_priority",
    "trace",
]
