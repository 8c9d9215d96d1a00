"""CPU seconds of a command's processes, one by one: which process of a launch costs what.

Runs the command in a cpuacct cgroup of its own (root, cgroup v1), polls every process in it every
0.1 s (utime + stime from /proc/PID/stat, the last reading kept: a process's total just before it
ends) and prints one line per process (when it appeared, CPU s, name, command line) and the cgroup's
total, read once no process is left (processes shorter than a poll are in the total only).

    python benchmarks/cpu_by_process.py "t2a-ray launch --config x.yaml --gpus 2 --no-progress" [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command")
    ap.add_argument("--json", help="also write the readings here")
    args = ap.parse_args()
    cg = f"/sys/fs/cgroup/cpuacct/t2a-byprocess-{os.getpid()}"
    os.mkdir(cg)
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[str, dict] = {}
    t0 = time.time()
    proc = subprocess.Popen(["bash", "-c", f"echo $$ > {cg}/cgroup.procs; exec {args.command}"])

    def poll() -> list[str]:
        pids = open(f"{cg}/cgroup.procs").read().split()
        for pid in pids:
            try:
                stat = open(f"/proc/{pid}/stat").read()
                cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            entry = seen.setdefault(pid, {"pid": int(pid), "start_s": round(time.time() - t0, 1)})
            entry["cpu_s"] = (int(fields[11]) + int(fields[12])) / tick
            entry["name"] = stat[stat.index("(") + 1 : stat.rindex(")")]
            entry["cmd"] = cmd[:200] or entry.get("cmd", "")
        return pids

    while proc.poll() is None or poll():
        poll()
        time.sleep(0.1)
    wall = time.time() - t0
    total = int(open(f"{cg}/cpuacct.usage").read()) / 1e9
    os.rmdir(cg)
    rows = sorted(seen.values(), key=lambda r: r["start_s"])
    for r in rows:
        print(f"{r['start_s']:6.1f}s {r['cpu_s']:6.2f} {r['name']:16s} {r['cmd'][:110]}")
    print(f"total {total:.1f} CPU s (cgroup), wall {wall:.1f} s, exit {proc.returncode}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "command": args.command,
                    "exit": proc.returncode,
                    "cpu_s": round(total, 2),
                    "wall_s": round(wall, 1),
                    "load_before": os.getloadavg(),
                    "processes": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
