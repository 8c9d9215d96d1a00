"""A local Ray goes with the driver that started it, however the driver ends (Linux).

When the driver dies, the raylet's agents keep trying to tell the dead GCS before they exit, and the
raylet and its workers notice late (how late: benchmarks/results/driver_kill_leftovers.md). So the
driver starts a reaper: a small process in its own session (a terminal's Ctrl-C does not reach it)
that keeps a list of the driver's descendants, refreshed every `POLL_S`, and SIGKILLs whichever are
still alive once the driver is gone — with every process that carries the driver's mark in its
environment (`MARK`, set while Ray starts, so Ray's processes and the workers they start inherit it),
which finds those started since the last refresh and already orphaned. It learns that the driver is
gone from a pipe whose only writer is the driver: the kernel closes it on any exit, `kill -9` included.
A listed process is matched by pid and start time, so a pid the system reused is never touched.
A driver whose Ray stopped in order stands its reaper down (`stop`): it takes what is left of that Ray
(the marked processes) and exits, rather than walk the driver's processes for the rest of its life.

    python -m t2a_ray.orchestrator.reaper DRIVER_PID   (stdin: the pipe)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

POLL_S = 0.5
MARK = "T2A_RAY_DRIVER_PID"
STAND_DOWN = b"q"
GONE_WAIT_S = 5.0  # a SIGKILLed process still frees its memory before it is gone (long on a loaded machine)
STAND_DOWN_WAIT_S = GONE_WAIT_S + 5.0  # that, and the reaper's own look through /proc


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live process below `pid`, read from /proc."""
    found: set[tuple[int, str]] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                start = start_time(child)
                if start is not None and (child, start) not in found:
                    found.add((child, start))
                    todo.append(child)
    return found


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def kill(processes: set[tuple[int, str]]) -> None:
    """SIGKILL each process that still is the one recorded."""
    for pid, start in processes:
        if start_time(pid) == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def wait_gone(processes: set[tuple[int, str]], timeout_s: float) -> None:
    """Until each process has exited (a zombie counts as gone) or `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while any(start_time(pid) == start for pid, start in processes) and time.monotonic() < deadline:
        time.sleep(0.05)


def marked(driver_pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process whose environment carries `driver_pid`'s mark."""
    mark = f"{MARK}={driver_pid}".encode()
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                pid = int(environ.parent.name)
                start = start_time(pid)
                if start is not None:
                    found.add((pid, start))
        except (OSError, ValueError):
            continue
    return found


def kill_descendants() -> None:
    """From the driver itself: SIGKILL every process below it but its reaper (a second Ctrl-C)."""
    reapers = {proc.pid for proc in _reapers}
    kill({p for p in descendants(os.getpid()) if p[0] not in reapers})


def start() -> None:
    """Start this process's reaper (once; nothing where there is no /proc to read)."""
    if _reapers or not Path(f"/proc/{os.getpid()}/task").is_dir():
        return
    read_end, write_end = os.pipe()  # not inheritable: Ray's processes never hold the write end
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "t2a_ray.orchestrator.reaper", str(os.getpid())],
            stdin=read_end,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(read_end)
    _reapers[proc] = write_end  # held open, written only by `stop`, for the life of the local Ray


def stop() -> None:
    """Stand this process's reaper down once its Ray has stopped: it kills the processes that still
    carry this process's mark (that Ray's, nothing else of this process), waits until they are gone
    and exits. Waits for it, so that a Ray started next with the same mark is not taken for the last
    one's."""
    for proc, write_end in list(_reapers.items()):
        with contextlib.suppress(OSError):
            os.write(write_end, STAND_DOWN)
        os.close(write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STAND_DOWN_WAIT_S)
        del _reapers[proc]


@contextlib.contextmanager
def marking() -> Iterator[None]:
    """Within: processes started from here carry this process's mark (Ray's, started by `ray.init`;
    the workers they start later inherit it). Outside, nothing this process starts carries it."""
    previous = os.environ.get(MARK)
    os.environ[MARK] = str(os.getpid())
    try:
        yield
    finally:
        if previous is None:
            del os.environ[MARK]
        else:
            os.environ[MARK] = previous


_reapers: dict[subprocess.Popen, int] = {}  # this process's reaper -> the write end of its pipe


def main(driver_pid: int) -> None:
    watched: set[tuple[int, str]] = set()
    me = os.getpid()
    while True:
        watched = {p for p in watched if start_time(p[0]) == p[1]}
        watched |= {p for p in descendants(driver_pid) if p[0] != me}
        ready, _, _ = select.select([sys.stdin], [], [], POLL_S)
        if not ready:
            continue
        rays = {p for p in marked(driver_pid) if p[0] not in (me, driver_pid)}
        if os.read(sys.stdin.fileno(), 1) == STAND_DOWN:  # the driver's Ray stopped in order
            kill(rays)
            wait_gone(rays, GONE_WAIT_S)  # the driver waits for this reaper: gone means gone
        else:  # EOF: the driver is gone
            kill(watched | rays)
        return


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    main(int(sys.argv[1]))
