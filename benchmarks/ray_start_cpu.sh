#!/usr/bin/env bash
# CPU seconds of a local Ray started and stopped by t2a-ray (`ray_session`, nothing run), whole process
# tree, read from a cpuacct cgroup of its own once no process is left in it (root, cgroup v1).
# usage: benchmarks/ray_start_cpu.sh RUNS > benchmarks/results/ray_start_cpu.json
set -euo pipefail
runs=${1:-3}
py=${PYTHON:-.venv/bin/python}
code='from t2a_ray.orchestrator.runner import LaunchOptions, ray_session
with ray_session(LaunchOptions(gpus=1, progress=False)): pass'
echo "{\"date\": \"$(date -u +%FT%TZ)\", \"machine\": \"$(hostname), $(nproc) cores\", \"load_before\": [$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)], \"commit\": \"$(git rev-parse --short HEAD)\", \"command\": \"benchmarks/ray_start_cpu.sh $runs\", \"runs\": ["
for i in $(seq "$runs"); do
  cg=/sys/fs/cgroup/cpuacct/t2a-raystart-$$-$i
  mkdir "$cg"
  start=$(date +%s.%N)
  T2A_RAY_LOGICAL_GPUS=1 bash -c "echo \$\$ > $cg/cgroup.procs; exec $py -c '$code'"
  while [ -n "$(cat $cg/cgroup.procs)" ]; do sleep 0.2; done
  wall=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || python3 -c "print($(date +%s.%N) - $start)")
  cpu_ns=$(cat $cg/cpuacct.usage)
  rmdir "$cg"
  sep=$([ "$i" -lt "$runs" ] && echo , || true)
  echo "  {\"cpu_s\": $(python3 -c "print(round($cpu_ns/1e9, 3))"), \"wall_s\": $(python3 -c "print(round($wall, 2))")}$sep"
done
echo "]}"
