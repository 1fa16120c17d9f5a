#!/usr/bin/env bash
# A copy of the same bytes at the bandwidth-goal sizes, next to the kernels (issues 4, 5). ~30 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/gpu/copy_floor.py
