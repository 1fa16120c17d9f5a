"""ir-compile: the IR lowering pass, fusion passes on IR ops and a torch.compile backend.

    import ir_compile
    model = torch.compile(model, backend=ir_compile.backend())

or, with Inductor directly::

    torch._inductor.config.post_grad_custom_post_pass = ir_compile.IrLoweringPass()
"""

from __future__ import annotations

__version__ = "0.1.0"

from .backend import ComposedPass, IrBackend, backend, compose
from .cache_key import cache_key, cache_state
from .fusion import FUSIONS, run_fusions
from .lowering import Decision, IrLoweringError, IrLoweringPass, choose_impl

__all__ = [
    "FUSIONS",
    "ComposedPass",
    "Decision",
    "IrBackend",
    "IrLoweringError",
    "IrLoweringPass",
    "__version__",
    "backend",
    "cache_key",
    "cache_state",
    "choose_impl",
    "compose",
    "run_fusions",
]
