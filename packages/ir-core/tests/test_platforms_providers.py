"""Platform detection, out-of-tree platforms, capability per device index, and
provider packages that fail to import."""

from __future__ import annotations

import logging
import sys
import types
from importlib import metadata
from typing import Any

import pytest
import torch

import ir_core as ir
from ir_core import platforms, providers, registry


@pytest.fixture
def fresh_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget detected platforms (restored after the test)."""
    monkeypatch.setattr(platforms, "_oot", None)
    monkeypatch.setattr(platforms, "_current", None)
    monkeypatch.setattr(platforms, "platform_errors", [])
    yield
    registry.invalidate_dispatch_caches()


def _fake_eps(monkeypatch: pytest.MonkeyPatch, group: str, eps: list[metadata.EntryPoint]) -> None:
    real = metadata.entry_points

    def entry_points(**kw: Any) -> Any:
        if kw.get("group") == group:
            return eps
        return real(**kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)


def test_out_of_tree_platform_wins_and_sets_default_priority(
    fresh_platforms: None, monkeypatch: pytest.MonkeyPatch, temp_impl: Any
) -> None:
    plat = platforms.Platform("spyre_like", "cpu", {"rms_norm": ("oot_p", "native")}, lambda: True)
    _module(monkeypatch, "fake_plat_mod", PLATFORM=plat)
    _fake_eps(
        monkeypatch,
        platforms.PLATFORM_GROUP,
        [metadata.EntryPoint("spyre_like", "fake_plat_mod:PLATFORM", platforms.PLATFORM_GROUP)],
    )
    assert ir.current_platform().name == "spyre_like"
    temp_impl(
        ir.ops.rms_norm, lambda x, weight, epsilon, variance_size=None: x * 0, provider="oot_p"
    )
    x, w = torch.randn(2, 8), torch.randn(8)
    assert ir.ops.rms_norm.dispatch(x, w, 1e-6).provider == "oot_p"
    prio, source = ir.effective_priority("rms_norm")
    assert next(iter(prio)) == "oot_p" and "spyre_like" in source
    # other ops fall back to native: the platform names no default for them
    assert list(ir.effective_priority("silu_and_mul")[0]) == ["native"]


def test_platform_not_current_is_ignored(
    fresh_platforms: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plat = platforms.Platform("absent_hw", "cpu", {"*": ("native",)}, lambda: False)
    _module(monkeypatch, "fake_plat_mod2", make=lambda: plat)
    _fake_eps(
        monkeypatch,
        platforms.PLATFORM_GROUP,
        [metadata.EntryPoint("absent_hw", "fake_plat_mod2:make", platforms.PLATFORM_GROUP)],
    )
    assert ir.current_platform().name == "cpu"
    assert [p.name for p in platforms.out_of_tree_platforms()] == ["absent_hw"]


def test_broken_platform_entry_point_is_recorded_not_raised(
    fresh_platforms: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _module(monkeypatch, "fake_plat_mod3", NOT_A_PLATFORM=42)
    _fake_eps(
        monkeypatch,
        platforms.PLATFORM_GROUP,
        [metadata.EntryPoint("broken", "fake_plat_mod3:NOT_A_PLATFORM", platforms.PLATFORM_GROUP)],
    )
    with caplog.at_level(logging.WARNING):
        assert ir.current_platform().name == "cpu"
    assert platforms.platform_errors and platforms.platform_errors[0][0] == "broken"
    assert "Platform" in platforms.platform_errors[0][1]
    assert "broken" in caplog.text


def test_set_platform_by_name_and_unknown(fresh_platforms: None) -> None:
    ir.platforms.set_platform("cuda")
    assert ir.current_platform().name == "cuda"
    assert list(ir.effective_priority("rms_norm")[0])[:2] == ["cuda", "triton"]
    with pytest.raises(ValueError, match=r"unknown platform 'nope'.*cpu"):
        ir.platforms.set_platform("nope")


def test_capability_is_read_per_device_index(monkeypatch: pytest.MonkeyPatch) -> None:
    caps = {0: (8, 0), 1: (9, 0)}
    calls: list[int] = []

    def get_cap(i: int) -> tuple[int, int]:
        calls.append(i)
        return caps[i]

    platforms._capability.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", get_cap)
    try:
        assert ir.device_capability(0) == (8, 0)
        assert ir.device_capability("cuda:1") == (9, 0)
        assert ir.device_capability(torch.device("cuda", 0)) == (8, 0)
        assert ir.device_capability(None) == (9, 0)  # current device
        assert ir.device_capability("cpu") == (0, 0)
        assert ir.device_capability(1) == (9, 0)
        assert sorted(calls) == [0, 1]  # read once per index
    finally:
        platforms._capability.cache_clear()


@pytest.fixture
def fresh_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "_packages", None)
    yield
    registry.invalidate_dispatch_caches()


def test_provider_package_that_fails_to_import_is_skipped_and_shown(
    fresh_providers: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        providers,
        "_entry_points",
        lambda: [metadata.EntryPoint("ghost", "ir_no_such_module_xyz", providers.PROVIDER_GROUP)],
    )
    with caplog.at_level(logging.WARNING):
        pkgs = ir.load_providers()
    assert not pkgs["ghost"].loaded
    assert "ModuleNotFoundError" in (pkgs["ghost"].error or "")
    assert "ghost" in caplog.text
    # the process still dispatches
    x, w = torch.randn(2, 8), torch.randn(8)
    assert ir.ops.rms_norm.dispatch(x, w, 1e-6).provider == "native"
    # and `ir info` shows the package with its error
    from ir_core.cli.info import collect

    info = collect()
    ghost = [p for p in info["provider_packages"] if p["entry_point"] == "ghost"]
    assert ghost and "ModuleNotFoundError" in ghost[0]["error"]


def test_provider_packages_load_once_and_can_be_disabled(
    fresh_providers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported: list[str] = []

    _module(monkeypatch, "fake_provider_pkg")
    monkeypatch.setattr(
        providers,
        "_entry_points",
        lambda: [
            metadata.EntryPoint("fakep", "fake_provider_pkg", providers.PROVIDER_GROUP),
            metadata.EntryPoint("offp", "fake_provider_pkg", providers.PROVIDER_GROUP),
        ],
    )
    real_import = providers.importlib.import_module
    monkeypatch.setattr(
        providers.importlib,
        "import_module",
        lambda name: imported.append(name) or real_import(name),
    )
    monkeypatch.setenv(providers.ENV_DISABLE, "offp")
    first = ir.load_providers()
    second = ir.load_providers()
    assert first is second
    assert imported == ["fake_provider_pkg"]
    assert first["fakep"].loaded and not first["offp"].loaded
    assert providers.ENV_DISABLE in (first["offp"].error or "")
