#!/usr/bin/env bash
# End-to-end on an NVIDIA GPU (H100): a Llama (hidden 1024, 2 layers, random weights,
# no download) moved onto IR ops (ir_core.nn.hf.patch_model), priorities triton-first
# and cuda-first, eager and under torch.compile(backend=ir_compile.backend(),
# dynamic=True), against the unmodified model.
#   fp32: the correctness claims (prefill logits within 1e-3, greedy tokens equal) for
#         all four configurations (bf16 near-ties flip argmaxes of a random model);
#   bf16: tokens/s (greedy without KV cache for all four, generate() for eager);
# a Qwen3 check (fp32); batch invariance of an IR op chain on the GPU (bf16, bitwise).
# One compile per compiled configuration (dynamic shapes; float scalars specialised).
# Budget: 90 s (driver); the script stops starting compiles that would not fit in 80 s.
# Outputs: $RES/e2e/{e2e_gpu.md,e2e_gpu.json,e2e.log}
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT="${RES:-/tmp/ir-gpu-results}/e2e"
mkdir -p "$OUT"
# share the CUDA provider's build cache with scripts/gpu/cuda.sh (built there first)
export IR_CUDA_CACHE="${IR_CUDA_CACHE:-/tmp/ir-cuda-cache}"
export MAX_JOBS="${MAX_JOBS:-16}"
export E2E_BUDGET_S="${E2E_BUDGET_S:-80}"
echo "=== e2e $(date -u +%T)"
timeout --kill-after=5 85 python3 scripts/gpu/e2e_gpu.py 2>&1 | tee "$OUT/e2e.log"
rc=${PIPESTATUS[0]}
echo "e2e rc=$rc"
[ -f "$OUT/e2e_gpu.md" ] && cat "$OUT/e2e_gpu.md"
exit "$rc"
