#!/usr/bin/env bash
# The paper's steps sweep replicated on ONE GPU of one host, in one launch (random full-size weights,
# fp16, eager), so that every model is measured on the same card, host and day.
#
# usage (device machine, repo root, wheels carried in .whl):  [CONFIG=paper-batch NAME=…] OUT=… bash benchmarks/replication_gpu.sh SECONDS [--set …]
# Leaves $OUT/<name>.tar (the run folder without Tune's own state) and $OUT/<name>.log.
set -u
deadline=$(( $(date +%s) + ${1:-540} )); shift || true
NAME=${NAME:-replication-steps}
RUNS=${RUNS:-/root/t2a-runs}
mkdir -p "$RUNS" "${OUT:?set OUT}"
budget=$(( deadline - $(date +%s) - 40 ))   # SIGINT, then Ray's stop and the tar
{
  echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit --format=csv,noheader
  echo "t2a-ray launch --config configs/${CONFIG:-paper-steps}.yaml --set weights=random $* --out $RUNS --name $NAME --gpus 1 --no-progress"
} > "$RUNS/$NAME.log"
timeout -s INT -k 20 "$budget" t2a-ray launch --config configs/${CONFIG:-paper-steps}.yaml --set weights=random "$@" \
  --out "$RUNS" --name "$NAME" --gpus 1 --no-progress >> "$RUNS/$NAME.log" 2>&1
echo "== exit $? at $(date -u +%FT%TZ)" >> "$RUNS/$NAME.log"
tar -cf "$OUT/$NAME.tar" -C "$RUNS" --exclude="$NAME/tune" "$NAME"
cp "$RUNS/$NAME.log" "$OUT/"
tail -n 60 "$RUNS/$NAME.log"
