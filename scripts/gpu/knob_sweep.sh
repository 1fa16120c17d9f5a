#!/usr/bin/env bash
# cuda launch-knob sweeps where cuda trails triton: norms at few rows, static quant shapes (issue 5), lean static quant and rotary vs the former kernels (session 6). KNOB_SWEEP_ONLY=3,4,5,6: the session-6 sweeps alone.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/knob_sweep.py
