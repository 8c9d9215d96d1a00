#!/usr/bin/env bash
# CPU seconds of tests, each run alone in a cpuacct cgroup of its own (the whole process tree: pytest,
# the CLI subprocesses, Ray's daemons and actors), read once no process is left in it (root, cgroup v1).
# The suite is CPU-bound on the 2-core machine, so CPU seconds, not wall time, say what a test costs it,
# whatever else the machine is doing.
# usage: benchmarks/test_cpu.sh TESTID... > OUT   (one line per test: cpu_s, wall_s, exit, left, id)
#        [JOBS=N] benchmarks/test_cpu.sh --suite > OUT   (the whole suite as `make test` runs it, -n N;
#        its printout, every test's duration, in $SUITE_LOG)
set -uo pipefail
source "$(dirname "$0")/cgroup_cpu.sh"
py=${PYTHON:-.venv/bin/python}
echo "# $(date -u +%FT%TZ) $(hostname), $(nproc) cores, commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "#   cpu_s   wall_s exit left test"
if [ "${1:-}" = "--suite" ]; then
  echo "$(CGROUP_LOG=${SUITE_LOG:-/tmp/test_cpu-suite.log} cgroup_run "$py" -m pytest -q -p no:cacheprovider \
    -n "${JOBS:-2}" --dist worksteal --durations=0 -rfE) the suite, -n ${JOBS:-2}"
  exit
fi
for t in "$@"; do
  echo "$(cgroup_run "$py" -m pytest -q -p no:cacheprovider "$t") $t"
done
