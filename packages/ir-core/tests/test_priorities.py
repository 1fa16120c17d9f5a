"""Priority strings, the environment, the argparse helper and their errors."""

from __future__ import annotations

import argparse

import pytest

import ir_core as ir
from ir_core import priorities


def test_parse_priority_string() -> None:
    assert ir.parse_priority_string("rms_norm=cuda,native; *=triton, native") == {
        "rms_norm": ["cuda", "native"],
        "*": ["triton", "native"],
    }
    assert ir.parse_priority_string("") == {}


@pytest.mark.parametrize(
    "text, match",
    [
        ("rms_norm", "malformed entry"),
        ("=cuda", "malformed entry"),
        ("rms_norm=cuda;rms_norm=native", "given twice"),
    ],
)
def test_malformed_strings(text: str, match: str) -> None:
    with pytest.raises(ir.PriorityError, match=match):
        ir.parse_priority_string(text)


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            {"rms_norm": ["cdua", "native"]},
            "unknown provider 'cdua' for op 'rms_norm'; registered providers: .*native",
        ),
        ({"rms_nrom": ["native"]}, "unknown op 'rms_nrom'; registered ops: .*rms_norm"),
        ({"rms_norm": []}, "empty priority list"),
        ({"rms_norm": ["native", "native"]}, "listed twice"),
        ({"rms_norm": ["Bad Name"]}, "bad provider name"),
        ("rms_norm=cuda,,native", "bad provider name"),
    ],
)
def test_bad_priorities_are_clear_errors(spec: object, match: str) -> None:
    with pytest.raises(ir.PriorityError, match=match):
        ir.set_priority(spec)  # type: ignore[arg-type]
    with pytest.raises(ir.PriorityError), ir.priority(spec):  # type: ignore[arg-type]
        pass
    assert ir.get_priority() == {}


def test_well_known_providers_allowed_when_not_installed() -> None:
    ir.set_priority({"rms_norm": ["aiter", "rocm", "native"]})  # a shared config on a CPU box
    assert ir.effective_priority("rms_norm") == (("aiter", "rocm", "native"), "process")
    assert (
        ir.ops.rms_norm.dispatch(
            *ir.ops.rms_norm.input_generator(2, 8, __import__("torch").float32, "cpu")
        ).provider
        == "native"
    )


def test_set_priority_merge_and_replace() -> None:
    ir.set_priority({"rms_norm": ["native"]})
    ir.set_priority({"silu_and_mul": "native"})
    assert ir.get_priority() == {"rms_norm": ("native",), "silu_and_mul": ("native",)}
    ir.set_priority({"*": ["native"]}, replace=True)
    assert ir.get_priority() == {"*": ("native",)}


def test_env_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", "rms_norm=triton,native;*=native")
    priorities._process.env_priority = None
    assert ir.effective_priority("rms_norm") == (("triton", "native"), "process")
    assert ir.effective_priority("silu_and_mul") == (("native",), "process")
    ir.set_priority({"rms_norm": ["native"]})  # the API wins over the environment
    assert ir.effective_priority("rms_norm") == (("native",), "process")


def test_env_priority_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", "rms_norm=nosuch")
    priorities._process.env_priority = None
    with pytest.raises(ir.PriorityError, match="IR_OP_PRIORITY: unknown provider 'nosuch'"):
        ir.effective_priority("rms_norm")


def test_argparse_helper() -> None:
    parser = argparse.ArgumentParser()
    ir.add_priority_arguments(parser)
    ns = parser.parse_args(
        [
            "--ir-op-priority.rms_norm=triton,native",
            "--ir-op-priority",
            "silu_and_mul=native;*=native",
        ]
    )
    spec = ir.priority_from_arguments(ns)
    assert spec == {"rms_norm": ("triton", "native"), "silu_and_mul": ("native",), "*": ("native",)}
    assert ir.apply_priority_arguments(ns) == spec
    assert ir.get_priority()["rms_norm"] == ("triton", "native")
    bad = parser.parse_args(["--ir-op-priority.rms_norm=bogus"])
    with pytest.raises(ir.PriorityError, match="--ir-op-priority: unknown provider 'bogus'"):
        ir.priority_from_arguments(bad)


def test_platform_default_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    plat = ir.Platform("testplat", "cpu", {"rms_norm": ("triton", "native")})
    ir.platforms.set_platform(plat)
    assert ir.effective_priority("rms_norm") == (("triton", "native"), "platform testplat")
    assert ir.effective_priority("silu_and_mul") == (("native",), "fallback")
