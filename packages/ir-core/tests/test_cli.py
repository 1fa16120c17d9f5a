"""The ``ir`` command line: info, explain, check, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import torch

import ir_core as ir
from ir_core.cli import main


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["platform"]["name"] == "cpu"
    assert info["ops"]["rms_norm"]["priority"] == ["native"]
    assert info["ops"]["rms_norm"]["providers"]["native"] == "supported"
    assert {p["distribution"] for p in info["provider_packages"]} >= {"ir-kernels-triton"}


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "platform: cpu" in out and "rms_norm" in out


def test_explain_shows_every_candidate(capsys: pytest.CaptureFixture[str], temp_impl: Any) -> None:
    p = temp_impl(
        ir.ops.rms_norm,
        lambda x, weight, epsilon, variance_size=None: x,
        supports_args=lambda x, weight, epsilon, variance_size=None: x.shape[-1] % 128 == 0,
    )
    code = main(
        [
            "explain",
            "rms_norm",
            "--shape",
            "4x96",
            "--dtype",
            "float32",
            "--device",
            "cpu",
            "--priority",
            f"rms_norm={p},native",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert p in out and "native" in out
    assert "reject" in out.lower()


def test_explain_unknown_op_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "no_such_op"]) == 2
    err = capsys.readouterr().err
    assert "no_such_op" in err and "rms_norm" in err and "Traceback" not in err


def test_explain_bad_shape_and_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "rms_norm", "--shape", "banana"]) == 2
    assert main(["explain", "rms_norm", "--dtype", "float7"]) == 2
    err = capsys.readouterr().err
    assert "banana" in err and "float7" in err


def test_check_passes_good_and_flags_bad_provider(
    capsys: pytest.CaptureFixture[str], temp_impl: Any
) -> None:
    good = temp_impl(ir.ops.silu_and_mul, lambda x: ir.ops.silu_and_mul.native(x))
    bad = temp_impl(ir.ops.silu_and_mul, lambda x: ir.ops.silu_and_mul.native(x) + 1)
    assert (
        main(
            [
                "check",
                "silu_and_mul",
                "--provider",
                good,
                "--device",
                "cpu",
                "--quick",
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    assert "PASS" in capsys.readouterr().out
    assert (
        main(
            [
                "check",
                "silu_and_mul",
                "--provider",
                bad,
                "--device",
                "cpu",
                "--quick",
                "--dtype",
                "float32",
            ]
        )
        == 1
    )
    assert "FAIL" in capsys.readouterr().out


def test_check_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--provider", "nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def test_console_script_and_module_entry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ir_core", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": ""},
    )
    assert json.loads(out.stdout)["torch"] == torch.__version__
