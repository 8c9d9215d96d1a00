"""Whose crash was it: when a worker's process dies, only the unit it had begun is charged for it.

A worker runs its units one at a time; the others sent to it wait in its queue, and Ray fails them all
when the process dies (`ActorDiedError`, or `ActorUnavailableError` for calls that met the restart). A
unit that was only queued did nothing wrong: it is sent again at no cost to its retries. To tell them
apart, a worker writes, as the first thing it does for a unit, the unit's id and the token of that
submission into its marker file in the run folder (`RunFolder.started_marker`); after the death, the
unit whose token is there is the one that was running.

The marker is written without fsync: it must survive the death of the process, not of the machine
(the page cache outlives the process), and it costs a unit a small write, not a disk flush.

A unit that crashes its worker is quarantined: its retries run last, alone (`runner`), so that a
crash loop never again takes other units down with it.
"""

from __future__ import annotations

import os
import uuid

from t2a_ray.runfolder import RunFolder

# Free requeues of one unit (deaths while it was only queued) before further ones are charged to its
# retries: with quarantine one per crashing unit is the most expected; the limit only guarantees an end
# should a worker die again and again with nothing running (its node going down, say).
REQUEUE_LIMIT = 10


def new_token() -> str:
    """A submission's token: tells this attempt of a unit from any earlier one on the same worker."""
    return uuid.uuid4().hex[:12]


def mark_started(run: RunFolder, worker_index: int, unit_id: str, token: str) -> None:
    """Worker side: record that this submission has begun (see the module docstring for why no fsync)."""
    path = run.started_marker(worker_index)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{token} {unit_id}")
    os.replace(tmp, path)  # a reader sees the old marker or the new one, never half of one


def had_started(run: RunFolder, worker_index: int, token: str) -> bool:
    """Driver side, after the worker died: whether the submission `token` had begun on it."""
    try:
        return run.started_marker(worker_index).read_text().split(" ", 1)[0] == token
    except OSError:
        return False


def crash_error(error: str, crashes: int, alone: bool) -> str:
    """The error of a unit that crashed its worker every time it ran (`alone`: quarantined at the end)."""
    times = "once" if crashes == 1 else f"{crashes} times"
    return f"crashed its worker process {times}{', the last time alone' if alone else ''}: {error}"
