#!/usr/bin/env bash
# Driver for one GPU session on a lent machine (no network, no uv there):
# installs the workspace wheels built by scripts/device-wheels.sh, then runs
# each area's script (scripts/gpu/<area>.sh) under its own time limit and
# packs everything the scripts wrote into $OUT/results.tgz.
#
# Usage (device): bash scripts/gpu/run-all.sh AREA[:SECONDS] ...
#   e.g. bash scripts/gpu/run-all.sh cuda:240 triton:150 compile:90
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
# One CUDA extension build per machine, shared by every area's script.
# Kept inside the (git-ignored) checkout: a warm machine keeps it between calls.
export IR_CUDA_CACHE="${IR_CUDA_CACHE:-$PWD/.gpu-cache/cuda}" MAX_JOBS="${MAX_JOBS:-16}"
export RES="${RES:-/tmp/ir-gpu-results}"
OUT="${OUT:-/tmp/ir-gpu-out}"
mkdir -p "$RES" "$OUT"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  python3 -c 'import sys, torch, triton; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda); print("triton", triton.__version__); print("device", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))'
  nvcc --version | tail -2
} > "$RES/device.txt" 2>&1
cat "$RES/device.txt"

python3 -m pip install -q --no-deps --no-index --force-reinstall .device-wheels/*.whl \
  > "$RES/install.log" 2>&1 || { echo "wheel install failed"; cat "$RES/install.log"; }
start=$(date +%s)
python3 -m ir_kernels_cuda build > "$RES/cuda_build.log" 2>&1; echo "cuda build rc=$? took=$(( $(date +%s) - start ))s"
python3 -m ir_core info > "$RES/ir_info.txt" 2>&1 || true
cat "$RES/ir_info.txt"

summary="$RES/summary.txt"
: > "$summary"
for spec in "$@"; do
  area="${spec%%:*}"
  limit="${spec#*:}"; [ "$limit" = "$spec" ] && limit=300
  mkdir -p "$RES/$area"
  echo "=== $area (limit ${limit}s) $(date -u +%T)"
  start=$(date +%s)
  timeout --kill-after=10 "$limit" bash "scripts/gpu/$area.sh" > "$RES/$area.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  echo "$area rc=$rc took=${took}s" | tee -a "$summary"
  tail -n 25 "$RES/$area.log"
  # pack after every area: a call cut off at its limit still returns what ran
  tar czf "$OUT/results.tgz" -C "$RES" . && cp "$summary" "$OUT/summary.txt"
done
tar czf "$OUT/results.tgz" -C "$RES" .
