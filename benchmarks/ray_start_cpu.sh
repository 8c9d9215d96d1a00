#!/usr/bin/env bash
# CPU seconds of a local Ray started and stopped by t2a-ray (`ray_session`, nothing run), whole process
# tree, read from a cpuacct cgroup of its own once no process is left in it (root, cgroup v1).
# usage: benchmarks/ray_start_cpu.sh RUNS > benchmarks/results/ray_start_cpu.json
set -euo pipefail
source "$(dirname "$0")/cgroup_cpu.sh"
runs=${1:-3}
py=${PYTHON:-.venv/bin/python}
code='from t2a_ray.orchestrator.runner import LaunchOptions, ray_session
with ray_session(LaunchOptions(gpus=1, progress=False)): pass'
echo "{\"date\": \"$(date -u +%FT%TZ)\", \"machine\": \"$(hostname), $(nproc) cores\", \"load_before\": [$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)], \"commit\": \"$(git rev-parse --short HEAD)\", \"command\": \"benchmarks/ray_start_cpu.sh $runs\", \"runs\": ["
for i in $(seq "$runs"); do
  read -r cpu wall _ _ < <(T2A_RAY_LOGICAL_GPUS=1 cgroup_run "$py" -c "$code")
  sep=$([ "$i" -lt "$runs" ] && echo , || true)
  echo "  {\"cpu_s\": $(python3 -c "print(round($cpu, 3))"), \"wall_s\": $(python3 -c "print(round($wall, 2))")}$sep"
done
echo "]}"
