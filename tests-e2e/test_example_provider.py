"""The out-of-tree example package (examples/ir-provider-example), installed
as a user would: discovered through its entry points, chosen by priority and
by its platform's default priority, listed by ``ir info``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import needs_example, tiny_model

import ir_core as ir
from ir_core import platforms
from ir_core.nn.hf import patch_model

pytestmark = needs_example


def _ir_cli(*args: str, **env: str) -> str:
    full_env = {**os.environ, **env}
    full_env.pop("IR_OP_PRIORITY", None)
    script = Path(sys.executable).with_name("ir")  # the console script of this environment
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ir_core"]
    proc = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_discovered_through_the_entry_point() -> None:
    pkg = ir.provider_packages()["example"]
    assert pkg.loaded, pkg.error
    assert pkg.distribution == "ir-provider-example" and pkg.providers == {"example"}
    assert "example" in ir.ops.rms_norm.impls and "example" in ir.ops.fused_add_rms_norm.impls
    assert ir.ops.rms_norm.impls["example"].package == "ir-provider-example"


def test_chosen_by_priority_in_a_patched_model() -> None:
    model = tiny_model("llama")
    ids = torch.randint(0, 128, (2, 5), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(ids).logits
    x = torch.randn(3, 64)
    assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "native"  # cpu default
    ir.set_priority({"rms_norm": ["example", "native"]})
    assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "example"
    with patch_model(model), ir.trace() as t, torch.no_grad():
        out = model(ids).logits
    assert set(t.providers("rms_norm")) == {"example"}
    assert set(t.providers("silu_and_mul")) == {"native"}
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_the_platform_brings_its_default_priority() -> None:
    assert "example" in {p.name for p in platforms.out_of_tree_platforms()}
    assert platforms.current_platform().name == "cpu"  # opt-in only (IR_EXAMPLE_PLATFORM)
    platforms.set_platform("example")
    try:
        x = torch.randn(3, 64)
        assert ir.effective_priority("rms_norm") == (("example", "native"), "platform example")
        assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "example"
        assert ir.ops.silu_and_mul.dispatch(x).provider == "native"
        with ir.priority(rms_norm=["native"]):  # the user still overrides the platform
            assert ir.ops.rms_norm.dispatch(x, None, 1e-6).provider == "native"
    finally:
        platforms.set_platform(None)


def test_ir_info_lists_the_package() -> None:
    text = _ir_cli("info")
    line = next(ln for ln in text.splitlines() if "ir-provider-example" in ln)
    assert "loaded" in line and "NOT LOADED" not in line and "providers: example" in line
    assert "platform: cpu" in text


def test_ir_info_under_the_example_platform() -> None:
    info = json.loads(_ir_cli("info", "--json", IR_EXAMPLE_PLATFORM="1"))
    pkg = next(p for p in info["provider_packages"] if p["entry_point"] == "example")
    assert pkg["loaded"] and pkg["providers"] == ["example"] and pkg["version"] == "0.1.0"
    assert info["platform"]["name"] == "example"
    assert info["platform"]["package"] == "ir-provider-example"
    assert info["ops"]["rms_norm"]["priority"] == ["example", "native"]
    assert info["ops"]["rms_norm"]["source"] == "platform example"
    assert info["ops"]["rms_norm"]["providers"]["example"] == "supported"
    assert info["ops"]["silu_and_mul"]["priority"] == ["native"]


def test_disabled_by_environment() -> None:
    info = json.loads(_ir_cli("info", "--json", IR_DISABLE_PROVIDER_PACKAGES="example"))
    pkg = next(p for p in info["provider_packages"] if p["entry_point"] == "example")
    assert not pkg["loaded"] and "disabled" in pkg["error"]
    for op in ("rms_norm", "fused_add_rms_norm"):
        assert "example" not in info["ops"][op]["providers"]
