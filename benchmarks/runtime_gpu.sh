#!/usr/bin/env bash
# configs/runtime.yaml on one GPU (full-size random weights) through `t2a-ray launch`, continued with
# `t2a-ray resume` across device calls of at most 10 minutes; analysed once every trial is done.
#
# usage: benchmarks/runtime_gpu.sh SECONDS   (from the repo root, with the GPU build of torch: make TORCH=torch)
# CONFIG (default runtime) names the sweep in configs/; ARCHIVE (default runtime) the files it leaves.
# Each call does what is left and ends within SECONDS, leaving $OUT/$ARCHIVE.tar (the run folder) and
# $OUT/$ARCHIVE.log. Put the tar at .runs/$ARCHIVE.tar (carried) for the next call, which continues from
# it on a fresh machine (a warm machine still has the folder in $RUNS).
#
# Inductor's on-disk caches are off (TORCHINDUCTOR_FORCE_DISABLE_CACHES=1): each worker's first call of a
# shape pays the whole compilation, as a user's first run does, so the setup table and the break-even say
# what the knob costs from cold; with the caches on, a resumed run would recompile from cached kernels.
set -u
deadline=$(( $(date +%s) + ${1:-540} ))
RUNS=${RUNS:-/root/t2a-runs}
NAME=${NAME:-runtime-h200}
CONFIG=${CONFIG:-runtime}
ARCHIVE=${ARCHIVE:-runtime}
EXTRA=${EXTRA:-}                 # more --set overrides, e.g. "--set weights=tiny --set dtype=float32" to try
GPUS_FLAG=${GPUS_FLAG:-1}        # 0: on the CPU (reduce-overhead trials are then infeasible: no CUDA graphs)
export TORCHINDUCTOR_FORCE_DISABLE_CACHES=1
mkdir -p "$RUNS" "${OUT:?set OUT}"
if [ ! -d "$RUNS/$NAME" ] && [ -f ".runs/$ARCHIVE.tar" ]; then tar -xf ".runs/$ARCHIVE.tar" -C "$RUNS"; fi
budget=$(( deadline - $(date +%s) - 45 ))   # SIGINT, then 20 s for Ray to stop, then the tar
if [ -e "$RUNS/$NAME/sweep.yaml" ]; then
  cmd="t2a-ray resume $RUNS/$NAME --gpus $GPUS_FLAG --no-progress"
else
  cmd="t2a-ray launch --config configs/$CONFIG.yaml --set weights=random $EXTRA --out $RUNS --name $NAME --gpus $GPUS_FLAG --no-progress"
fi
if [ "$budget" -gt 60 ]; then
  echo "== $(date -u +%FT%TZ) $cmd (at most $budget s)" >> "$RUNS/$NAME.log"
  timeout -s INT -k 20 "$budget" $cmd >> "$RUNS/$NAME.log" 2>&1
  echo "== exit $?" >> "$RUNS/$NAME.log"
fi
t2a-ray status "$RUNS/$NAME" >> "$RUNS/$NAME.log" 2>&1
if python3 - "$RUNS/$NAME" <<'PY'
import sys
from t2a_ray.config import load_sweep
from t2a_ray.runfolder import RunFolder
run = RunFolder(sys.argv[1])
sys.exit(0 if {t.trial_id for t in load_sweep(run.sweep_yaml).trials()} <= run.finished_trial_ids() else 1)
PY
then
  t2a-ray analyze "$RUNS/$NAME" >> "$RUNS/$NAME.log" 2>&1
fi
tar -cf "$OUT/$ARCHIVE.tar" -C "$RUNS" "$NAME"
cp "$RUNS/$NAME.log" "$OUT/$ARCHIVE.log"
tail -n 40 "$RUNS/$NAME.log"
