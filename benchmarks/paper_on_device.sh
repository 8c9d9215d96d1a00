#!/usr/bin/env bash
# Issue 8 on a device machine: the paper's sweeps through `t2a-ray launch --gpus 1` with random weights,
# one sweep per GPU of a 2-GPU host (each launch pinned to its GPU with CUDA_VISIBLE_DEVICES), continued
# with `t2a-ray resume` across calls of at most 10 minutes; then, on a GPU whose sweep is done, the
# H100 benchmarks of issues 5 (orchestrator overhead) and 3 (meter overhead at 50 ms sampling).
#
# usage: benchmarks/paper_on_device.sh SECONDS   (run from the repo root; results in $OUT)
# Every call does what is left and ends within SECONDS, returning $OUT/runs.tar (the run folders);
# put that file at .runs/runs.tar (carried) for the next call, which continues from it on a fresh
# machine (a warm one still has them in $RUNS). Work is done in priority order, never twice.
set -u
deadline=$(( $(date +%s) + ${1:-540} ))
RUNS=${RUNS:-/root/t2a-runs}
GPUS_FLAG=${GPUS_FLAG:-1}                  # 0: run on the CPU (to try this script without a GPU)
WEIGHTS=${WEIGHTS:-random}
EXTRA_STEPS=${EXTRA_STEPS:-}               # more --set overrides, e.g. for a CPU try
EXTRA_BATCH=${EXTRA_BATCH:---set repeats=2}  # 2 repeats of the 10-waveform windows fit the device time
mkdir -p "$RUNS/bench"
if [ ! -e "$RUNS/.restored" ] && [ -f .runs/runs.tar ]; then tar -xf .runs/runs.tar -C "$RUNS"; fi
touch "$RUNS/.restored"
left() { echo $(( deadline - $(date +%s) )); }

sweep() {  # GPU NAME EXTRA: launch or resume NAME until it is done or the time is up; 0 once done
  local gpu=$1 name=$2 extra=$3 cmd
  [ -e "$RUNS/$name.done" ] && return 0
  local budget=$(( $(left) - 45 ))          # SIGINT, then 20 s for Ray to stop, then the tar
  [ "$budget" -gt 60 ] || return 1
  if [ -e "$RUNS/$name/sweep.yaml" ]; then
    cmd="t2a-ray resume $RUNS/$name --gpus $GPUS_FLAG --no-progress"
  else
    cmd="t2a-ray launch --config configs/$name.yaml --set weights=$WEIGHTS $extra --out $RUNS --gpus $GPUS_FLAG --no-progress"
  fi
  echo "== $(date -u +%FT%TZ) GPU $gpu: $cmd (at most $budget s)" >> "$RUNS/$name.log"
  CUDA_VISIBLE_DEVICES=$gpu timeout -s INT -k 20 "$budget" $cmd >> "$RUNS/$name.log" 2>&1
  echo "== exit $?" >> "$RUNS/$name.log"
  python3 - "$RUNS/$name" <<'EOF' && touch "$RUNS/$name.done"
import sys
from t2a_ray.config import load_sweep
from t2a_ray.runfolder import RunFolder
run = RunFolder(sys.argv[1])
sys.exit(0 if {t.trial_id for t in load_sweep(run.sweep_yaml).trials()} <= run.finished_trial_ids() else 1)
EOF
}

bench() {  # GPU NAME SECONDS_NEEDED COMMAND...: run once, if it fits in the time left
  local gpu=$1 name=$2 need=$3; shift 3
  [ -e "$RUNS/bench/$name.done" ] && return 0
  [ "$(left)" -gt "$need" ] || { echo "skipped $name: $(left) s left, needs $need" >> "$RUNS/bench/$name.log"; return 1; }
  CUDA_VISIBLE_DEVICES=$gpu timeout -s INT -k 10 $(( $(left) - 25 )) "$@" >> "$RUNS/bench/$name.log" 2>&1 \
    && touch "$RUNS/bench/$name.done"
}

card="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i 0 2>/dev/null | head -1)"
( sweep 0 paper-steps "$EXTRA_STEPS" && bench 0 orchestrator_overhead 400 \
    python3 benchmarks/orchestrator_overhead.py --model audioldm --weights "$WEIGHTS" --gpus "$GPUS_FLAG" --trials 50 \
      --first-step 60 --idle-baseline-s 5 --card "$card (device kind nvidia-h100-x2, GPU 0; GPU 1 busy with another sweep)" \
      --out "$RUNS/bench" ) &
( sweep 1 paper-batch "$EXTRA_BATCH" && bench 1 meter_overhead 300 \
    python3 benchmarks/meter_precision.py --skip characterise,matmul,audioldm --overhead-intervals 0.05 \
      --overhead-pairs 5000 --overhead-max-s 240 --out "$RUNS/bench/meter" ) &
wait

mkdir -p "$OUT"
tar -cf "$OUT/runs.tar" -C "$RUNS" --exclude=.restored .
cp "$RUNS"/*.log "$OUT"/ 2>/dev/null
ls -la "$RUNS" "$RUNS/bench"
for f in "$RUNS"/*.log; do echo "--- $f"; tail -n 6 "$f"; done
