#!/usr/bin/env bash
# Launch-config experiments of the Triton kernels (helper T1), run by the lead's
# driver: bash scripts/gpu/run-all.sh triton_exp:150 (repo root as cwd, wheels
# installed into python3). Times candidate launch shapes (element-wise grid and
# block, norm / dynamic-quant warps, group-quant tile) against the library
# default and torch.compile of the native ops, with a bitwise check against the
# default; see the docstring of scripts/gpu/triton_exp.py for the table.
# Writes $RES/triton_exp/{table.txt,results.json}; TRITON_EXP_BUDGET (default
# 135 s) bounds the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
mkdir -p "${RES:-/tmp/ir-gpu-results}/triton_exp"
exec python3 scripts/gpu/triton_exp.py
