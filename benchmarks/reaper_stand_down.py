"""Is a stood-down reaper's Ray gone when `reaper.stop()` returns? A process SIGKILLed still frees its
memory before it exits, so a large one lingers; this holds one and looks.

Each round: start this process's reaper, start a child that carries the mark (as Ray's processes do)
and writes SIZE GiB, stand the reaper down, and read whether that child is still alive (its pid with
its start time, not a zombie) the moment `stop()` returns. Prints a line per round:
`LABEL ROUND SIZE_GIB STOP_S ALIVE_AFTER`, after a `#` header naming the machine, the commit, the
reaper module it ran (its git blob, so that an older reaper.py put in place is named) and the load.

    python benchmarks/reaper_stand_down.py LABEL [--rounds N] [--gib G] >> reaper_stand_down.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime

from t2a_ray.orchestrator import reaper

CHILD = "import sys, time; b = bytearray({size} << 30); print(flush=True); time.sleep(600)"


def one_round(gib: int) -> tuple[float, bool]:
    """stop()'s seconds, and whether the marked child was alive when it returned."""
    reaper.start()
    with reaper.marking():
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(size=gib)], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # its memory is written
        started = reaper.start_time(child.pid)
        t0 = time.perf_counter()
        reaper.stop()
        stop_s = time.perf_counter() - t0
        return stop_s, reaper.start_time(child.pid) == started
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label", help="what code this is (e.g. before, after)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gib", type=int, default=1)
    args = parser.parse_args()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    commit, blob = git("rev-parse", "--short", "HEAD"), git("hash-object", reaper.__file__)[:7]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(
        f"# {now} {platform.node()}, {os.cpu_count()} cores, commit {commit}, reaper.py {blob}, load {load}"
    )
    for i in range(1, args.rounds + 1):
        stop_s, alive = one_round(args.gib)
        print(args.label, i, args.gib, f"{stop_s:.3f}", "yes" if alive else "no", flush=True)


if __name__ == "__main__":
    main()
