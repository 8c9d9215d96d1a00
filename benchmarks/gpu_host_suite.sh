#!/usr/bin/env bash
# The whole test suite on a GPU host, one tests/ folder at a time under `timeout`, so that a stall still
# leaves its log: the record for benchmarks/results/gpu_host_suite.md (card, date, command, counts, wall).
#
# usage, from the repo root on the device machine, after the wheel install lines of wheelhouse.sh (the
# project installed with pip --target, PYTHONPATH set; pytest, pytest-timeout and hypothesis present):
#   OUT=/tmp/out benchmarks/gpu_host_suite.sh [FOLDER ...]      # default: every folder under tests/
# BUDGET_S (default 540) bounds the whole call (a device command gets 10 minutes): a folder that would
# start with less than MIN_FOLDER_S (60) left is listed as not run, for the next call to name.
#
# Writes, under $OUT: suite-<folder>.log (pytest's output, with the 25 slowest tests) for each folder,
# and gpu_host_suite.md (the card, the date, each folder's command, counts, wall time and exit status;
# exit 124: the folder hit its timeout, its log shows the last test that ran).
set -uo pipefail
out=${OUT:?set OUT to a folder for the logs}
py=${PYTHON:-python3}
budget=${BUDGET_S:-540}
min_folder=${MIN_FOLDER_S:-60}
per_test=${PER_TEST_S:-300}
extra=${PYTEST_ARGS:-}          # e.g. "-n 4 --dist worksteal" where pytest-xdist is installed
export PYTHONUNBUFFERED=1
mkdir -p "$out"
deadline=$(( SECONDS + budget ))
if [ $# -gt 0 ]; then folders=("$@"); else folders=($(ls -d tests/*/ | grep -v fixtures | sed 's:/$::')); fi
md="$out/gpu_host_suite.md"
{
  echo "# The test suite on a GPU host"
  echo
  cards=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | paste -sd ';')
  echo "- card: ${cards:-none (no nvidia-smi)}"
  echo "- host: $(nproc --all) CPU cores (OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}); $("$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuda available:", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "- date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- per folder: \`timeout -k 20 <left> $py -m pytest -q -p no:cacheprovider -o timeout=$per_test --durations=25 $extra FOLDER\`"
  echo
  echo "| folder | result (pytest's last line) | wall (s) | exit |"
  echo "| --- | --- | --- | --- |"
} > "$md"
for folder in "${folders[@]}"; do
  left=$(( deadline - SECONDS ))
  name=$(basename "$folder")
  if [ "$left" -lt "$min_folder" ]; then
    echo "| $folder | not run ($left s left of $budget) | | |" >> "$md"
    continue
  fi
  log="$out/suite-$name.log"
  start=$SECONDS
  timeout -k 20 "$left" "$py" -m pytest -q -p no:cacheprovider -o timeout="$per_test" --durations=25 \
    $extra "$folder" > "$log" 2>&1
  rc=$?
  wall=$(( SECONDS - start ))
  last=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran' "$log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
  [ "$rc" -eq 124 ] && last="stopped by timeout after $wall s; last lines: $(tail -c 300 "$log" | tr '\n|' ' /')"
  echo "| $folder | ${last:-see log} | $wall | $rc |" >> "$md"
  grep -E '^(FAILED|ERROR) ' "$log" | sed "s:^:    - $folder\: :" >> "$out/failures.txt" || true
done
if [ -s "$out/failures.txt" ]; then
  { echo; echo "Failures:"; echo; sed 's/^    //' "$out/failures.txt"; } >> "$md"
fi
cat "$md"
