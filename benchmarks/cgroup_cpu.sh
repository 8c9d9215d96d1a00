# Sourced by the CPU benchmarks: `cgroup_run CMD...` runs CMD in a cpuacct cgroup of its own (root,
# cgroup v1), waits until no process is left in it (Ray's daemons outlive their driver by a moment),
# and prints "CPU_S WALL_S EXIT LEFT" (LEFT: processes still there after 20 s, then killed). CMD's
# output goes to $CGROUP_LOG (default /tmp/cgroup_cpu-last.log).
cgroup_run() {
  local cg=/sys/fs/cgroup/cpuacct/t2a-cpu-$$-$RANDOM start end rc left
  mkdir "$cg"
  start=$(date +%s.%N)
  bash -c 'echo $$ > "$0/cgroup.procs"; exec "$@"' "$cg" "$@" > "${CGROUP_LOG:-/tmp/cgroup_cpu-last.log}" 2>&1
  rc=$?
  end=$(date +%s.%N)
  for _ in $(seq 100); do [ -z "$(cat "$cg/cgroup.procs")" ] && break; sleep 0.2; done
  left=$(wc -l < "$cg/cgroup.procs")
  xargs -r kill -9 < "$cg/cgroup.procs" 2>/dev/null; sleep 0.5
  python3 -c "print(f'{$(cat "$cg/cpuacct.usage")/1e9:.3f} {$end-$start:.2f} $rc $left')"
  rmdir "$cg" 2>/dev/null
}
