#!/usr/bin/env bash
# GPU checks of the Triton provider (ir-kernels-triton), run by the lead's driver
# (scripts/gpu/run-all.sh triton:120) on an H100 box: repo root as cwd, the
# workspace packages installed as wheels into python3, no network, no uv.
#
# What it runs (GPU mode: TRITON_INTERPRET unset):
#   * packages/ir-kernels-triton/tests/test_triton_conformance.py: the ir_core.testing
#     kit on every op in fp32/fp16/bf16 at the kit's GPU shapes (tokens 0,1,7,128,1031;
#     hidden 64,1000,4096,5120,8200; row-strided inputs), batch invariance
#     (2048 x 4096 rows, bf16 and fp32), chunked long rows, opcheck;
#   * test_triton_gpu.py: CUDA-graph capture + replay == eager, bit for bit, every op;
#     torch.compile (Inductor) of the triton_op == eager; norm bits independent of input
#     alignment; the eager fast launcher == Triton's own launcher; test_triton_dispatch.py,
#     test_triton_fastlaunch.py, test_triton_exact_sum.py (the norm sum, on the GPU),
#     test_triton_launch_shapes.py (row split, few-row warps, row tiles: same bits).
# Ops are split over parallel pytest processes (Triton compiles are single-threaded
# per process; the box has 16 cores). Outputs: $RES/triton/{junit-*.xml,*.log,summary.txt}.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUTDIR="${RES:-/tmp/ir-gpu-results}/triton"
mkdir -p "$OUTDIR"
TESTS=packages/ir-kernels-triton/tests
PER_GROUP_LIMIT="${IR_TRITON_GROUP_LIMIT:-105}"  # groups run in parallel; whole script < 120 s

echo "triton.sh: $(date -u +%T) $(python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0))' 2>&1)"

# group name | ops (comma list, empty: every op) | test files
GROUPS_SPEC=(
  "norm|rms_norm|$TESTS/test_triton_conformance.py"
  "addnorm|fused_add_rms_norm|$TESTS/test_triton_conformance.py"
  "act|silu_and_mul,gelu_and_mul|$TESTS/test_triton_conformance.py"
  "rotary|rotary_embedding|$TESTS/test_triton_conformance.py"
  "quant|static_scaled_fp8_quant,dynamic_per_token_scaled_fp8_quant|$TESTS/test_triton_conformance.py"
  "group|per_token_group_quant_fp8|$TESTS/test_triton_conformance.py"
  "normq|rms_norm_static_fp8_quant|$TESTS/test_triton_conformance.py"
  "addnormq|fused_add_rms_norm_static_fp8_quant|$TESTS/test_triton_conformance.py"
  "gpu||$TESTS/test_triton_gpu.py $TESTS/test_triton_dispatch.py $TESTS/test_triton_fastlaunch.py $TESTS/test_triton_exact_sum.py $TESTS/test_triton_launch_shapes.py"
)

pids=()
names=()
for spec in "${GROUPS_SPEC[@]}"; do
  IFS='|' read -r name ops files <<< "$spec"
  echo "  start $name (${ops:-all ops})"
  # shellcheck disable=SC2086
  IR_TRITON_TEST_OPS="$ops" timeout --kill-after=5 "$PER_GROUP_LIMIT" \
    python3 -m pytest $files -q -p no:cacheprovider -m "not rocm and not xpu" \
      --junitxml="$OUTDIR/junit-$name.xml" --durations=5 \
      > "$OUTDIR/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
done

status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  [ "$rc" -ne 0 ] && status=1
  echo "  ${names[$i]}: rc=$rc $(tail -n 1 "$OUTDIR/${names[$i]}.log")"
done

# One summary over every junit file: totals and each failure's first line.
python3 - "$OUTDIR" <<'EOF' | tee "$OUTDIR/summary.txt"
import glob, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
bad = []
for f in sorted(glob.glob(f"{out}/junit-*.xml")):
    try:
        root = ET.parse(f).getroot()
    except ET.ParseError as exc:
        bad.append(f"{f}: unreadable ({exc}); the group was probably killed by its time limit")
        continue
    for suite in root.iter("testsuite"):
        for k in tot:
            tot[k] += int(suite.get(k, 0))
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            for el in case.findall(tag):
                msg = (el.get("message") or "").splitlines()[0][:300] if el.get("message") else ""
                bad.append(f"{tag.upper()} {case.get('classname')}::{case.get('name')}: {msg}")
for log in sorted(glob.glob(f"{out}/*.log")):
    name = log.rsplit("/", 1)[1][:-4]
    if not glob.glob(f"{out}/junit-{name}.xml"):
        bad.append(f"group {name}: no junit file (killed by its time limit?); see {name}.log")
print("triton GPU tests:", ", ".join(f"{k}={v}" for k, v in tot.items()))
for line in bad:
    print(" ", line)
EOF
echo "triton.sh: done $(date -u +%T) status=$status"
exit "$status"
