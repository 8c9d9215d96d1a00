"""The command line's exit without the interpreter's teardown.

Once a command has returned, its atexit handlers have run (Ray's `shutdown`, logging's flush) and its
output is flushed, nothing is left to do but exit; CPython would first tear down every module and free
every object of torch, Ray and pandas one by one — most of a second of CPU per command, for nothing
(benchmarks/results/launch_overhead_cpu.md). So the process exits at that point with `os._exit`.

Only the process the CLI itself runs in exits this way (`t2a-ray …`, `python -m t2a_ray.cli`): a
caller that passes its own arguments (click's CliRunner in the tests, a script) gets the ordinary
SystemExit. Where a thread other than the main one still runs, the ordinary exit waits for it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click


class ExitingGroup(click.Group):
    """A click group whose standalone run from the command line ends in `exit_now`."""

    def main(self, args: Sequence[str] | None = None, *more: Any, **kwargs: Any) -> Any:
        if args is not None or not kwargs.get("standalone_mode", True):
            return super().main(args, *more, **kwargs)
        try:
            return super().main(args, *more, **kwargs)
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                exit_now(e.code or 0)
            raise


def exit_now(code: int) -> None:
    """Run the atexit handlers, flush the output and end the process with `code`, skipping the
    interpreter's teardown; an ordinary `sys.exit` where another thread still runs."""
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said through it
            pass
    os._exit(code)
