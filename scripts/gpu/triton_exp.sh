#!/usr/bin/env bash
# Launch-config experiments of the Triton kernels (helper T1), run by the lead's
# driver: bash scripts/gpu/run-all.sh triton_exp:150 (repo root as cwd, wheels
# installed into python3). Times candidate launch shapes (norm warps, register
# cap, rows a program, a row split over programs; element-wise block) against
# the library default and torch.compile of the native ops, with a bitwise check
# against the default, and re-times the bench rows whose eager times jumped;
# see the docstring of scripts/gpu/triton_exp.py for the tables.
# Writes $RES/triton_exp/{table.txt,results.json}; TRITON_EXP_BUDGET (default
# 135 s) bounds the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
mkdir -p "${RES:-/tmp/ir-gpu-results}/triton_exp"
exec python3 scripts/gpu/triton_exp.py
