#!/usr/bin/env bash
# Opcode mix of the cuda and triton norm+fp8 kernels (rms_norm_static_fp8_quant, bf16,
# hidden 2048, the many-rows launch), from cuobjdump -sass (issue 5: why ours issues 14% more
# instructions, ncu_gap_h100.md). Writes $RES/sass_mix/{cuda.sass,triton.sass,mix.md}. ~10 s
# after the extension build.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${RES:-/tmp/ir-gpu-results}/sass_mix"
mkdir -p "$OUT"
export TRITON_CACHE_DIR="$OUT/triton_cache"
python3 - <<'PY'
import torch, ir_core as ir
ir.load_providers()
op = ir.ops.rms_norm_static_fp8_quant
args = op.input_generator(4096, 2048, torch.bfloat16, "cuda")
op.impls["triton"].fn(*args); op.impls["cuda"].fn(*args); torch.cuda.synchronize()
from ir_kernels_cuda import runtime
print(runtime.library_path())
open("/tmp/ir_cuda_lib.txt", "w").write(runtime.library_path())
PY
LIB=$(cat /tmp/ir_cuda_lib.txt)
cuobjdump -sass "$LIB" > "$OUT/all_cuda.sass" 2>&1
python3 - "$OUT" <<'PY'
import re, sys, glob, subprocess, collections
out = sys.argv[1]
text = open(f"{out}/all_cuda.sass").read()
# the lean norm kernel, bf16, no residual, fp8, 4 chunks a thread, weight early
blocks = re.split(r"\n\s*Function : ", text)
want = [b for b in blocks if "norm_lean_kernel" in b.split("\n", 1)[0]
        and "bfloat16Lb0ELb1ELi4ELb0E" in b.split("\n", 1)[0]]
cuda = want[0] if want else ""
open(f"{out}/cuda.sass", "w").write(cuda)
cubins = [p for p in glob.glob(f"{out}/triton_cache/**/*.cubin", recursive=True)]
tri = ""
for c in cubins:
    s = subprocess.run(["cuobjdump", "-sass", c], capture_output=True, text=True).stdout
    if "rms_norm" in s:
        tri += s
open(f"{out}/triton.sass", "w").write(tri)
def mix(s):
    ops = re.findall(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]+)", s)
    c = collections.Counter(o.split(".")[0] for o in ops)
    return c, len(ops)
cm, cn = mix(cuda); tm, tn = mix(tri)
lines = ["# SASS opcode mix: rms_norm_static_fp8_quant kernels (static count, not executed)", "",
         f"cuda: {cn} instructions ({len(want)} matching functions); triton: {tn} ({len(cubins)} cubins)", "",
         "| opcode | cuda | triton |", "|---|---:|---:|"]
for k in sorted(set(cm) | set(tm), key=lambda k: -(cm[k] + tm[k])):
    lines.append(f"| {k} | {cm[k]} | {tm[k]} |")
open(f"{out}/mix.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines[:60]))
PY
# Executed instructions per opcode (ncu InstructionStats), one call of each kernel at 4096 x 2048.
cat > /tmp/sass_one.py <<'PY'
import torch, ir_core as ir
ir.load_providers()
op = ir.ops.rms_norm_static_fp8_quant
args = op.input_generator(4096, 2048, torch.bfloat16, "cuda")
for p in ("cuda", "triton", "cuda", "triton"):
    op.impls[p].fn(*args)
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStart()
op.impls["cuda"].fn(*args); torch.cuda.synchronize()
op.impls["triton"].fn(*args); torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStop()
PY
timeout 60 ncu --clock-control none --profile-from-start off --metrics sass__inst_executed_per_opcode \
  --print-metric-instances values --csv --page raw python3 /tmp/sass_one.py > "$OUT/opcode_exec.csv" 2>&1
echo "ncu rc=$?"
head -c 6000 "$OUT/opcode_exec.csv"
