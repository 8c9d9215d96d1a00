#!/usr/bin/env bash
# CPU seconds of tests, each run alone in a cpuacct cgroup of its own (the whole process tree: pytest,
# the CLI subprocesses, Ray's daemons and actors), read once no process is left in it (root, cgroup v1).
# The suite is CPU-bound on the 2-core machine, so CPU seconds, not wall time, say what a test costs it,
# whatever else the machine is doing.
# usage: benchmarks/test_cpu.sh TESTID... > OUT   (one line per test: cpu_s, wall_s, exit, left, id)
#        [JOBS=N] benchmarks/test_cpu.sh --suite > OUT   (the whole suite as `make test` runs it, -n N)
set -uo pipefail
py=${PYTHON:-.venv/bin/python}
echo "# $(date -u +%FT%TZ) $(hostname), $(nproc) cores, commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
run() {  # run "$@" in a new cgroup; print "cpu_s wall_s exit left"
  local cg=/sys/fs/cgroup/cpuacct/t2a-testcpu-$$-$RANDOM start end rc left
  mkdir "$cg"
  start=$(date +%s.%N)
  bash -c 'echo $$ > "$0/cgroup.procs"; exec "${@}"' "$cg" "$@" > /tmp/test_cpu-last.log 2>&1
  rc=$?
  end=$(date +%s.%N)
  for _ in $(seq 100); do [ -z "$(cat "$cg/cgroup.procs")" ] && break; sleep 0.2; done
  left=$(wc -l < "$cg/cgroup.procs")
  xargs -r kill -9 < "$cg/cgroup.procs" 2>/dev/null; sleep 0.5
  python3 -c "print(f'{$(cat "$cg/cpuacct.usage")/1e9:8.1f} {$end-$start:8.1f} {$rc:4d} {$left:4d}', end=' ')"
  rmdir "$cg" 2>/dev/null
}
echo "#   cpu_s   wall_s exit left test"
if [ "${1:-}" = "--suite" ]; then
  run "$py" -m pytest -q -p no:cacheprovider -n "${JOBS:-2}" --dist worksteal --durations=0 -rfE; echo "the suite, -n ${JOBS:-2}"
  cp /tmp/test_cpu-last.log "${SUITE_LOG:-/tmp/test_cpu-suite.log}"
  exit
fi
for t in "$@"; do
  run "$py" -m pytest -q -p no:cacheprovider "$t"; echo "$t"
done
