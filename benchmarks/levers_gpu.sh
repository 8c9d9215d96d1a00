#!/usr/bin/env bash
# configs/levers-smoke.yaml (or CONFIG=levers, the whole reading) on ONE GPU, full-size random weights,
# through `t2a-ray launch`, continued with `t2a-ray resume` across device calls of at most 10 minutes;
# analysed once every trial is done.
#
# usage (device machine, repo root, wheels carried in .whl):  [CONFIG=levers NAME=…] OUT=… bash benchmarks/levers_gpu.sh SECONDS
# The wheels: as /work/shared/device/NOTES.md says, plus torchao for the precision axis —
#   ../shared/device/wheelhouse.sh torchao==0.18.0        (a 3.4 MB cp310-abi3 wheel)
# Each call does what is left and ends within SECONDS, leaving $OUT/<name>.tar (the run folder) and
# $OUT/<name>.log. Put the tar at .runs/<name>.tar (carried) for the next call,
# which continues from it on a fresh machine (a warm machine still has the folder in $RUNS).
#
# Inductor's on-disk caches are off, as in benchmarks/runtime_gpu.sh: each worker's first compilation of
# a shape is paid in full, as a user's first run pays it, so the setup table says what a knob costs cold.
set -u
deadline=$(( $(date +%s) + ${1:-540} ))
CONFIG=${CONFIG:-levers-smoke}
NAME=${NAME:-$CONFIG}
RUNS=${RUNS:-/root/t2a-runs}
export TORCHINDUCTOR_FORCE_DISABLE_CACHES=1
mkdir -p "$RUNS" "${OUT:?set OUT}"
if [ ! -d "$RUNS/$NAME" ] && [ -f ".runs/$NAME.tar" ]; then tar -xf ".runs/$NAME.tar" -C "$RUNS"; fi
python3 -c "import torchao" 2>/dev/null || echo "== torchao is missing: the launch will refuse precision int8/fp8" >> "$RUNS/$NAME.log"
budget=$(( deadline - $(date +%s) - 45 ))   # SIGINT, then 20 s for Ray to stop, then the tar
if [ -e "$RUNS/$NAME/sweep.yaml" ]; then
  cmd="t2a-ray resume $RUNS/$NAME --gpus 1 --no-progress"
else
  cmd="t2a-ray launch --config configs/$CONFIG.yaml --out $RUNS --name $NAME --gpus 1 --no-progress"
fi
{
  echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,compute_cap --format=csv,noheader
  echo "$cmd (at most $budget s)"
} >> "$RUNS/$NAME.log"
if [ "$budget" -gt 60 ]; then
  timeout -s INT -k 20 "$budget" $cmd >> "$RUNS/$NAME.log" 2>&1
  echo "== exit $? at $(date -u +%FT%TZ)" >> "$RUNS/$NAME.log"
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
tar -cf "$OUT/$NAME.tar" -C "$RUNS" "$NAME"
cp "$RUNS/$NAME.log" "$OUT/"
tail -n 60 "$RUNS/$NAME.log"
