#!/usr/bin/env bash
# One-token rms_norm latency against the floor of the measurement (issue 5). ~40 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/latency.py
