"""Units sent to the workers and awaited: the code of Ray Tune's trial processes.

Each Tune trial (`tune_trial`) sends its chunk of units to the workers the router names and waits for
them, sending again where a worker died (the table at the top of `runner.py` says who owns which
failure). Every trial process imports this module and what it imports: it is kept to Ray and the run
folder's own modules, without the analysis or the driver's code, as each import here is paid once per
trial process of every launch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune

from t2a_ray.errors import StorageError, root_cause
from t2a_ray.frozen import load_run_sweep
from t2a_ray.orchestrator.crashes import REQUEUE_LIMIT, crash_error, had_started, new_token
from t2a_ray.orchestrator.plan import SweepStopped, parse_unit_id
from t2a_ray.orchestrator.trial import TrialOutcome, failure_row, write_shard
from t2a_ray.runfolder import RunFolder

HEARTBEAT_INTERVAL_S = 5.0  # how often a trial waiting on its worker checks that the worker still answers


class WorkerNotReady(RuntimeError):
    """The worker's preparation (CUDA context, idle baseline) failed: its trials are left for a resume."""


def tune_trial(config: dict[str, Any], *, send: Sender, chunks: list[list[str]]) -> None:
    """One Tune trial: a chunk of units (`config["chunk"]`), or a trial a search asked for (one unit).
    Each unit goes to the worker the router names (a chunk's units are sent at once, so a chunk feeds
    every worker it uses), and is reported to Tune as it ends.

    A worker whose process dies mid-unit is replaced by Ray (within `send.policy`); the units only
    queued on it are sent again at no cost, and the unit it was running is quarantined (`finish_unit`).
    A worker that could not prepare fails the Tune trial without rows, once the chunk's units already
    sent have ended, so that a resume (or Tune's retry, which skips finished units) runs the rest; so
    does a sweep being stopped (Ctrl-C), whose units must rerun, not fail.
    """
    router = send.router
    units = chunks[config["chunk"]] if "chunk" in config else [config["trial_id"]]
    todo = [uid for uid in units if not send.run.shard(uid).exists()]  # a retried chunk
    started: list[tuple[str, Any]] = []
    not_ready: WorkerNotReady | None = None
    for uid, index in zip(todo, _assign(router, todo), strict=True):
        if not_ready is not None:  # never sent: give its place in the worker's queue back
            if not isinstance(index, Exception):
                router.release.remote(index, uid)
            continue
        try:
            started.append((uid, send.submit(uid, index)))
        except WorkerNotReady as e:
            not_ready = e
    for uid, first in started:
        summary = finish_unit(send, uid, first, quarantine=True)
        if summary is not None:  # None: quarantined, the driver runs it once Tune is done
            tune.report(summary)
    if not_ready is not None:
        raise not_ready


def _assign(router: Any, unit_ids: list[str]) -> list[int | Exception]:
    """The router's worker for each unit (one call for the chunk), or the error for every unit."""
    try:
        return ray.get(router.assign_many.remote(unit_ids))
    except Exception as e:  # noqa: BLE001 — e.g. no worker left alive: each unit records it
        return [e] * len(unit_ids)


@dataclass(frozen=True)
class RetryPolicy:
    """How a unit whose worker fails is waited for and sent again (the table at the top of `runner.py`)."""

    retries: int  # deaths of its worker a unit may cause before it is `failed` (`max_trial_retries`)
    restart_wait_s: float  # how long a unit waits for Ray to replace its dead worker
    lost_after_s: float  # a busy worker silent this long to a heartbeat is lost


@dataclass(frozen=True)
class Sender:
    """What it takes to send units to the workers and see them end: the actors' handles, the run
    folder, and how long to wait for and retry a worker."""

    workers: list[Any]  # the worker actors' handles
    prepared: list[Any]  # each worker's `prepare` result (a ref)
    router: Any  # the `plan.Dispatcher` actor's handle
    run: RunFolder
    policy: RetryPolicy

    def submit(self, uid: str, index: int | Exception) -> tuple[int, Any, str] | Exception:
        """Send a unit to worker `index` once that worker is prepared: (index, the result's ref, the
        submission's token)."""
        if isinstance(index, Exception):
            return index
        try:
            ray.get(self.prepared[index])
        except ray.exceptions.RayTaskError as e:  # prepare raised; a process that died is handled below
            self.router.release.remote(index, uid)
            raise WorkerNotReady(f"worker {index} could not start: {root_cause(e)}") from None
        except ray.exceptions.RayActorError:
            pass  # its replacement prepares itself before its first unit
        token = new_token()
        return index, self.workers[index].run_trial.remote(uid, token), token


def finish_unit(
    send: Sender, uid: str, first: Any, quarantine: bool, crashes: int = 0
) -> dict[str, Any] | None:
    """Wait for a sent unit and send it again where its worker died; its summary, or its `failed` rows'.

    Only the unit a worker was running when it died is charged for the death (`crashes.py`); the units
    queued behind it are sent again at no cost. With `quarantine`, a unit that crashed its worker is
    handed to the router and None returned: the driver runs its retries last, alone, so that it takes
    no other unit down again. After `send.policy.retries` more crashes it is `failed`, with its error.
    """
    router = send.router
    error, attempt, requeued, alone = "not run", first, 0, not quarantine
    while crashes <= send.policy.retries:
        if attempt is None:
            attempt = send.submit(uid, _assign(router, [uid])[0])
        if isinstance(attempt, Exception):  # no worker to send it to
            error = root_cause(attempt)
            break
        index, ref, token = attempt
        attempt = None
        try:
            summary = await_trial(send.workers[index], ref, send.policy.lost_after_s)
            router.release.remote(
                index, uid, {k: summary.get(k) for k in ("generation_s", "load_s", "setup_s")}
            )
            return summary
        except WorkerLost as e:  # its node left: Ray cannot place a replacement
            router.release.remote(index, uid)
            router.dead.remote(index)
            error, crashed = str(e), False
        except ray.exceptions.RayActorError as e:
            router.release.remote(index, uid)
            # Ray's own words (an actor id, "may or may not have been executed") say nothing more
            error, crashed = f"worker process died ({type(e).__name__})", True
            if wait_for_restart(send.workers[index], send.policy.restart_wait_s):
                router.restarted.remote(index)
            else:  # a node that left gives no replacement
                router.dead.remote(index)
        except Exception as e:  # noqa: BLE001 — an error the unit itself did not turn into rows
            router.release.remote(index, uid)
            cause = getattr(e, "cause", None) or e
            if isinstance(cause, OSError):  # the run folder cannot be written: no row can record it
                raise StorageError(f"cannot write the run folder: {cause}") from None
            error = root_cause(e)
            break
        if not had_started(send.run, index, token) and requeued < REQUEUE_LIMIT:
            requeued += 1  # it was only queued: another unit's crash, not its own
            router.requeue.remote(uid)
            continue
        crashes += 1  # a node that left is charged too, but never quarantined: the unit did no harm
        if crashed and quarantine and crashes <= send.policy.retries:
            ray.get(router.quarantine.remote(uid))  # recorded before the driver asks, once Tune is done
            return None
    if _stopping(router):
        raise SweepStopped(f"unit {uid} was stopped with the sweep")
    if crashes and error.startswith("worker process died"):
        error = crash_error(error, crashes, alone)
    return write_failed_trial(send.run, uid, error)


def _stopping(router: Any) -> bool:
    """Whether the driver is stopping the sweep (a router that cannot answer: it is)."""
    try:
        return bool(ray.get(router.is_stopped.remote(), timeout=10))
    except Exception:  # noqa: BLE001
        return True


class WorkerLost(RuntimeError):
    """A worker stopped answering its heartbeat (its node left the cluster)."""


def await_trial(worker: Any, ref: Any, lost_after_s: float) -> dict[str, Any]:
    """Wait for a trial's result, checking every few seconds that its worker still answers.

    A worker whose node left is restarted by Ray only where a GPU is free; until then a call queued
    on it would wait forever. The heartbeat runs in the worker's "control" concurrency group, beside
    the trial, so a busy worker answers at once.
    """
    while True:
        ready, _ = ray.wait([ref], timeout=HEARTBEAT_INTERVAL_S)
        if ready:
            return ray.get(ref)
        try:
            ray.get(worker.ping.options(concurrency_group="control").remote(), timeout=lost_after_s)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
            ray.cancel(ref)
            raise WorkerLost(f"worker lost: no heartbeat for {lost_after_s:.0f} s (its node left?)") from None


def wait_for_restart(worker: Any, timeout_s: float) -> bool:
    """True once Ray has restarted a dead worker. A call sent before Ray noticed the death fails at
    once, so keep asking until the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(worker.ping.remote(), timeout=max(0.1, deadline - time.monotonic()))
            return True
        except ray.exceptions.GetTimeoutError:
            return False
        except ray.exceptions.RayError:
            time.sleep(0.2)
    return False


def write_failed_trial(run: RunFolder, unit_id: str, error: str) -> dict[str, Any]:
    """`failed` rows, with the error, for every window of a unit that could not run."""
    sweep = load_run_sweep(run)
    trial_id, repeats = parse_unit_id(unit_id, sweep.repeats)
    trial = sweep.trial(trial_id)
    rows = [failure_row(trial, sweep.name, r, p, "failed", error, {}) for r in repeats for p in sweep.prompts]
    outcome = TrialOutcome(trial_id, "failed", len(rows), None, 0.0, 0.0, error, unit_id=unit_id)
    write_shard(run, sweep, unit_id, rows, outcome)
    return outcome.as_dict()
