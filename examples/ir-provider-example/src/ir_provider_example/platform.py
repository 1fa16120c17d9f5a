"""The ``example`` platform, declared through the ``ir.platforms`` entry point.

A real out-of-tree platform (an accelerator plugin) says it is current when
its device is present and brings the default priority of its ops. This
example has no device of its own: it runs on the CPU and is current only
when ``IR_EXAMPLE_PLATFORM=1`` is set, so installing the package never
changes what an ordinary CPU process dispatches to.
"""

from __future__ import annotations

import os

from ir_core.platforms import Platform

ENV = "IR_EXAMPLE_PLATFORM"


def _is_current() -> bool:
    return os.environ.get(ENV, "").strip() in ("1", "true", "yes", "on")


#: ``rms_norm`` and ``fused_add_rms_norm`` prefer the example provider, then
#: native; every other op uses native.
PLATFORM = Platform(
    name="example",
    device_type="cpu",
    default_priority={
        "rms_norm": ("example", "native"),
        "fused_add_rms_norm": ("example", "native"),
        "*": ("native",),
    },
    is_current=_is_current,
)
