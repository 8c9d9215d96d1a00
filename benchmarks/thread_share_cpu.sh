#!/usr/bin/env bash
# CPU seconds of the tests that run torch in the test process, run as `make test` runs them (-n 2), with
# a thread per core in each test process (what every process took before the suite shared the cores:
# OMP_NUM_THREADS=<cores>) against the suite's own share (cores / test processes, tests/conftest.py);
# the two interleaved, ROUNDS times, each in a cpuacct cgroup of its own (root, cgroup v1).
# usage: [ROUNDS=2] benchmarks/thread_share_cpu.sh > OUT   (one line per run: label cpu_s wall_s exit left)
set -uo pipefail
source "$(dirname "$0")/cgroup_cpu.sh"
py=${PYTHON:-.venv/bin/python}
tests=(tests/adapters tests/parity)
echo "# $(date -u +%FT%TZ) $(hostname), $(nproc) cores, commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $py -m pytest -q -p no:cacheprovider -n 2 -m 'not slow' ${tests[*]}"
echo "# label cpu_s wall_s exit left"
for _ in $(seq "${ROUNDS:-2}"); do
  echo "thread-per-core $(OMP_NUM_THREADS=$(nproc) cgroup_run "$py" -m pytest -q -p no:cacheprovider -n 2 -m 'not slow' "${tests[@]}")"
  echo "shared $(cgroup_run "$py" -m pytest -q -p no:cacheprovider -n 2 -m 'not slow' "${tests[@]}")"
done
