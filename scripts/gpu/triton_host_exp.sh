#!/usr/bin/env bash
# Triton provider: eager host cost and the Inductor-vs-eager rms_norm check.
# Run by the lead's driver on the H100 box (repo root as cwd, workspace wheels
# installed into python3, no network):
#   bash scripts/gpu/run-all.sh triton_host_exp:60
# Writes "$RES/triton_host_exp/": host_profile.{md,json,log}, fastlaunch.log,
# inductor_rms_norm.log. Steps (about 50 s in all; each under its own limit):
#   1. scripts/gpu/triton_host_profile.py: per-call host time of rms_norm,
#      fused_add_rms_norm, silu_and_mul, static_scaled_fp8_quant at 1 x 4096 bf16,
#      the triton impl and ir.ops with the fast launch on and off (off = Triton's
#      own launcher), the cuda impl and a bare torch.empty as references; fast ==
#      normal launcher bit for bit; cProfile of the fast path.
#   2. the fast-launch tests on the GPU (key vs Triton's binder, cached kernel ==
#      Triton's launcher, a misaligned input gets its own kernel).
#   3. test_inductor_compiles_the_triton_op[rms_norm] -x -vv -s: prints, per token
#      count (5, 77, 1031), the type Inductor gave eps and how many elements differ
#      from eager (max abs diff).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUTDIR="${RES:-/tmp/ir-gpu-results}/triton_host_exp"
mkdir -p "$OUTDIR"
TESTS=packages/ir-kernels-triton/tests
status=0

echo "triton_host_exp: $(date -u +%T) $(python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0))' 2>&1)"

timeout --kill-after=3 20 python3 scripts/gpu/triton_host_profile.py --out "$OUTDIR" --calls 1000 \
  > "$OUTDIR/host_profile.log" 2>&1
rc=$?; [ "$rc" -ne 0 ] && status=1
echo "1. host profile rc=$rc"
if [ -f "$OUTDIR/host_profile.md" ]; then
  sed -n '1,9p' "$OUTDIR/host_profile.md"
  grep -A14 "ncalls" "$OUTDIR/host_profile.md" | head -15
else
  tail -n 15 "$OUTDIR/host_profile.log"
fi

timeout --kill-after=3 12 python3 -m pytest -q -s -p no:cacheprovider \
  "$TESTS/test_triton_fastlaunch.py" \
  "$TESTS/test_triton_gpu.py::test_fast_launch_matches_the_normal_launcher" \
  > "$OUTDIR/fastlaunch.log" 2>&1
rc=$?; [ "$rc" -ne 0 ] && status=1
echo "2. fast-launch tests rc=$rc: $(grep -oE "fast launch: .*" "$OUTDIR/fastlaunch.log" | tail -n 1) $(tail -n 1 "$OUTDIR/fastlaunch.log")"
[ "$rc" -ne 0 ] && grep -E "^(FAILED|ERROR|E )" "$OUTDIR/fastlaunch.log" | head -n 12

timeout --kill-after=3 26 python3 -m pytest -x -vv -s -p no:cacheprovider \
  "$TESTS/test_triton_gpu.py::test_inductor_compiles_the_triton_op[rms_norm]" \
  > "$OUTDIR/inductor_rms_norm.log" 2>&1
rc=$?; [ "$rc" -ne 0 ] && status=1
echo "3. inductor rms_norm rc=$rc"
grep -oE "inductor rms_norm tokens=.*|(PASSED|FAILED).*|[A-Za-z]*Error.*" "$OUTDIR/inductor_rms_norm.log" | head -n 12

echo "triton_host_exp: done $(date -u +%T) status=$status"
exit "$status"
