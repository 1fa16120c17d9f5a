#!/usr/bin/env bash
# cuda quantising kernels per fp8 division form vs triton, bench inputs and another seed (issue 5). ~60-90 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/div_diag.py
