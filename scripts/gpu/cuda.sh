#!/usr/bin/env bash
# GPU checks of the `cuda` provider (ir-kernels-cuda) on an NVIDIA GPU (H100).
# Budget: 150 s on 16 cores (CUDA_SH_BUDGET). Steps (each under its own time limit; a failing
# step is reported and the script goes on):
#   1. prebuild the extension: python3 -m ir_kernels_cuda build (MAX_JOBS=16)
#   2. GPU tests: testing kit on every op x fp32/fp16/bf16, batch invariance,
#      opcheck, layouts, bitwise checks (packages/ir-kernels-cuda/tests -m cuda)
#   3. latency/bandwidth probe: 1x4096 rms_norm per call, and a few ops at
#      16384x4096 bf16 against the measured copy bandwidth (not the sweep: `ir bench` does that),
#      plus the norm chunks-per-thread knob (auto/2/4) at 16384 x 2048/4096/8192
#   4. compute-sanitizer memcheck over a short run of every op
#   5. ncu (--clock-control none): duration and DRAM throughput per kernel
# Outputs: $RES/cuda/{build.log,compiler.log,pytest.log,probe.txt,memcheck.log,ncu.csv,ncu_summary.txt,summary.txt}
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT="${RES:-/tmp/ir-gpu-results}/cuda"
mkdir -p "$OUT"
export MAX_JOBS="${MAX_JOBS:-16}"
# Default cache (~/.cache/ir-kernels-cuda unless IR_CUDA_CACHE is set): a build
# done earlier by `ir info` (run-all.sh runs it first; it evaluates `supported`)
# is reused here.
TMP="$(mktemp -d)"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

DEADLINE=$(( $(date +%s) + ${CUDA_SH_BUDGET:-150} ))

step() {  # step NAME LIMIT_S LOGFILE CMD...  (limit shrinks to what the budget has left)
  local name="$1" limit="$2" log="$3"; shift 3
  local left=$(( DEADLINE - $(date +%s) ))
  [ "$left" -lt "$limit" ] && limit="$left"
  if [ "$limit" -lt 10 ]; then
    echo "$name SKIPPED: out of time budget" | tee -a "$SUMMARY"
    return 0
  fi
  echo "=== $name (limit ${limit}s) $(date -u +%T)"
  local start rc
  start=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$log" 2>&1
  rc=$?
  echo "$name rc=$rc took=$(( $(date +%s) - start ))s" | tee -a "$SUMMARY"
  tail -n 15 "$log"
  return 0
}

# ---------------------------------------------------------------- 1. build
step build 110 "$OUT/build.log" python3 -m ir_kernels_cuda build --verbose
python3 -m ir_kernels_cuda info >> "$OUT/build.log" 2>&1
log=$(python3 -m ir_kernels_cuda info 2>/dev/null | awk '/build log:/ {print $3}')
[ -n "$log" ] && [ -f "$log" ] && cp "$log" "$OUT/compiler.log"

# ---------------------------------------------------------------- 2. tests
step pytest 90 "$OUT/pytest.log" python3 -m pytest packages/ir-kernels-cuda/tests -m cuda -q \
  -p no:cacheprovider --durations=10 -rfEs

# ---------------------------------------------------------------- 3. probe
cat > "$TMP/probe.py" <<'EOF'
import time
import torch
import ir_core as ir
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
dev = "cuda"
print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, "cuda", torch.version.cuda)


def per_call_us(fn, iters=3000):
    for _ in range(100):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters * 1e6


def gpu_us(fn, iters=20):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters * 1e3


x1 = torch.randn(1, 4096, device=dev, dtype=torch.bfloat16)
w1 = torch.randn(4096, device=dev, dtype=torch.bfloat16)
k = torch.ops.ir_cuda.rms_norm.default
with ir.priority(rms_norm=["cuda", "native"]):
    assert ir.ops.rms_norm.dispatch(x1, w1, 1e-6).provider == "cuda"
    t_ir = per_call_us(lambda: ir.ops.rms_norm(x1, w1, 1e-6))
t_op = per_call_us(lambda: k(x1, w1, 1e-6, None))
d = runtime._direct
t_direct = per_call_us(lambda: d.rms_norm(x1, w1, 1e-6, None)) if d is not None else float("nan")
g = torch.cuda.CUDAGraph()
with torch.cuda.graph(g):
    for _ in range(100):
        k(x1, w1, 1e-6, None)
t_graph = gpu_us(g.replay, 10) / 100
print(f"rms_norm 1x4096 bf16: {t_ir:.2f} us/call via ir.ops.rms_norm, {t_op:.2f} us/call via "
      f"torch.ops.ir_cuda.rms_norm, {t_direct:.2f} us/call via the direct binding "
      f"({'loaded' if d is not None else 'NOT loaded'}), {t_graph:.2f} us/kernel in a CUDA graph "
      f"(goal <= 4 us end to end)")

T, H = 16384, 4096
src = torch.empty(T * H * 4, dtype=torch.uint8, device=dev)  # 256 MiB
dst = torch.empty_like(src)
copy_bw = 2 * src.numel() / (gpu_us(lambda: dst.copy_(src)) * 1e-6) / 1e9
print(f"copy bandwidth (read+write, 256 MiB): {copy_bw:.0f} GB/s")


def tensors(obj):
    items = obj if isinstance(obj, (tuple, list)) else (obj,)
    return [t for t in items if isinstance(t, torch.Tensor)]


print(f"{'op (16384 x 4096, bf16)':42s} {'us':>8s} {'GB/s':>7s} {'% copy':>7s}")
for name in ("rms_norm", "fused_add_rms_norm", "silu_and_mul", "rms_norm_static_fp8_quant",
             "fused_add_rms_norm_static_fp8_quant", "static_scaled_fp8_quant",
             "dynamic_per_token_scaled_fp8_quant", "per_token_group_quant_fp8",
             "rotary_embedding"):
    op = getattr(ir.ops, name)
    args = op.input_generator(T, H, torch.bfloat16, dev)
    fn = op.impls["cuda"].fn  # in place where the op allows it: no clones timed
    out = fn(*args)
    if op.bytes_moved is not None:
        nbytes = op.bytes_moved(*args)
    else:
        nbytes = sum(t.numel() * t.element_size() for t in tensors(args) if t.dim() >= 2)
        nbytes += sum(t.numel() * t.element_size() for t in tensors(out))
    us = gpu_us(lambda: fn(*args))
    bw = nbytes / (us * 1e-6) / 1e9
    print(f"{name:42s} {us:8.1f} {bw:7.0f} {100 * bw / copy_bw:6.1f}%")

# Norm launch knob: target 16-byte chunks per thread (0 = the automatic choice).
knob = torch.ops.ir_cuda._norm_chunks_per_thread
print(f"norm chunks/thread knob, 16384 tokens bf16, % copy: {'op':38s} {'hidden':>6s} {'auto':>6s} {'2':>6s} {'4':>6s}")
for hidden in (2048, 4096, 8192):
    for name in ("rms_norm", "fused_add_rms_norm", "rms_norm_static_fp8_quant",
                 "fused_add_rms_norm_static_fp8_quant"):
        op = getattr(ir.ops, name)
        args = op.input_generator(T, hidden, torch.bfloat16, dev)
        fn = op.impls["cuda"].fn
        nbytes = op.bytes_moved(*args) if op.bytes_moved is not None else None
        cells = []
        for cpt in (0, 2, 4):
            knob(cpt)
            us = gpu_us(lambda: fn(*args))
            cells.append(f"{100 * nbytes / (us * 1e-6) / 1e9 / copy_bw:5.1f}%" if nbytes else f"{us:5.1f}us")
        knob(0)
        print(f"{'':51s}{name:38s} {hidden:6d} {cells[0]:>6s} {cells[1]:>6s} {cells[2]:>6s}")
        del args
EOF
step probe 40 "$OUT/probe.txt" python3 "$TMP/probe.py"

# ---------------------------------------------------------------- 4. memcheck
cat > "$TMP/sanitize.py" <<'EOF'
# Every op once per layout: tails, misaligned rows, looped long rows, 1 and 0 tokens.
import torch
import ir_core as ir
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
n = 0
for name in runtime.OP_NAMES:
    op = getattr(ir.ops, name)
    impl = op.impls["cuda"]
    for dtype in (torch.bfloat16, torch.float32):
        for tokens, hidden in ((0, 64), (1, 4096), (5, 1001), (3, 40001)):
            for variant in op.test_variants:
                args = list(op.input_generator(tokens, hidden, dtype, "cuda", **variant))
                for i in range(len(args)):  # misaligned copy of 2-D activations
                    a = args[i]
                    if isinstance(a, torch.Tensor) and a.dim() == 2 and a.is_floating_point() and a.shape[0] == tokens and tokens:
                        buf = torch.empty(a.shape[0], a.shape[1] + 3, dtype=a.dtype, device="cuda")
                        buf[:, 1:-2].copy_(a)
                        args[i] = buf[:, 1:-2]
                if impl.accepts(*args):
                    impl.fn(*args)
                    n += 1
torch.cuda.synchronize()
print(f"ran {n} kernel calls")
EOF
if command -v compute-sanitizer > /dev/null; then
  # No caching allocator: every tensor is its own allocation, so an overrun is
  # not hidden inside a pooled block.
  step memcheck 50 "$OUT/memcheck.log" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
    compute-sanitizer --tool memcheck --error-exitcode 7 python3 "$TMP/sanitize.py"
  grep -E "ERROR SUMMARY|ran [0-9]+ kernel" "$OUT/memcheck.log" | tee -a "$SUMMARY"
else
  echo "memcheck SKIPPED: compute-sanitizer not found" | tee -a "$SUMMARY"
fi

# ---------------------------------------------------------------- 5. ncu
cat > "$TMP/ncu_run.py" <<'EOF'
# One launch per profiled kernel, in this order (labels for ncu_summary.txt).
import torch
import ir_core as ir
from ir_kernels_cuda import runtime

ir.load_providers()
assert runtime.ensure_loaded(), runtime.unavailable_reason()
bf16 = torch.bfloat16
for label, name, tokens in (("rms_norm 16384x4096", "rms_norm", 16384),
                            ("fused_add_rms_norm 16384x4096", "fused_add_rms_norm", 16384),
                            ("silu_and_mul 16384x4096", "silu_and_mul", 16384),
                            ("static_scaled_fp8_quant 16384x4096", "static_scaled_fp8_quant", 16384),
                            ("dynamic_per_token_fp8_quant 16384x4096", "dynamic_per_token_scaled_fp8_quant", 16384),
                            ("per_token_group_quant_fp8 16384x4096", "per_token_group_quant_fp8", 16384),
                            ("rms_norm_static_fp8_quant 16384x4096", "rms_norm_static_fp8_quant", 16384),
                            ("rotary_embedding 16384x4096", "rotary_embedding", 16384),
                            ("rms_norm 1x4096", "rms_norm", 1)):
    op = getattr(ir.ops, name)
    args = op.input_generator(tokens, 4096, bf16, "cuda")
    torch.cuda.synchronize()
    op.impls["cuda"].fn(*args)
    torch.cuda.synchronize()
    print(label)
EOF
if command -v ncu > /dev/null; then
  step ncu 40 "$OUT/ncu.log" ncu --clock-control none --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,dram__bytes_write.sum \
    -k "regex:norm_|act_|quant_|rotary" --log-file "$OUT/ncu.csv" python3 "$TMP/ncu_run.py"
  python3 - "$OUT/ncu.csv" "$TMP/ncu_run.py" > "$OUT/ncu_summary.txt" 2>&1 <<'EOF'
import csv, re, sys
text = open(sys.argv[1]).read().splitlines()
start = next(i for i, line in enumerate(text) if line.startswith('"ID"'))
rows = [r for r in csv.DictReader(text[start:]) if r.get("ID", "").strip().isdigit()]
labels = re.findall(r'\("([^"]+)", "', open(sys.argv[2]).read())
num = lambda v: float(str(v).replace(",", "") or "nan")
print(f"{'kernel (bf16)':40s} {'duration us':>12s} {'dram % peak':>12s} {'MB moved':>9s}  name")
for label, r in zip(labels, rows):
    ns = num(r["gpu__time_duration.sum"])
    mb = (num(r["dram__bytes_read.sum"]) + num(r["dram__bytes_write.sum"])) / 1e6
    print(f"{label:40s} {ns / 1e3:12.2f} {num(r['dram__throughput.avg.pct_of_peak_sustained_elapsed']):12.1f} "
          f"{mb:9.1f}  {r['Kernel Name'][:60]}")
if len(rows) != len(labels):
    print(f"warning: {len(rows)} profiled kernels for {len(labels)} labels")
EOF
  cat "$OUT/ncu_summary.txt" | tee -a "$SUMMARY"
else
  echo "ncu SKIPPED: ncu not found" | tee -a "$SUMMARY"
fi

grep -E "passed|failed" "$OUT/pytest.log" | tail -n 1 | tee -a "$SUMMARY"
grep -E "^rms_norm 1x4096|^copy" "$OUT/probe.txt" | tee -a "$SUMMARY"
rm -rf "$TMP"
echo "cuda.sh done $(date -u +%T)"
