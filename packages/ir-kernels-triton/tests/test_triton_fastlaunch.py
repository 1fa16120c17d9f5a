"""The eager fast launcher (:mod:`ir_kernels_triton._fastlaunch`): its
specialisation key (against Triton's own binder, no GPU needed), and its
caching logic against stand-in kernels (the real path needs a GPU;
``test_triton_gpu.py`` checks it there)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from conftest import INTERPRET

from ir_kernels_triton import _fastlaunch as fl


def _misaligned(n: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    t = torch.zeros(n + 1, dtype=dtype)[1:]
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
    assert key((a, 1.0), {}) != key((a, 1), {})
    assert key((a,), {"BLOCK": 8}) != key((a,), {"BLOCK": 16})
    assert key((a,), {"BLOCK": 8}) != key((a,), {"N": 8})  # constexprs by name too
    assert key((a,), {"F": True}) != key((a,), {"F": 1})
    assert key((torch.nn.Parameter(a),), {}) == key((a,), {})
    assert key((a, object()), {}) is None  # unknown kinds: normal launcher
    assert key((a,), {"BLOCK": [8]}) is None


def _triton_binder(kernel: Any) -> Any:
    """Triton's own argument binder for ``kernel`` with the NVIDIA backend's
    specialisation rules (built as JITFunction does, no GPU needed)."""
    from triton.runtime.jit import JITFunction, create_function_from_signature

    try:
        from triton.backends.nvidia.compiler import CUDABackend
    except ImportError:
        pytest.skip("no NVIDIA backend in this Triton")
    jit = JITFunction(getattr(kernel, "fn", kernel))
    return create_function_from_signature(jit.signature, jit.params, CUDABackend)


def test_key_is_at_least_as_fine_as_tritons() -> None:
    """Over many launches of the norm kernel (tensors of several dtypes and
    alignments, ints of every specialisation class, floats, flags), two
    launches with one key always get one specialisation from Triton's binder:
    a cached kernel is never reused where Triton would compile another."""
    from ir_kernels_triton.kernels.norm import rms_norm_kernel

    binder = _triton_binder(rms_norm_kernel)
    tensors = [
        torch.zeros(64, dtype=torch.bfloat16),
        torch.zeros(64, dtype=torch.bfloat16)[8:],  # 16-byte aligned view
        _misaligned(64),
        torch.zeros(64, dtype=torch.float32),
        _misaligned(64, torch.float32),
        torch.zeros(64, dtype=torch.float8_e4m3fn),
    ]
    ints = [1, 0, 2, 16, 17, 4096, 4095, -16, 2**31 - 1, 2**31, 2**32, 2**63]
    seen: dict[Any, Any] = {}
    combos = itertools.product(tensors[:3], tensors, ints, ints[:6], [1e-6, 1e-5, 0.5])
    for x, w, stride, n, eps in combos:
        args = (x, x, w, x, w, w, stride, 16, n, stride, n, 3, eps)
        kwargs = {
            "HAS_RESIDUAL": False,
            "HAS_WEIGHT": True,
            "QUANT": False,
            "EXACT": False,
            "BLOCK": 64,
            "N_CHUNKS": 1,
            "num_warps": 2,
        }
        key = fl.spec_key(args, kwargs)
        assert key is not None
        _, spec, options = binder(*args, **kwargs)
        triton_key = (tuple(map(str, spec)), tuple(sorted(options.items())))
        assert seen.setdefault(key, triton_key) == triton_key, (key, triton_key)
    assert len(seen) > 100


@pytest.mark.skipif(not INTERPRET, reason="interpreter mode only")
def test_never_used_by_the_interpreter() -> None:
    assert not fl._detect()


class _Compiled:
    """Stands in for a CompiledKernel: the runner (``[grid]``) and the
    launcher (``run``) both log their launches."""

    def __init__(self, log: list[Any], tag: int) -> None:
        self.log, self.tag, self.reject = log, tag, False
        self.function, self.packed_metadata = f"fn{tag}", f"md{tag}"

    def __getitem__(self, grid: tuple[int, ...]) -> Any:
        def runner(*args: Any) -> None:
            if self.reject:  # as a launcher whose argument parsing fails
                raise TypeError("function takes exactly 2 arguments")
            self.log.append(("fast", self.tag, grid, args))

        return runner

    def run(
        self, g0: int, g1: int, g2: int, stream: int, function: Any, md: Any, *rest: Any
    ) -> None:
        if self.reject:
            raise TypeError("function takes exactly 2 arguments")
        launch_md, enter, exit_, *args = rest
        assert (function, md, launch_md, enter, exit_) == (
            self.function,
            self.packed_metadata,
            None,
            None,
            None,
        )
        self.log.append(("direct", self.tag, (g0, g1, g2), tuple(args), stream))


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


class _Hooks:
    launch_enter_hook: Any = None
    launch_exit_hook: Any = None


@pytest.fixture(params=["runner", "direct"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fast path switched on with stand-ins for CUDA, both ways of
    launching a cached kernel."""
    monkeypatch.setattr(fl, "_available", True)
    monkeypatch.setattr(fl, "_cache", {})
    monkeypatch.setattr(fl, "_current_device", lambda: 0)
    monkeypatch.setattr(fl, "_raw_stream", lambda dev: 1234)
    monkeypatch.setattr(fl, "_runtime_knobs", _Hooks())
    monkeypatch.setattr(fl, "_direct_run", request.param == "direct")
    return str(request.param)


def _fast_kind(fast: str) -> str:
    return "direct" if fast == "direct" else "fast"


def test_second_launch_reuses_the_compiled_kernel(fast: str) -> None:
    k = _Kernel()
    x, y = torch.zeros(16, dtype=torch.bfloat16), torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (4,), (x, 64), {"BLOCK": 32, "num_warps": 4})
    fl.launch(k, (7,), (y, 64), {"BLOCK": 32, "num_warps": 4})
    assert [e[0] for e in k.log] == ["slow", _fast_kind(fast)]
    _, _, grid, args, *stream = k.log[1]
    assert grid == (7, 1, 1) and args[0] is y and args[1:] == (64, 32)  # every parameter, in order
    assert stream == ([1234] if fast == "direct" else [])  # the current stream, from the device


def test_changed_specialisation_compiles_again(fast: str) -> None:
    k = _Kernel()
    aligned = torch.zeros(16, dtype=torch.bfloat16)
    off = _misaligned(16)
    for x in (aligned, aligned, off, off, aligned):
        fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    kinds = [(e[0], e[1] if e[0] != "slow" else None) for e in k.log]
    f = _fast_kind(fast)
    assert kinds == [("slow", None), (f, 0), ("slow", None), (f, 1), (f, 0)]
    fl.launch(k, (1,), (aligned, 1), {"BLOCK": 32})  # n == 1: another specialisation
    assert k.log[-1][0] == "slow"


def test_another_device_has_its_own_entry(fast: str, monkeypatch: pytest.MonkeyPatch) -> None:
    k = _Kernel()
    k.device_caches[1] = k.device_caches[0]
    x = torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    monkeypatch.setattr(fl, "_current_device", lambda: 1)
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow", "slow"]


def test_launch_hooks_take_the_runner(fast: str) -> None:
    """With a Triton launch hook installed the runner builds the launch
    metadata the hook reads; the direct launcher call is skipped."""
    k = _Kernel()
    x = torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    fl._runtime_knobs.launch_enter_hook = lambda md: None
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow", "fast"]


def test_binder_disagreement_keeps_the_normal_launcher(fast: str) -> None:
    k = _Kernel(binder_ok=False)
    x = torch.zeros(16, dtype=torch.bfloat16)
    for _ in range(3):
        fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow"] * 3


def test_missing_constexpr_keeps_the_normal_launcher(fast: str) -> None:
    k = _Kernel()
    k.arg_names = ["x_ptr", "n", "BLOCK", "OTHER"]  # OTHER has a default, not passed
    x = torch.zeros(16, dtype=torch.bfloat16)
    for _ in range(2):
        fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow"] * 2


def test_rejected_arguments_turn_the_path_off(fast: str) -> None:
    k = _Kernel()
    x = torch.zeros(16, dtype=torch.bfloat16)
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    for c in k.compiled.values():
        c.reject = True
    fl.launch(k, (1,), (x, 64), {"BLOCK": 32})
    assert [e[0] for e in k.log] == ["slow", "slow"] and fl._available is False
