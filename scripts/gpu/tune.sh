#!/usr/bin/env bash
# ir tune on an H100 (issue 10). Budget: 150 s. Needs the workspace wheels
# installed into python3 (scripts/gpu/run-all.sh does it), triton + cuda providers.
#
# 1. `ir tune` rms_norm, fused_add_rms_norm, silu_and_mul in bf16 over
#    tokens {1,16,128,1024,4096,16384,32768} x hidden {2048,4096,8192}
#    -> $RES/tune/tune_h100.json
# 2. dispatch with that file applied vs each single fixed priority
#    (cuda-first, triton-first, native) at every shape
#    -> $RES/tune/tune_compare_h100.md (+ .json)
# 3. `ir explain` under IR_OP_PRIORITY_FILE (the environment path) at a small
#    and a large shape -> $RES/tune/explain_env.txt
# Run it after cuda.sh in the same session so the CUDA extension build is cached
# (step 0 builds it otherwise and prints how long that took).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
RES="${RES:-/tmp/ir-gpu-results}"
DIR="$RES/tune"
mkdir -p "$DIR"
unset IR_OP_PRIORITY IR_OP_PRIORITY_FILE IR_BATCH_INVARIANT
OPS="rms_norm fused_add_rms_norm silu_and_mul"
TOKENS="${TUNE_TOKENS:-1,16,128,1024,4096,16384,32768}"   # overridable for a dry run
HIDDEN="${TUNE_HIDDEN:-2048,4096,8192}"
PY="${PYTHON:-python3}"
FILE="$DIR/tune_h100.json"
failed=()

step() { echo "=== $1 $(date -u +%T)"; }

step "0. CUDA extension (cached after cuda.sh)"
t0=$(date +%s)
"$PY" -m ir_kernels_cuda build > "$DIR/cuda_build.log" 2>&1 || { echo "cuda build failed (see cuda_build.log); cuda is then unsupported and not tuned"; failed+=(cuda-build); }
echo "cuda build step took $(( $(date +%s) - t0 ))s"

step "1. ir tune"
"$PY" -m ir_core tune $OPS --dtype bfloat16 --tokens "$TOKENS" --hidden "$HIDDEN" \
  --providers cuda,triton,native --budget 0.03 --out "$FILE" 2>&1 | tee "$DIR/tune.log" \
  || failed+=(tune)
[ -s "$FILE" ] || { echo "no tuned file written"; failed+=(tune-file); }

if [ -s "$FILE" ]; then
  step "2. tuned vs fixed priorities"
  "$PY" -m ir_core tune $OPS --compare "$FILE" --dtype bfloat16 --tokens "$TOKENS" --hidden "$HIDDEN" \
    --fixed "cuda,native;triton,native;native" --budget 0.1 --rounds 5 \
    --md "$DIR/tune_compare_h100.md" --json "$DIR/tune_compare_h100.json" > "$DIR/compare.log" 2>&1 \
    || failed+=(compare)
  tail -n 70 "$DIR/compare.log"

  step "3. explain under IR_OP_PRIORITY_FILE"
  for shape in 1x4096 32768x4096; do
    IR_OP_PRIORITY_FILE="$FILE" "$PY" -m ir_core explain rms_norm --shape "$shape" --dtype bfloat16 \
      >> "$DIR/explain_env.txt" 2>&1 || failed+=(explain-$shape)
  done
  cat "$DIR/explain_env.txt"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED steps: ${failed[*]}"
  exit 1
fi
echo "tune.sh: all steps passed"
