#!/usr/bin/env bash
# Launch-knob experiment of the `cuda` provider (ir-kernels-cuda) on one GPU (H100).
# Budget: 150 s (CUDA_EXP_BUDGET); the extension is prebuilt by run-all.sh
# (a missing build is done here first, inside the budget).
#   1. cuda_exp.py: bitwise checks (fp8 division variants, lean vs former norm kernel,
#      silu's division), then section 0: this round's candidates vs the former defaults
#      vs torch.compile of native (large shapes do_bench, small/mid in a CUDA graph).
#      CUDA_EXP_ARGS (default --only-candidates) is passed on; empty runs sections 1-3 too.
#   2. ncu (--clock-control none): rms_norm_static_fp8_quant at 16384x8192 bf16 with the
#      former kernel (norm_impl 1, 2-correction division), the lean kernel (defaults) and
#      the lean kernel with the weight loaded with the row:
#      duration, DRAM throughput, achieved occupancy, registers, instructions
# Outputs: $RES/cuda_exp/{cuda_exp.txt,cuda_exp.json,exp.log,ncu.csv,ncu_summary.txt}
# Usage (device): bash scripts/gpu/run-all.sh cuda_exp:150
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT="${RES:-/tmp/ir-gpu-results}/cuda_exp"
mkdir -p "$OUT"
export MAX_JOBS="${MAX_JOBS:-16}"
START=$(date +%s)
BUDGET="${CUDA_EXP_BUDGET:-150}"
left() { echo $(( START + BUDGET - $(date +%s) )); }

python3 -m ir_kernels_cuda build > "$OUT/build.log" 2>&1 || echo "build failed: see build.log"

# ---------------------------------------------------------------- 1. knobs
# Leave ~35 s for ncu and the summary.
PY_BUDGET=$(( $(left) - 40 ))
[ "$PY_BUDGET" -lt 20 ] && PY_BUDGET=20
# shellcheck disable=SC2086  # CUDA_EXP_ARGS: several flags
timeout --kill-after=5 $(( PY_BUDGET + 15 )) python3 scripts/gpu/cuda_exp.py --out "$OUT" \
  --budget "$PY_BUDGET" ${CUDA_EXP_ARGS---only-candidates} 2>&1 | tee "$OUT/exp.log" | grep -v "^\s*$" | tail -n 120
echo "cuda_exp.py rc=${PIPESTATUS[0]} left=$(left)s"

# ---------------------------------------------------------------- 2. ncu
TMP="$(mktemp -d)"
cat > "$TMP/ncu_run.py" <<'EOF'
# One launch per profiled kernel, in this order (labels for ncu_summary.txt).
import ctypes
import torch
import ir_core as ir
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
lib = ctypes.CDLL(runtime.library_path())
lib.ir_cuda_knob_set.argtypes = (ctypes.c_char_p, ctypes.c_int)
op = ir.ops.rms_norm_static_fp8_quant
args = op.input_generator(16384, 8192, torch.bfloat16, "cuda")
for label, knobs in (("former kernel", {"norm_impl": 1, "fp8_div": 2}), ("lean (default)", {}),
                     ("lean, early weight", {"norm_wlate": 1})):
    for k in ("fp8_div", "norm_impl", "norm_wlate"):
        lib.ir_cuda_knob_set(k.encode(), knobs.get(k, 0))
    torch.cuda.synchronize()
    op.impls["cuda"].fn(*args)
    torch.cuda.synchronize()
    print(label)
EOF
L=$(left); [ "$L" -gt 40 ] && L=40
if command -v ncu > /dev/null && [ "$L" -ge 12 ]; then
  timeout --kill-after=5 "$L" ncu --clock-control none --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__block_size,launch__occupancy_limit_registers,sm__throughput.avg.pct_of_peak_sustained_elapsed,smsp__inst_executed.sum \
    -k "regex:norm_cached|norm_lean" --log-file "$OUT/ncu.csv" python3 "$TMP/ncu_run.py" > "$OUT/ncu.log" 2>&1
  echo "ncu rc=$?"
  python3 - "$OUT/ncu.csv" > "$OUT/ncu_summary.txt" 2>&1 <<'EOF'
import csv, sys
text = open(sys.argv[1]).read().splitlines()
start = next(i for i, line in enumerate(text) if line.startswith('"ID"'))
rows = [r for r in csv.DictReader(text[start:]) if r.get("ID", "").strip().isdigit()]
labels = ["former kernel", "lean (default)", "lean, early weight"]
num = lambda v: float(str(v).replace(",", "") or "nan")
print("rms_norm_static_fp8_quant 16384x8192 bf16, ncu --clock-control none")
print(f"{'variant':28s} {'us':>8s} {'dram%':>6s} {'occ%':>6s} {'regs':>5s} {'block':>6s} {'reglim':>6s} {'sm%':>5s} {'Minst':>7s}")
for label, r in zip(labels, rows):
    print(f"{label:28s} {num(r['gpu__time_duration.sum']) / 1e3:8.1f} "
          f"{num(r['dram__throughput.avg.pct_of_peak_sustained_elapsed']):6.1f} "
          f"{num(r['sm__warps_active.avg.pct_of_peak_sustained_active']):6.1f} "
          f"{num(r['launch__registers_per_thread']):5.0f} {num(r['launch__block_size']):6.0f} "
          f"{num(r['launch__occupancy_limit_registers']):6.0f} "
          f"{num(r['sm__throughput.avg.pct_of_peak_sustained_elapsed']):5.1f} "
          f"{num(r['smsp__inst_executed.sum']) / 1e6:7.1f}")
if len(rows) != len(labels):
    print(f"warning: {len(rows)} profiled kernels for {len(labels)} labels")
EOF
  cat "$OUT/ncu_summary.txt"
else
  echo "ncu SKIPPED (not found or out of time: ${L}s left)" | tee "$OUT/ncu_summary.txt"
fi
rm -rf "$TMP"
echo "cuda_exp.sh done after $(( $(date +%s) - START ))s"
