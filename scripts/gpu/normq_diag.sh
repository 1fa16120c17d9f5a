#!/usr/bin/env bash
# cuda vs triton rms_norm_static_fp8_quant on the bench inputs, per fp8 division form (issue 5). ~40 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/normq_diag.py
