#!/usr/bin/env bash
# cuda launch-knob sweep where cuda trails triton: norms at few rows, static quant shapes (issue 5). ~60-90 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/knob_sweep.py
