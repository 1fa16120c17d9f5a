"""The eager fast launcher (:mod:`ir_kernels_triton._fastlaunch`): its
specialisation key, and its caching logic against a stand-in kernel (the
real path needs a GPU; ``test_triton_gpu.py`` checks it there)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import INTERPRET

from ir_kernels_triton import _fastlaunch as fl


def _misaligned(n: int) -> torch.Tensor:
    t = torch.zeros(n + 1, dtype=torch.bfloat16)[1:]
    assert t.data_ptr() % 16 != 0
    return t


def test_key_follows_triton_specialisation() -> None:
    a, b = torch.zeros(8, dtype=torch.bfloat16), torch.ones(8, dtype=torch.bfloat16)
    key = fl.spec_key
    assert key((a, 4096), {"BLOCK": 8}) == key((b, 4096), {"BLOCK": 8})  # data does not matter
    assert key((a, 4096), {}) != key((_misaligned(8), 4096), {})  # alignment does
    assert key((a,), {}) != key((a.float(),), {})  # dtype does
    assert len({key((a, v), {}) for v in (1, 2, 16, 32)}) == 4  # ints by value
    assert key((a, True), {}) != key((a, 1), {})  # and type
    assert key((a, 1e-6), {}) == key((a, 1e-5), {})  # floats are not specialised
    assert key((a,), {"BLOCK": 8}) != key((a,), {"BLOCK": 16})
    assert key((a, object()), {}) is None  # unknown kinds: normal launcher


@pytest.mark.skipif(not INTERPRET, reason="interpreter mode only")
def test_never_used_by_the_interpreter() -> None:
    assert not fl._detect()


class _Compiled:
    def __init__(self, log: list[Any], tag: int) -> None:
        self.log, self.tag, self.reject = log, tag, False

    def __getitem__(self, grid: tuple[int, ...]) -> Any:
        def runner(*args: Any) -> None:
            if self.reject:  # as a launcher whose argument parsing fails
                raise TypeError("function takes exactly 2 arguments")
            self.log.append(("fast", self.tag, grid, args))

        return runner


class _Kernel:
    """Stands in for a JITFunction: ``x_ptr, n, BLOCK`` (constexpr)."""

    def __init__(self, binder_ok: bool = True) -> None:
        self.arg_names = ["x_ptr", "n", "BLOCK"]
        self.log: list[Any] = []
        self.compiled: dict[Any, _Compiled] = {}

        def binder(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
            params = dict(zip(self.arg_names, (*args, kwargs["BLOCK"]), strict=True))
            if not binder_ok:
                params["n"] = -1
            return params, [], {}

        self.device_caches = {0: (None, None, None, None, binder)}

    def __getitem__(self, grid: tuple[int, ...]) -> Any:
        def run(*args: Any, **kwargs: Any) -> _Compiled:
            spec = fl.spec_key(args, kwargs)
            self.log.append(("slow", grid, args, kwargs))
            return self.compiled.setdefault(spec, _Compiled(self.log, len(self.compiled)))

        return run


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fl, "_available", True)
    monkeypatch.setattr(fl, "_cache", {})
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.mark.usefixtures("fast")
def test_second_launch_reuses_the_compiled_kernel() -> None:
    k = _Kernel()
    x, y = torch.zeros(16, dtype=torch.bfloat16), torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (4,), (x, 64), {"BLOCK": 32, "num_warps": 4})
    fl.launch(k, (7,), (y, 64), {"BLOCK": 32, "num_warps": 4})
    assert [e[0] for e in k.log] == ["slow", "fast"]
    _, _, grid, args = k.log[1]
    assert grid == (7, 1, 1) and args[0] is y and args[1:] == (64, 32)  # every parameter, in order


@pytest.mark.usefixtures("fast")
def test_changed_specialisation_compiles_again() -> None:
    k = _Kernel()
    aligned = torch.zeros(16, dtype=torch.bfloat16)
    off = _misaligned(16)
    for x in (aligned, aligned, off, off, aligned):
        fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    kinds = [(e[0], e[1] if e[0] == "fast" else None) for e in k.log]
    assert kinds == [("slow", None), ("fast", 0), ("slow", None), ("fast", 1), ("fast", 0)]
    fl.launch(k, (1,), (aligned, 1), {"BLOCK": 32})  # n == 1: another specialisation
    assert k.log[-1][0] == "slow"


@pytest.mark.usefixtures("fast")
def test_binder_disagreement_keeps_the_normal_launcher() -> None:
    k = _Kernel(binder_ok=False)
    x = torch.zeros(16, dtype=torch.bfloat16)
    for _ in range(3):
        fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow"] * 3


@pytest.mark.usefixtures("fast")
def test_rejected_arguments_turn_the_path_off() -> None:
    k = _Kernel()
    x = torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    for c in k.compiled.values():
        c.reject = True
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow", "slow"] and fl._available is False
