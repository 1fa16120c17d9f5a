#!/usr/bin/env bash
# ncu (--clock-control none) of the shapes where cuda misses an issue-5 goal, cuda vs triton
# kernels and a same-bytes copy (scripts/gpu/ncu_gap.py lists them). ~40-60 s.
# Outputs: $RES/ncu_gap/{ncu.csv,calls.txt,ncu_gap.md}
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${RES:-/tmp/ir-gpu-results}/ncu_gap"
mkdir -p "$OUT"
M=gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread
M=$M,smsp__inst_executed.sum,dram__bytes_read.sum,dram__bytes_write.sum
M=$M,sm__warps_active.avg.pct_of_peak_sustained_active
M=$M,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio
M=$M,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio
M=$M,smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio
M=$M,sm__cycles_active.max
ncu --clock-control none --profile-from-start off --csv --page raw --print-units base \
  --metrics "$M" --log-file "$OUT/ncu.csv" python3 scripts/gpu/ncu_gap.py > "$OUT/calls.txt" 2>&1
echo "ncu rc=$?"
python3 - "$OUT/ncu.csv" "$OUT/calls.txt" > "$OUT/ncu_gap.md" 2>&1 <<'PY'
import csv, sys
text = open(sys.argv[1]).read().splitlines()
start = next(i for i, line in enumerate(text) if line.startswith('"ID"'))
rows = [r for r in csv.DictReader(text[start:]) if r.get("ID", "").strip().isdigit()]
calls = [l[5:].strip() for l in open(sys.argv[2]) if l.startswith("CALL ")]
num = lambda r, k: float(str(r.get(k, "nan")).replace(",", "") or "nan")
print("# ncu (--clock-control none, caches flushed per kernel): issue-5 gap shapes\n")
print("Calls in order (a call may launch more than one kernel):\n")
for c in calls:
    print(f"- {c}")
print("\n| # | kernel | us | grid | block | regs | inst (k) | DRAM MB r/w | warps active % | long-sb stall | barrier stall | no-instruction stall | max SM cycles |")
print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for i, r in enumerate(rows):
    name = r.get("Kernel Name", "?")[:60]
    print(f"| {i} | `{name}` | {num(r, 'gpu__time_duration.sum') / 1e3:.2f} | {num(r, 'launch__grid_size'):.0f} | "
          f"{num(r, 'launch__block_size'):.0f} | {num(r, 'launch__registers_per_thread'):.0f} | "
          f"{num(r, 'smsp__inst_executed.sum') / 1e3:.1f} | "
          f"{num(r, 'dram__bytes_read.sum') / 1e6:.2f}/{num(r, 'dram__bytes_write.sum') / 1e6:.2f} | "
          f"{num(r, 'sm__warps_active.avg.pct_of_peak_sustained_active'):.1f} | "
          f"{num(r, 'smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio'):.2f} | "
          f"{num(r, 'smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio'):.2f} | "
          f"{num(r, 'smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio'):.2f} | "
          f"{num(r, 'sm__cycles_active.max'):.0f} |")
PY
cat "$OUT/ncu_gap.md"
