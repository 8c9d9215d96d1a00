"""Run (or resume) a sweep: Ray up, workers prepared, Ray Tune over the pending trials, shards merged.

The shards in `trials/` are the truth about what is done. The work is planned in units (`plan.py`:
one repeat of a configuration, or all of them where it is measured as a whole); Tune gets one trial
per chunk of consecutive units of the plan (one unit where units are long, a few seconds of work per
worker where they are short, so that Tune's own cost per trial does not dominate a sweep of 10,000
tiny trials), and the router sends each unit to a worker. Tune's experiment state is kept (in
`tune/attempt-N`) for inspection, but a resume asks the folder, not Tune, since Tune saves its state
only periodically.

Who owns what when something fails (one owner each; Tune itself retries nothing; the units' side, in
Tune's trial processes, is `feed.py`):

    what fails                      owner                               then
    ------------------------------  ----------------------------------  -------------------------------
    a generation raises (OOM, bug)  `trial.run_trial`, in the worker    `infeasible` / `failed` rows
    a worker process dies           Ray restarts the actor (`pool`:     the unit it ran is quarantined:
      mid-trial                     no task retries); `finish_unit`     run last, alone, then after
                                    tells the unit that ran from those  `max_trial_retries` deaths in
                                    only queued (`crashes.py`)          all, `failed` rows; the queued
                                                                        units are sent again, uncharged
    a worker's node leaves          `await_trial`'s heartbeat           the trial is retried on another
                                    (`worker_lost_after_s`); the        worker
                                    router marks the worker dead
    a worker cannot prepare         `tune_trial` fails the Tune trial,  the sweep ends with an error; a
      (CUDA, idle baseline)         with no rows                        resume runs the trial
    the run folder cannot be        `StorageError`                      the sweep stops; a resume
      written                                                           continues it
    a Tune trial's own process      Tune                                a warning; a resume runs it
      dies
    Ctrl-C                          `Interrupted`, in the driver        no new trial; trials in flight
                                                                        are killed, write nothing, and
                                                                        rerun on resume
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
from ray import tune
from ray._private import ray_constants
from ray.tune import Callback
from ray.tune.logger import JsonLoggerCallback

from t2a_ray.config import Sweep, Trial
from t2a_ray.errors import ConfigError, StorageError, T2ARayError, root_cause
from t2a_ray.frozen import open_run, shard_owner
from t2a_ray.orchestrator import reaper
from t2a_ray.orchestrator.feed import RetryPolicy, Sender, finish_unit, tune_trial
from t2a_ray.orchestrator.launch_timeline import LaunchTimeline
from t2a_ray.orchestrator.plan import chunk_units
from t2a_ray.orchestrator.pool import HEAD_NODE_RESOURCE, Pool, gather
from t2a_ray.orchestrator.progress import ProgressLine
from t2a_ray.orchestrator.ray_token import ensure_local_token
from t2a_ray.orchestrator.retry import set_aside_failed
from t2a_ray.orchestrator.run_plan import RunPlan, plan_run, resolve_frozen_placement, write_plan
from t2a_ray.orchestrator.shares import Share
from t2a_ray.orchestrator.tune_searcher import search_asks_now, tune_plan
from t2a_ray.runfolder import RunFolder, atomic_write_text, trial_done
from t2a_ray.schema import ShardOwner, check_shards, merge_results, trial_status
from t2a_ray.wording import plural

log = logging.getLogger(__name__)
OLD_WORKERS_WAIT_S = 120.0
ACTIVITY_POLL_S = 0.5  # how often the driver asks the workers what they are doing (progress lines)
# Where the merge moves a shard aside (its content does not match its footer's checksum), its unit runs
# again in the same launch or resume, at most this many more times, so that it never ends with rows
# missing unsaid.
RERUN_ROUNDS = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C: raised in the driver's main thread by `stop_on_sigint`, through Tune, up to the CLI.

    A KeyboardInterrupt, not an Exception: no `except Exception` of Tune's stops it, and Ray's
    blocking calls, which check for signals themselves, turn it into a KeyboardInterrupt of their
    own rather than losing it — so a caller catches KeyboardInterrupt.
    """


@contextlib.contextmanager
def stop_on_sigint(at_once: Callable[[], None]) -> Iterator[list[int]]:
    """Within: the first SIGINT raises `Interrupted` (the sweep unwinds: Ray stops, in-flight trials
    are killed); a second calls `at_once`, which must end the process. Yields the signals received,
    so that a caller can tell an interrupted sweep even if something swallowed the exception.
    Tune's own handler (a last checkpoint, then its restore advice) is kept out, within only."""
    tune_handler = os.environ.get(_TUNE_SIGINT)
    os.environ[_TUNE_SIGINT] = "1"
    signalled = _SIGNALLED
    signalled.clear()

    def handler(signum: int, frame: Any) -> None:
        if signalled:
            # `at_once` ends the process; more Ctrl-Cs meanwhile would start it over, nested, each time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            at_once()
        signalled.append(signum)
        raise Interrupted()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield signalled
    finally:
        signal.signal(signal.SIGINT, previous)
        if tune_handler is None:
            os.environ.pop(_TUNE_SIGINT, None)
        else:
            os.environ[_TUNE_SIGINT] = tune_handler


_TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"  # read by Tune when a fit starts
_SIGNALLED: list[int] = []  # the SIGINTs `stop_on_sigint` has received in this process


class _RaiseIfSignalled(Callback):
    """Raises `Interrupted` at Tune's next step if a Ctrl-C came but its exception was lost (e.g.
    in a library's own signal check): the sweep then stops all the same."""

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if _SIGNALLED:
            raise Interrupted()


@dataclass(frozen=True)
class LaunchOptions:
    # workers on GPUs (0: one worker on the CPU; None with `address`: every GPU of the cluster)
    gpus: int | None
    address: str | None = None  # join an existing cluster ("auto" or HOST:PORT)
    progress: bool = True
    worker_restart_wait_s: float = 60.0  # how long a trial waits for Ray to replace a dead worker
    worker_lost_after_s: float = 60.0  # a busy worker silent this long to a heartbeat is lost
    retry_failed: bool = False  # run failed units again (`retry.py`); else a resume leaves them be
    share: Share | None = None  # run only this share of the units (a job array's task: `shares.py`)
    accept_changed_sweep: bool = False  # resume under a sweep.yaml changed since the launch (`frozen`)


@dataclass
class SweepOutcome:
    total: int
    ran: int
    skipped: int
    statuses: dict[str, int] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    worker_stats: list[dict[str, Any]] = field(default_factory=list)
    merge_s: float | None = None  # the driver's merge of the shards into results.parquet
    retried: list[str] = field(default_factory=list)  # failed units set aside to run again
    pending: int = 0  # trials still without every repeat's shard (a grid sweep: the command fails)


def run_sweep(run: RunFolder, opts: LaunchOptions) -> SweepOutcome:
    with run.driver_lock(_scope(opts)):
        return _run_sweep(run, opts)


def _run_sweep(run: RunFolder, opts: LaunchOptions) -> SweepOutcome:
    t0 = time.perf_counter()
    # 1. What is left to do: the folder says.
    sweep = _open_for_running(run, opts)
    owner = shard_owner(run, sweep)
    trials = sweep.trials()
    retried = set_aside_failed(run) if opts.retry_failed else []
    # footers only: a resume does not read the rows of every shard (the merge checks their content)
    checked, bad = check_shards(run, owner=owner)
    done, pending = left_to_run(run, sweep, opts.share)
    _say(
        opts,
        f"{sweep.name}: {plural(len(trials), 'trial')}"
        f" ({len(trials) - len(pending)} done, {len(pending)} to run)",
    )
    if retried:
        _say(
            opts,
            f"--retry-failed: {plural(len(retried), 'failed unit')} set aside in {run.retried_dir}, to run again",
        )
    to_run = pending
    if pending and not search_asks_now(run, sweep):
        _say(opts, f"search {sweep.search.strategy}: nothing more to measure within its budget")
        to_run = []
    # 2.–4. Ray, the workers and Tune; the merge; the units of shards the merge moved aside, again
    rounds = _run_and_merge(run, sweep, opts, owner, checked, done, to_run)
    left = len(left_to_run(run, sweep, opts.share)[1]) if sweep.search.strategy == "grid" else 0
    return SweepOutcome(
        total=len(trials),
        ran=rounds.ran,
        skipped=len(trials) - len(pending),
        statuses=_statuses(rounds.table),
        quarantined=[str(p) for p in [*bad, *rounds.bad]],
        wall_s=time.perf_counter() - t0,
        worker_stats=rounds.stats,
        merge_s=rounds.merge_s,
        retried=retried,
        pending=left,
    )


def _open_for_running(run: RunFolder, opts: LaunchOptions) -> Sweep:
    """The run's sweep, once no one else writes the folder. Workers of an interrupted driver may still
    be finishing a unit: wait for them first; then the temp files of killed writers can go. The sweep
    and its trials are the ones launched (`open_run` stops on a changed file)."""
    if not run.wait_for_old_workers(OLD_WORKERS_WAIT_S, _scope(opts)):
        raise T2ARayError(
            f"workers of an earlier run of {run.root} are still alive after {OLD_WORKERS_WAIT_S:.0f} s; stop them (`ray stop`) and resume again"
        )
    try:
        run.remove_stale_temp_files(everyone_gone=opts.share is None)  # a share: other drivers write
        sweep = open_run(run, opts.accept_changed_sweep, say=lambda m: _say(opts, m))
    except OSError as e:  # e.g. a disk still full: trials.jsonl or run.json of an older folder
        raise StorageError(_storage_advice(run, e)) from None
    problem = run.write_problem()  # a disk still full: say so now, not once Ray is up
    if problem is not None:
        raise StorageError(_storage_advice(run, OSError(problem)))
    return sweep


def left_to_run(run: RunFolder, sweep: Sweep, share: Share | None) -> tuple[set[str], list[Trial]]:
    """The units finished (those of another share count as finished: not this driver's to run), and
    the trials still short of a repeat."""
    done = run.finished_trial_ids()
    if share is not None:
        done |= share.others(sweep)
    return done, [t for t in sweep.trials() if not trial_done(t.trial_id, done, sweep.repeats)]


@dataclass
class _Rounds:
    """What the rounds of a launch or resume leave: the merged table, the trials run, the last round's
    worker stats and merge time, and the shards the merges moved aside."""

    table: pa.Table | None = None
    ran: int = 0
    stats: list[dict[str, Any]] = field(default_factory=list)
    merge_s: float | None = None
    bad: list[Path] = field(default_factory=list)


def _run_and_merge(
    run: RunFolder,
    sweep: Sweep,
    opts: LaunchOptions,
    owner: ShardOwner,
    checked: dict[str, str | None],
    done: set[str],
    pending: list[Trial],
) -> _Rounds:
    """Run the pending trials on Ray, then merge the shards. Where the merge moves a shard aside (its
    content does not match its footer's checksum), its unit runs again now, not on a later resume:
    at most `RERUN_ROUNDS` more rounds."""
    out = _Rounds()
    for _ in range(1 + RERUN_ROUNDS):
        # 2. Ray, the workers, Tune
        timeline = LaunchTimeline()
        attempt = _claim_attempt(run) if pending else _next_attempt(run)
        if pending:
            with ray_session(opts) as n_workers:
                timeline.mark("ray_up")
                out.stats = _run_on_ray(
                    _Attempt(run, sweep, opts, attempt, timeline), pending, done, n_workers
                )
            timeline.mark("ray_down")
        # 3. The driver merges the shards, checking each one's content as it reads it
        try:
            t_merge = time.perf_counter()
            with run.merge_lock():  # drivers of other shares merge one after the other
                out.table, bad_now = merge_results(run, known=checked, owner=owner)
            out.merge_s = time.perf_counter() - t_merge
            timeline.mark("merge_done")
        except OSError as e:
            raise StorageError(_storage_advice(run, e, f"cannot write {run.results.name}")) from None
        out.ran += len(pending) if sweep.search.strategy == "grid" else len(run.finished_trial_ids() - done)
        if pending:
            timeline.write(run.attempt_log("timeline", attempt))
        out.bad += bad_now
        # 4. A shard the merge moved aside leaves its unit to run again
        rerun = [p for p in bad_now if p.parent == run.corrupt_dir]
        if not rerun or sweep.search.strategy != "grid":
            break
        checked = {k: v for k, v in checked.items() if run.shard(k).exists()}
        done, pending = left_to_run(run, sweep, opts.share)
        _say(
            opts,
            f"{plural(len(rerun), 'shard')} failed the merge's content check (moved aside): "
            f"running {plural(len(pending), 'trial')} again",
        )
    return out


def _statuses(table: pa.Table | None) -> dict[str, int]:
    """How many trials of the merged table ended in each status."""
    statuses: dict[str, int] = {}
    if table is None:
        return statuses
    by_trial: dict[str, list[str]] = {}
    for tid, status in zip(
        table.column("trial_id").to_pylist(), table.column("status").to_pylist(), strict=True
    ):
        by_trial.setdefault(tid, []).append(status)
    for row_statuses in by_trial.values():
        status = trial_status(row_statuses)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def _storage_advice(run: RunFolder, e: OSError, what: str | None = None) -> str:
    """One line for a run folder that cannot be written (a full disk): what, why, and the fix."""
    what = what or f"cannot write {run.root}"
    return (
        f"{what}: {e.strerror or e}; every finished trial is kept in {run.trials_dir} — free the space, "
        f"then `t2a-ray resume {run.root}`"
    )


@contextlib.contextmanager
def ray_session(opts: LaunchOptions) -> Iterator[int]:
    """Start a local Ray bound to 127.0.0.1 (dashboard off), or join a cluster; yield the worker count.
    A local Ray's token file is made readable by its owner only, and its session folder (logs,
    sockets: /tmp/ray/session_*) is removed when it stops."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a measurement tool
    # Tune's default per-trial CSV and TensorBoard copies of result.json: nothing reads them, and they
    # cost every launch CPU time (benchmarks/results/suite_time_cpu.md, "One launch")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ray turns token authentication on for a local cluster and says how to turn it off: keep it on,
    # without the advice.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    common = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": False,
    }
    session_dir: Path | None = None
    if opts.address:
        _say(opts, f"joining the Ray cluster at {opts.address}")
        ray.init(address=opts.address, **common)
        cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
        n_workers = 1 if opts.gpus == 0 else min(cluster_gpus, opts.gpus or cluster_gpus)  # None: all of them
        if n_workers == 0:
            ray.shutdown()
            raise ConfigError(
                "--gpus", opts.gpus, f"the cluster at {opts.address} has no GPUs; use --gpus 0 to run on CPUs"
            )
    else:
        n_workers = opts.gpus or 1
        # Logical CPUs: enough for the workers and the Tune trials that feed them, whatever the cores.
        cpus = max(os.cpu_count() or 1, n_workers + 2)
        _say(opts, "starting a local Ray on 127.0.0.1")
        reaper.start()  # its processes go with this one, even after a kill -9
        ensure_local_token()
        with reaper.marking():
            _init_on_loopback(num_cpus=cpus, num_gpus=opts.gpus, **common)
        session_dir = Path(ray._private.worker.global_worker.node.get_session_dir_path())
    _say(opts, f"Ray is up ({time.perf_counter() - t0:.1f} s); starting {plural(n_workers, 'worker')}")
    try:
        yield n_workers
    finally:
        ray.shutdown()
        if session_dir is not None:
            reaper.stop()
            remove_session_dir(session_dir)


def remove_session_dir(session_dir: Path) -> None:
    """Remove the session folder of a local Ray this process started and stopped (its logs and
    sockets, world-writable), and Ray's `session_latest` link where it points there."""
    shutil.rmtree(session_dir, ignore_errors=True)
    latest = session_dir.parent / "session_latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() and Path(os.readlink(latest)).name == session_dir.name:
            latest.unlink()


def _init_on_loopback(**kwargs: Any) -> None:
    """`ray.init` a local Ray whose node address is 127.0.0.1, so that its servers listen there only.

    Ray's GCS, raylet and worker gRPC servers listen on the node's address, and on Linux Ray turns
    `_node_ip_address="127.0.0.1"` into the machine's routable address — where, in Ray 2.60, they then
    listen on every interface (`::`). Ray keeps 127.0.0.1 only where its "clusters" are off (its
    default on macOS and Windows: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read once when Ray is imported),
    so that switch is turned off for the duration of this call only; joining a cluster is unaffected.
    """
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        # "local": always a new Ray, never one found running on this machine (Ray's default joins the
        # last one started here, e.g. by `ray start` or another sweep).
        ray.init(address="local", _node_ip_address="127.0.0.1", **kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
    node_ip = ray._private.worker.global_worker.node.node_ip_address
    if node_ip != "127.0.0.1":  # a Ray whose internals moved: say so rather than listen everywhere silently
        log.warning(
            "the local Ray's node address is %s, not 127.0.0.1: its servers may be reachable from the network",
            node_ip,
        )


@dataclass(frozen=True)
class _Attempt:
    """One attempt of a driver at a run: its folder, sweep and options, its number (the `N` of
    `logs/*-attempt-N.json` and `tune/attempt-N`) and its timeline."""

    run: RunFolder
    sweep: Sweep
    opts: LaunchOptions
    number: int
    timeline: LaunchTimeline


def _run_on_ray(at: _Attempt, pending: list[Trial], done: set[str], n_workers: int) -> list[dict[str, Any]]:
    run, sweep, opts = at.run, at.sweep, at.opts
    # The placement is resolved once, by the first attempt that plans units, and frozen in its plan
    # (logs/plan-attempt-N.json; sweep.yaml is never rewritten): a resume on another number of GPUs
    # keeps the design its first units ran under (repeats spread over GPUs or packed on one).
    placement, how = resolve_frozen_placement(run, sweep.placement, n_workers)
    run_plan = plan_run(run, sweep, n_workers, placement, done)
    _say(
        opts,
        f"placement: {placement} ({how}); plan: {len(run_plan.pending)} unit(s) over {n_workers} "
        f"worker(s), predicted {run_plan.plan.makespan_s:.0f} s ({run.attempt_log('plan', at.number).relative_to(run.root)})",
    )
    pool = Pool.start(
        str(run.root), n_workers, use_gpus=opts.gpus != 0, run_plan=run_plan, lock_scope=_scope(opts)
    )
    quiet = threading.Event()  # set: no more worker activity lines
    if opts.progress:
        threading.Thread(target=_say_activities, args=(pool.workers, quiet), daemon=True).start()
    try:
        return _tune(at, pending, pool, run_plan)
    except KeyboardInterrupt:  # Ctrl-C (see `Interrupted`)
        _stop_now(pool)
        raise
    finally:
        quiet.set()


def _tune(at: _Attempt, pending: list[Trial], pool: Pool, run_plan: RunPlan) -> list[dict[str, Any]]:
    run, sweep, opts, attempt, timeline = at.run, at.sweep, at.opts, at.number, at.timeline
    n_workers = len(pool.workers)
    order = run_plan.plan.submission_order(run_plan.cost)
    chunks = chunk_units(order, {u.unit_id: u for u in run_plan.pending}, run_plan.cost, n_workers)
    chunked = {"tune_trials": len(chunks)}
    write_plan(run, attempt, run_plan, chunked)
    # Each worker measures its GPU's idle power while Tune starts its trial processes (time that
    # would otherwise come on top), importing the code of the models the plan gives it meanwhile;
    # a trial is sent to a worker only once that worker is prepared. Sent first: a worker prepares as
    # soon as its process is up, not once the slowest one is.
    prepared = [w.prepare.remote(run_plan.models_of(i)) for i, w in enumerate(pool.workers)]
    # Every node must be able to write the run folder: each worker checks from where it runs, as it
    # starts (a ping answers beside the prepare, in the "control" group, once the process is up).
    for r in pool.call_all("ping", group="control"):
        if isinstance(r, Exception):
            raise T2ARayError(f"a worker could not start: {root_cause(r)}")
    timeline.mark("workers_started")
    recorder = threading.Thread(target=_record_workers, args=(run, attempt, prepared, opts), daemon=True)
    recorder.start()

    policy = RetryPolicy(sweep.max_trial_retries, opts.worker_restart_wait_s, opts.worker_lost_after_s)
    send = Sender(pool.workers, prepared, pool.router, run, policy)
    trainable = tune.with_resources(
        tune.with_parameters(tune_trial, send=send, chunks=chunks),
        # Tune's trial functions only wait on workers; keep them on the head node, so that a worker
        # node that leaves takes no trial bookkeeping with it.
        {"cpu": 0.01, HEAD_NODE_RESOURCE: 0.001},
    )
    # The sweep's `search` key decides which pending trials Tune runs
    search = tune_plan(run, sweep, pending, len(chunks))
    total = len(run_plan.pending) if sweep.search.strategy == "grid" else len(pending)
    progress = ProgressLine(total=total, workers=n_workers, enabled=opts.progress)
    tuner = tune.Tuner(
        trainable,
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            **search.tune_config,
            # More trials in flight than workers: the next trial is queued on a worker before the
            # current one ends, so a GPU never waits for Tune's bookkeeping between trials
            # (benchmarks/results/orchestrator_overhead_audioldm_random_h100.md).
            max_concurrent_trials=2 * n_workers,
            reuse_actors=True,
            trial_dirname_creator=lambda trial: (
                f"chunk-{trial.config['chunk']}"
                if "chunk" in trial.config
                else f"trial-{trial.config['trial_id']}"
            ),
        ),
        run_config=tune.RunConfig(
            name=f"attempt-{attempt}",
            storage_path=str(run.tune_dir),
            verbose=0,
            # Tune's per-trial log: result.json only (its result grid reads it back; its default CSV and
            # TensorBoard copies are off: `ray_session`)
            callbacks=[progress, _RaiseIfSignalled(), JsonLoggerCallback()],
        ),
    )
    # Trials turn their own failures into rows. What reaches Tune is a run folder that cannot be
    # written (Tune's own state lives there too), a worker that could not prepare, or a trial
    # whose own process died.
    try:
        errors = tuner.fit().errors
    except Exception as e:  # noqa: BLE001 — judged below
        errors = [e]
    timeline.mark("tune_finished")
    progress.close()
    recorder.join()
    ready = gather(prepared)
    for p in ready:
        if isinstance(p, Exception):  # its trials were not run (no rows): a resume runs them
            pool.call_all("shutdown", timeout_s=30)
            if isinstance(getattr(p, "cause", None), ConfigError):  # a GPU the sweep cannot meter: exit 2
                raise p.cause from None
            raise T2ARayError(
                f"a worker could not start: {root_cause(p)}; `t2a-ray resume {run.root}` runs the trials left"
            )
    run_quarantined(send, opts)
    if errors:
        problem = run.write_problem()
        if problem is not None:
            raise StorageError(
                f"cannot write {run.root}: {problem}; no partial shard is kept — free the space or fix the folder, then `t2a-ray resume {run.root}`"
            )
        _say(
            opts,
            f"warning: {plural(len(errors), 'trial')} did not finish ({root_cause(errors[0])});"
            f" `t2a-ray resume {run.root}` runs them",
        )
    stats = [
        s if not isinstance(s, Exception) else {"worker": i, "error": root_cause(s)}
        for i, s in enumerate(pool.call_all("stats", timeout_s=30))
    ]
    dispatch = gather([pool.router.summary.remote()])[0]
    if not isinstance(dispatch, Exception):
        write_plan(run, attempt, run_plan, {**chunked, "dispatch": dispatch})
    atomic_write_text(run.attempt_log("workers", attempt), json.dumps(stats, indent=2, default=str))
    pool.call_all("shutdown", timeout_s=30)
    timeline.mark("workers_shut_down")
    timeline.add_workers(ready, stats)
    return stats


def _stop_now(pool: Pool) -> None:
    """Ctrl-C: no trial starts or writes a `failed` row from now on, and the trials in flight die with
    their workers (a shard is written whole or not at all), so a resume reruns exactly them."""
    with contextlib.suppress(Exception):
        ray.get(pool.router.stop.remote(), timeout=1)
    for worker in pool.workers:
        with contextlib.suppress(Exception):
            ray.kill(worker, no_restart=True)


def _say_activities(workers: list[Any], stop: threading.Event) -> None:
    """Say what each worker begins doing (its idle baseline, loading a model), as it begins."""
    said = [0] * len(workers)
    while not stop.wait(ACTIVITY_POLL_S):
        try:
            refs = [
                w.activities_since.options(concurrency_group="control").remote(said[i])
                for i, w in enumerate(workers)
            ]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=ACTIVITY_POLL_S)
        except Exception:  # noqa: BLE001 — Ray is going down: nothing more to say
            return
        for i, ref in enumerate(refs):
            try:
                said[i], new = ray.get(ref) if ref in ready else (said[i], [])
            except Exception:  # noqa: BLE001 — a worker that died says nothing
                continue
            for activity in new if not stop.is_set() else []:
                print(f"worker {i}: {activity}", file=sys.stderr, flush=True)


def _record_workers(run: RunFolder, attempt: int, prepared: list[Any], opts: LaunchOptions) -> None:
    """Once every worker is prepared: write each GPU's provenance and idle power, and say where they are."""
    ready = [p for p in gather(prepared) if not isinstance(p, Exception)]
    atomic_write_text(run.attempt_log("gpus", attempt), json.dumps(ready, indent=2, default=str))
    _say(
        opts,
        f"{plural(len(ready), 'worker')} ready: "
        + ", ".join(f"{p.get('gpu_name') or p['device']}@{p.get('node')}" for p in ready),
    )


def run_quarantined(send: Sender, opts: LaunchOptions) -> int:
    """Once Tune is done: the units that crashed their worker, one at a time with nothing beside them,
    each with the retries it has left. Returns how many there were."""
    units = ray.get(send.router.quarantined_units.remote())
    for uid in units:
        _say(opts, f"unit {uid} crashed its worker: running it again, alone")
        finish_unit(send, uid, None, quarantine=False, crashes=1)
    return len(units)


def _next_attempt(run: RunFolder) -> int:
    """One more than any attempt the folder records, in Tune's folders or in `logs/`: a run folder
    kept without Tune's state (as results are published) keeps its logs, which a resume must not
    overwrite."""
    tune = [p.name.removeprefix("attempt-") for p in run.tune_dir.glob("attempt-*")]
    numbers = [int(n) for n in tune if n.isdigit()] + [n for n, _ in run.attempt_logs()]
    return max(numbers, default=0) + 1


def _claim_attempt(run: RunFolder) -> int:
    """The next attempt, claimed by creating its Tune folder (atomic): drivers of shares of one run
    folder that start at once never write each other's attempt logs."""
    attempt = _next_attempt(run)
    run.tune_dir.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            (run.tune_dir / f"attempt-{attempt}").mkdir()
            return attempt
        except FileExistsError:
            attempt += 1


def _scope(opts: LaunchOptions) -> str:
    return opts.share.scope if opts.share is not None else ""


def _say(opts: LaunchOptions, message: str) -> None:
    if opts.progress:
        print(message, file=sys.stderr, flush=True)
