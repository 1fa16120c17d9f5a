"""Shared setup of the Triton provider's tests.

The same tests run in both modes: on the CPU under ``TRITON_INTERPRET=1``
(small shapes, fast enough for CI) and on a GPU (the kit's default,
realistic shapes). Without a GPU the interpreter is switched on here, before
anything imports Triton kernels, so a plain ``pytest`` run on a CPU machine
tests the kernels instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import ir_core as ir

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cpu" if INTERPRET else "cuda"
HAS_GPU = torch.cuda.is_available() and not INTERPRET
#: ``IR_TRITON_TEST_OPS=op,op`` limits the per-op tests to those ops (the GPU
#: script runs groups of ops in parallel processes); unset: every op.
SELECTED_OPS: list[str] | None = (
    [n.strip() for n in os.environ["IR_TRITON_TEST_OPS"].split(",") if n.strip()]
    if os.environ.get("IR_TRITON_TEST_OPS")
    else None
)


@pytest.fixture(autouse=True, scope="session")
def _providers() -> None:
    """Import the provider packages (registers the triton implementations)."""
    ir.load_providers()


@pytest.fixture(autouse=True)
def _clean_priority() -> Iterator[None]:
    """Every test starts and ends with no process-wide priority set."""
    ir.set_priority(None)
    ir.set_batch_invariant(None)
    yield
    ir.set_priority(None)
    ir.set_batch_invariant(None)
