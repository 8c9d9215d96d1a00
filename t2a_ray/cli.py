"""The command line: launch | resume | slurm | status | analyze | search-bench | models | doctor.

Exit codes: 0 ok, 2 bad usage or config (one line, before any model loads, nothing written), 1 an error
or, after a launch or resume, a trial that failed (infeasible ones are an outcome: 0).
Heavy modules (Ray, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from t2a_ray import __version__
from t2a_ray.cli_options import (
    address_option,
    config_cols_option,
    energy_option,
    energy_unit_option,
    gpus_option,
    group_option,
    name_option,
    no_progress_option,
    out_option,
    quality_option,
    set_option,
)
from t2a_ray.errors import ConfigError, T2ARayError
from t2a_ray.fast_exit import ExitingGroup
from t2a_ray.wording import plural

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130  # 130: 128 + SIGINT, as a shell reports Ctrl-C


def _fail_usage(error: ConfigError | ValueError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(cls=ExitingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="t2a-ray")
@click.option("-v", "--verbose", is_flag=True, help="Log more (Ray and t2a-ray internals).")
def main(verbose: bool) -> None:
    """Measure what text-to-audio diffusion models cost in energy, and find the settings that give
    the most audio quality per joule — on one GPU, a node of 8, or a Ray cluster."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def demo_config() -> Path:
    return Path(str(resources.files("t2a_ray") / "demo" / "demo.yaml"))


def _check_gpus(gpus: int | None, address: str | None) -> int | None:
    """Resolve --gpus (default: every visible GPU, or the CPU when there is none)."""
    if gpus is not None and gpus < 0:
        raise ConfigError("--gpus", gpus, "must be 0 (CPU) or a positive number of GPUs")
    if address:
        return gpus  # None: every GPU of the cluster, counted once joined
    from t2a_ray.metering.gpu import gpus_are_logical, visible_gpu_count

    if gpus_are_logical():
        return gpus or 0

    visible = visible_gpu_count()
    if gpus is None:
        return visible
    if gpus > visible:
        fix = "run with --gpus 0 to measure on the CPU" if visible == 0 else f"use --gpus {visible} or fewer"
        raise ConfigError("--gpus", gpus, f"only {visible} NVIDIA GPU(s) visible here; {fix}")
    return gpus


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sweep file (YAML). Default: the built-in demo (tiny models, CPU, about a minute).",
)
@gpus_option("GPUs to use, one worker each; 0 runs on the CPU. Default: every visible GPU, else the CPU.")
@address_option(
    "Join an existing Ray cluster: 'auto' or HOST:PORT. Default: start a local Ray on 127.0.0.1 and stop it afterwards."
)
@out_option(Path("runs"), "Folder that holds run folders.")
@name_option("Run name (the run folder is OUT/NAME). Default: the sweep's name.")
@set_option(
    "Change a value of the sweep file (VALUE in YAML; repeatable), e.g. --set weights=random --set grid.steps=[10,25]."
)
@no_progress_option
def launch(
    config_path: Path | None,
    gpus: int | None,
    address: str | None,
    out_dir: Path,
    name: str | None,
    overrides: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Run a sweep: every configuration of the grid, metered, into OUT/NAME."""
    from t2a_ray.config import load_sweep
    from t2a_ray.frozen import create_run
    from t2a_ray.runfolder import RunFolder

    demo = config_path is None
    try:
        gpus = 0 if demo and gpus is None else _check_gpus(gpus, address)
        device = "cpu" if gpus == 0 else "cuda"
        sweep = load_sweep(demo_config() if demo else config_path, name, overrides, device)
        run = RunFolder(out_dir / sweep.name)
        if run.exists():
            raise ConfigError(
                "--name",
                sweep.name,
                f"a run already exists at {run.root}; resume it with `t2a-ray resume {run.root}` or choose another --name",
            )
        _check_out(out_dir)
    except ConfigError as e:
        _fail_usage(e)

    search = sweep.search
    plan = (
        ""
        if search.strategy == "grid"
        else f" (search {search.strategy}, budget {search.budget_kind}={search.budget:g})"
    )
    click.echo(
        f"sweep {sweep.name}: {plural(len(sweep.trials()), 'trial')}{plan} × {plural(sweep.repeats, 'repeat')}"
        f" × {plural(len(sweep.prompts), 'prompt')} → {run.root}",
        err=True,
    )
    from t2a_ray.config import prompt_notes
    from t2a_ray.orchestrator.runner import LaunchOptions  # Ray: only once the sweep is valid

    for note in prompt_notes(sweep):
        click.echo(f"note: {note}", err=True)
    try:
        run.root.mkdir(parents=True, exist_ok=True)
        # The lock first, then the folder's files: of two launches of one name, exactly one runs; the
        # other is refused (exit 2) with the holder's pid and host, or because the run now exists.
        with run.driver_lock():
            create_run(run, sweep)
            _run(run, LaunchOptions(gpus=gpus, address=address, progress=not no_progress))
    except ConfigError as e:
        _fail_usage(e)
    except OSError as e:
        _fail_storage(run, e)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@gpus_option("GPUs to use (default: every visible GPU, else the CPU).")
@address_option("Join an existing Ray cluster: 'auto' or HOST:PORT.")
@click.option(
    "--share",
    default=None,
    metavar="I/K",
    help="Run only share I of K of the units (a job array's task; `t2a-ray slurm --array K` passes it).",
)
@no_progress_option
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run the failed trials again (their failed shards set aside in trials/retried/); ok and infeasible ones are kept.",
)
@click.option(
    "--accept-changed-sweep",
    is_flag=True,
    help="Continue although sweep.yaml or trials.jsonl changed since the launch: the trials are expanded "
    "again from sweep.yaml as it is now, and shards of trials no longer in it are moved aside.",
)
def resume(
    run_dir: Path,
    gpus: int | None,
    address: str | None,
    share: str | None,
    no_progress: bool,
    retry_failed: bool,
    accept_changed_sweep: bool,
) -> None:
    """Continue an interrupted sweep from its folder alone: finished trials are never run again
    (failed ones only with --retry-failed)."""
    from t2a_ray.config import check_device
    from t2a_ray.frozen import load_run_sweep
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    part = None
    try:
        if not run.exists():
            raise ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)")
        sweep = load_run_sweep(run)  # its trials are the frozen ones (trials.jsonl)
        gpus = _check_gpus(gpus, address)
        check_device(sweep, "cpu" if gpus == 0 else "cuda")
        part = None
        if share is not None:
            from t2a_ray.orchestrator.shares import Share

            part = Share.parse(share)
            part.check(sweep)
    except ConfigError as e:
        _fail_usage(e)
    from t2a_ray.orchestrator.runner import LaunchOptions  # Ray: only once the run is valid

    opts = LaunchOptions(
        gpus=gpus,
        address=address,
        progress=not no_progress,
        retry_failed=retry_failed,
        share=part,
        accept_changed_sweep=accept_changed_sweep,
    )
    _run(run, opts)


def _check_out(out_dir: Path) -> None:
    """--out must be a folder this process can create and write, and not a folder of the operating
    system, before anything starts."""
    from t2a_ray.config import is_system_path

    if is_system_path(out_dir):
        raise ConfigError(
            "--out", str(out_dir), "is a folder of the operating system; give a folder of your own for runs"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("--out", str(out_dir), f"cannot be created ({e.strerror or e})") from None
    try:
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".t2a-ray-probe-")
    except OSError as e:
        raise ConfigError("--out", str(out_dir), f"cannot be written ({e.strerror or e})") from None
    probe.close()


def _fail_storage(run, error: OSError) -> None:
    """A run folder that cannot be written (a full disk): one line and exit 1 — the command was right,
    the folder is not; the same command works once there is space."""
    click.echo(
        f"error: cannot write {run.root}: {error.strerror or error}; every finished trial is kept — free "
        f"the space (or fix the folder), then `t2a-ray resume {run.root}`",
        err=True,
    )
    sys.exit(EXIT_FAILURE)


def _run(run, opts) -> None:
    """Run the sweep (`opts`: runner.LaunchOptions), print its outcome, its analysis and its failures;
    exit 1 if a trial failed or is not finished (after everything is merged and reported)."""
    from t2a_ray.frozen import load_run_sweep, pending_trials
    from t2a_ray.orchestrator import reaper
    from t2a_ray.orchestrator.runner import run_sweep, stop_on_sigint

    def interrupted(at_once: bool = False) -> None:
        if at_once:  # a second Ctrl-C: Ray's processes go now, with whatever they were doing
            reaper.kill_descendants()
        sweep = load_run_sweep(run)
        left = len(pending_trials(run, sweep))  # a trial is done once its units cover its repeats
        click.echo(
            f"\ninterrupted: {len(sweep.trials()) - left} done, {left} to run"
            f" — continue with `t2a-ray resume {run.root}`",
            err=True,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        # Ray is down and every shard is whole: skip the interpreter's exit, which waits on the
        # threads Tune and Ray leave behind (seconds), and everything a second Ctrl-C interrupts.
        os._exit(EXIT_INTERRUPTED)

    try:
        with stop_on_sigint(at_once=lambda: interrupted(at_once=True)) as signalled:
            outcome = run_sweep(run, opts)
    except KeyboardInterrupt:  # the first Ctrl-C, raised through Ray and Tune
        interrupted()
    except ConfigError as e:
        _fail_usage(e)
    except T2ARayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILURE)
    except OSError as e:  # the folder cannot be written where no finer handler caught it (a full disk)
        _fail_storage(run, e)
    if signalled:  # a Ctrl-C that came too late to stop anything still skips the analysis
        interrupted()
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(outcome.statuses.items())) or "none"
    click.echo(
        f"{plural(outcome.total, 'trial')}: ran {outcome.ran}, skipped {outcome.skipped} already done;"
        f" outcomes: {statuses}{f', {outcome.pending} pending' if outcome.pending else ''}"
        f" ({outcome.wall_s:.1f} s)",
        err=True,
    )
    for path in map(Path, outcome.quarantined):
        why = "not a shard of this run" if path.parent == run.foreign_dir else "unreadable shard"
        click.echo(f"warning: {why}, moved aside: {path}", err=True)
    left = 0
    share = opts.share
    if share is not None:  # a share analyses only once the whole sweep is done (the last share does it)
        left = len(pending_trials(run, load_run_sweep(run)))
        if left:
            click.echo(
                f"share {share.index}/{share.count} done; {plural(left, 'trial')} of other shares to run"
                f" — `t2a-ray analyze {run.root}` merges what is finished at any time",
                err=True,
            )
    if not left and run.results.exists():
        _report_run(run)
    if outcome.pending:  # never "ok" with rows missing
        click.echo(
            f"error: {plural(outcome.pending, 'trial')} not finished; `t2a-ray resume {run.root}` runs them",
            err=True,
        )
        sys.exit(EXIT_FAILURE)
    failed = outcome.statuses.get("failed", 0)
    if failed:
        click.echo(
            f"{plural(failed, 'trial')} failed (listed above): `t2a-ray resume {run.root} --retry-failed`"
            " runs them again",
            err=True,
        )
        sys.exit(EXIT_FAILURE)


def _report_run(run) -> None:
    """The analysis of a sweep just run; where there is none (no ok rows), why, and its failures."""
    from t2a_ray.analysis import AnalysisError, analyze_run

    try:
        click.echo(analyze_run(run.root).text())
    except AnalysisError as e:
        click.echo(f"no analysis: {e}", err=True)
        _echo_failures(run)


def _echo_failures(run) -> None:
    """The run's failures alone, where its analysis could not be made (it lists them itself)."""
    from t2a_ray.analysis import AnalysisError, read_run_results
    from t2a_ray.analysis.failures import find_failures

    try:
        failures = find_failures(read_run_results(run.root))
    except AnalysisError:  # no rows to read: nothing to list
        return
    if failures is not None:
        click.echo(failures.text())


@main.command()
@click.argument("sweep_path", metavar="SWEEP.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--nodes", type=int, default=1, show_default=True, help="Nodes of one Ray cluster.")
@click.option("--gpus-per-node", type=int, default=1, show_default=True, help="GPUs to ask of each node.")
@click.option(
    "--array",
    type=int,
    default=None,
    metavar="K",
    help="K independent single-node jobs instead, each running its share of the units (no multi-node Ray).",
)
@click.option("--partition", default=None, help="sbatch --partition.")
@click.option("--time", default=None, help="sbatch --time (e.g. 04:00:00).")
@click.option("--account", default=None, help="sbatch --account.")
@click.option("--constraint", default=None, help="sbatch --constraint.")
@click.option("--exclusive", is_flag=True, help="sbatch --exclusive.")
@click.option("--requeue", is_flag=True, help="sbatch --requeue: a preempted job comes back and resumes.")
@click.option(
    "--sbatch-line",
    "sbatch_lines",
    multiple=True,
    help="Another sbatch option, e.g. '--qos=high' (repeatable).",
)
@out_option(Path("runs"), "Folder that holds run folders: on storage every node shares.")
@name_option("Run name (OUT/NAME). Default: the sweep's name.")
@set_option("As for launch (repeatable).")
@click.option("--submit", is_flag=True, help="Submit the job with sbatch (else: write the script, say how).")
@click.option("--print", "print_only", is_flag=True, help="Print the batch script; write nothing.")
def slurm(
    sweep_path: Path,
    out_dir: Path,
    name: str | None,
    overrides: tuple[str, ...],
    submit: bool,
    print_only: bool,
    **allocation,
) -> None:
    """A sweep as a Slurm batch job: Ray across the allocation, the sweep from its head, Ray stopped
    at the end. The run folder is created now (the sweep frozen) and the job resumes it: a requeued,
    preempted or resubmitted job (the same NAME) continues it, never runs a unit twice."""
    from t2a_ray.metering.gpu import gpus_are_logical
    from t2a_ray.orchestrator import slurm as batch

    shape = batch.Allocation(**allocation)  # the job's own options, as click passes them
    try:
        if submit and print_only:
            raise ConfigError("--submit/--print", None, "give one of them, not both")
        sweep, run = _slurm_run(sweep_path, out_dir, name, overrides, shape)
        job = batch.SlurmJob(
            run_root=run.root,
            allocation=shape,
            sweep_path=None if run.exists() else sweep_path.absolute(),
            overrides=overrides,
            logical_gpus=gpus_are_logical(),
        )
        job.check()
        if print_only:
            click.echo(batch.render(job), nl=False)
            if not run.exists():  # Slurm opens the job's output file there before the script runs
                click.echo(
                    f"note: `mkdir -p {run.slurm_dir}` before sbatch (the job's output goes there)", err=True
                )
            return
        _check_out(out_dir)
        resumed = run.exists()
        if not resumed:
            from t2a_ray.frozen import create_run

            create_run(run, sweep)
        script = batch.write_script(job)
        job_id = batch.submit(job, script) if submit else None
    except ConfigError as e:
        _fail_usage(e)
    what = "continues the run at" if resumed else "runs the sweep into"
    if job_id is None:
        click.echo(f"wrote {script}; `sbatch {script}` {what} {run.root}", err=True)
    else:
        click.echo(f"submitted job {job_id}: it {what} {run.root} — `t2a-ray status {run.root}`", err=True)


def _slurm_run(sweep_path: Path, out_dir: Path, name, overrides, shape):
    """The sweep and its run folder for `slurm` (`shape`: the job's `slurm.Allocation`): a run of that
    name, if any, must be this sweep (the job resumes it); a new one gets its placement frozen for every
    GPU the job(s) will have."""
    from dataclasses import replace

    from t2a_ray.config import load_sweep
    from t2a_ray.orchestrator.shares import Share
    from t2a_ray.runfolder import RunFolder

    sweep = load_sweep(sweep_path, name, overrides, "cuda")
    sweep = replace(sweep, placement=sweep.placement.resolve(shape.total_gpus))
    run = RunFolder(out_dir / sweep.name)
    if run.exists():
        from t2a_ray.frozen import load_run_sweep

        frozen = load_run_sweep(run)
        if {t.trial_id for t in frozen.trials()} != {t.trial_id for t in sweep.trials()} or (
            frozen.repeats,
            frozen.prompts,
        ) != (sweep.repeats, sweep.prompts):
            raise ConfigError(
                "--name",
                sweep.name,
                f"a run of another sweep exists at {run.root}; choose another --name (a job resumes a run of the same sweep only)",
            )
        sweep = frozen
    if shape.array is not None:
        Share(0, max(shape.array, 1)).check(sweep)
    return sweep, run


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def status(run_dir: Path) -> None:
    """Trials done / failed / infeasible / pending, energy so far, an ETA."""
    from t2a_ray.orchestrator.status import run_status
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    if not run.exists():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)"))
    try:
        click.echo(run_status(run).text())
    except ConfigError as e:
        _fail_usage(e)


@main.command()
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--results",
    "results",
    multiple=True,
    help="Results tables (.csv or .parquet; globs; repeatable), concatenated, instead of a run folder. "
    "CodeCarbon's emissions.csv is recognised by its header (energies in kWh).",
)
@energy_option("Energy column to minimise (with --results).")
@energy_unit_option(
    "Unit of --energy; default: its _j/_wh/_kwh suffix, else the recognised format's. Converted to J."
)
@quality_option("COL:max or COL:min, repeatable (with --results).")
@group_option("Comma-separated columns: one front per group (with --results).")
@config_cols_option("Comma-separated columns that identify a configuration (default: inferred, and said).")
@click.option(
    "--extract",
    "extracts",
    multiple=True,
    help="COL=REGEX with named groups: parse configuration columns out of a text column (repeatable).",
)
@click.option(
    "--join",
    "joins",
    multiple=True,
    help="Tables whose columns to bring in, e.g. quality scores (globs; repeatable; files of one schema stacked).",
)
@click.option("--on", "join_on", multiple=True, help="Comma-separated key columns of each --join.")
@click.option(
    "--carbon-intensity",
    type=click.FloatRange(0.0, 10_000.0),
    default=None,
    help="g CO2e per kWh for the carbon figures (default: the sweep's, or CodeCarbon's own per row).",
)
@out_option(None, "Report folder (default: RUN_DIR/report, or ./t2a-report for --results).", file_ok=True)
def analyze(run_dir: Path | None, carbon_intensity: float | None, out_dir: Path | None, **tables) -> None:
    """Pareto fronts, fits and the report, for a run folder or any results tables."""
    query = _TableQuery(**tables)
    if run_dir is not None and run_dir.is_file():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), f"is a file; for a table use --results {run_dir}"))
    if (run_dir is None) == (not query.results):
        _fail_usage(
            ConfigError(
                "RUN_DIR/--results", None, "give a run folder or --results TABLE, not both, not neither"
            )
        )
    from t2a_ray.config import is_system_path

    if out_dir is not None and is_system_path(out_dir):
        _fail_usage(
            ConfigError(
                "--out", str(out_dir), "is a folder of the operating system; give a folder of your own"
            )
        )
    if run_dir is not None:
        _analyze_run(run_dir, out_dir, carbon_intensity)
        return
    _analyze_tables(query, out_dir, carbon_intensity)


@dataclass(frozen=True)
class _TableQuery:
    """`analyze --results`'s options, as click passes them (by name): which tables, and how to read
    their columns."""

    results: tuple[str, ...]
    energy_col: str | None
    energy_unit: str | None
    qualities: tuple[str, ...]
    group_cols: str
    config_cols: str | None
    extracts: tuple[str, ...]
    joins: tuple[str, ...]
    join_on: tuple[str, ...]


def _analyze_tables(query: _TableQuery, out_dir: Path | None, carbon_intensity: float | None) -> None:
    """`analyze --results`: the tables read, extended (--extract, --join), their energy in joules,
    then analysed like a run's."""
    from t2a_ray.analysis import AnalysisError, analyze_table
    from t2a_ray.analysis import hosts as _hosts
    from t2a_ray.analysis import inputs as _inputs
    from t2a_ray.analysis.report import TableSource

    q = query
    energy_col, join_on, joins = q.energy_col, q.join_on, q.joins
    try:
        if not energy_col:
            raise ConfigError("--energy", None, "name the energy column to minimise")
        if len(join_on) not in (len(joins), 1) or (join_on and not joins):
            raise ConfigError("--on", list(join_on), "give one --on for every --join (or one for all)")
        parsed = _qualities(q.qualities)
        table = _inputs.read_tables(q.results)
        for spec in q.extracts:
            _inputs.extract(table, *_inputs.parse_extract(spec))
        if joins:
            ons = [_columns(join_on[i] if len(join_on) > 1 else join_on[0]) for i in range(len(joins))]
            _inputs.join_all(table, joins, ons)
        groups, keys = _columns(q.group_cols), None if q.config_cols is None else _columns(q.config_cols)
        df = table.frame
        for col in [energy_col, *(c for c, _ in parsed), *groups, *(keys or [])]:
            if col not in df.columns:
                raise ConfigError(
                    "--energy/--quality/--group/--config-cols",
                    col,
                    f"no such column in the results (has: {', '.join(map(str, df.columns))})",
                )
        df, energy_j, notes = _inputs.energy_in_joules(df, energy_col, q.energy_unit, table.units)
        analysis = analyze_table(
            df,
            energy_j,
            parsed,
            groups,
            out_dir or Path("t2a-report"),
            config_cols=keys,
            intensity_g_per_kwh=carbon_intensity,
            source=TableSource(
                title=", ".join(str(p.name) for p in table.sources[:3])
                + (f" and {len(table.sources) - 3} more" if len(table.sources) > 3 else ""),
                notes=table.notes + notes,
                not_keys=table.not_keys | {energy_col},
                reference=_hosts.reference_table(p.parent for p in table.sources),  # logs/ beside a table
            ),
        )
    except ConfigError as e:
        _fail_usage(e)
    except AnalysisError as e:
        _fail_usage(e)
    click.echo(analysis.text())


@main.command("search-bench")
@click.option(
    "--results",
    "results_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A finished results table (.csv or .parquet): the oracle.",
)
@energy_option("Energy column to minimise (see --energy-unit).", required=True)
@energy_unit_option("Unit of --energy; default: its _j/_wh/_kwh suffix, else joules. Converted to J.")
@quality_option("COL:max or COL:min, repeatable.", required=True)
@config_cols_option("Comma-separated columns that make a configuration (e.g. model,steps).", required=True)
@group_option("Comma-separated columns: a search and its fronts per value (e.g. dataset), as analyze has.")
@click.option(
    "--budget", type=float, default=0.3, show_default=True, help="Energy budget, a fraction of the grid's."
)
@click.option("--seeds", type=int, default=20, show_default=True, help="Runs per strategy (seeds 0…N−1).")
@click.option(
    "--strategies",
    default="pareto,random,cheapest",
    show_default=True,
    help="Comma-separated strategies to compare.",
)
@click.option(
    "--first-units",
    type=int,
    default=2,
    show_default=True,
    help="Rows of a configuration's first measurement, where it has them (pareto measures one first).",
)
@out_option(Path("t2a-search-bench"), "Folder for search-bench.csv and search-bench.png.")
def search_bench(
    results_path: Path,
    energy_col: str,
    energy_unit: str,
    qualities: tuple[str, ...],
    config_cols: str,
    group_cols: str,
    out_dir: Path,
    **replay,
) -> None:
    """Replay searches against a finished table: hypervolume reached vs energy spent, per strategy."""
    r = _Replay(**replay)
    import pandas as pd

    from t2a_ray.analysis import load_table
    from t2a_ray.analysis.inputs import energy_in_joules
    from t2a_ray.analysis.search import STRATEGIES, Budget
    from t2a_ray.analysis.search_replay import Oracle, bench, over_budget, plot_curves, summary
    from t2a_ray.runfolder import atomic_write_text

    try:
        parsed = _qualities(qualities)
        cols, groups = _columns(config_cols), _columns(group_cols)
        names = [s for s in r.strategies.split(",") if s]
        for name in names:
            if name not in STRATEGIES:
                raise ConfigError("--strategies", name, f"must be among {', '.join(STRATEGIES)}")
            if missing := STRATEGIES[name].missing():
                raise ConfigError("--strategies", name, missing)
        if not 0 < r.budget <= 1:
            raise ConfigError(
                "--budget", r.budget, "must be a fraction of the grid's energy, above 0 and at most 1"
            )
        if r.seeds < 1:
            raise ConfigError("--seeds", r.seeds, "must be at least 1")
        if r.first_units < 1:
            raise ConfigError("--first-units", r.first_units, "must be at least 1")
        if not cols:
            raise ConfigError("--config-cols", config_cols, "name at least one column")
        if both := sorted(set(cols) & set(groups)):
            raise ConfigError("--group", group_cols, f"{', '.join(both)} is in --config-cols too")
        try:
            df = load_table(results_path, required=[energy_col, *(c for c, _ in parsed), *cols, *groups])
        except (ValueError, OSError) as e:
            raise ConfigError("--results", str(results_path), str(e)) from None
        try:
            df, energy_col, _ = energy_in_joules(df, energy_col, energy_unit, {})
        except ValueError as e:
            raise ConfigError("--energy", energy_col, str(e)) from None
        parts = list(df.groupby(groups, dropna=False, sort=True)) if groups else [((), df)]
        oracles = []
        for key, part in parts:
            try:
                oracles.append((key, part, Oracle.from_table(part, energy_col, parsed, cols)))
            except ValueError as e:
                raise ConfigError("--results", str(results_path), str(e)) from None
    except ConfigError as e:
        _fail_usage(e)
    metrics = [m for m, _ in parsed]
    taken = {energy_col, *metrics, *groups}
    tables, summaries, all_curves = [], [], {}
    for key, part, oracle in oracles:
        label = dict(zip(groups, key if isinstance(key, tuple) else (key,), strict=True))
        where = " ".join(f"{k}={v}" for k, v in label.items())
        for note in oracle.notes(part, cols, taken):
            click.echo(f"note{f' ({where})' if where else ''}: {note}")
        results, curves = bench(oracle, names, Budget("energy_fraction", r.budget), r.seeds, r.first_units)
        for line in over_budget(results, r.budget):
            click.echo(f"over budget{f' ({where})' if where else ''}: {line}")
        tables.append(results.assign(**label)[[*groups, *results.columns]])
        summaries.append(summary(results).assign(**label))
        for name, runs in curves.items():
            all_curves.setdefault(name, []).extend(runs)
    results = pd.concat(tables, ignore_index=True)
    table = pd.concat(summaries)
    table = table.set_index(groups, append=True).reorder_levels([*groups, 0, 1]) if groups else table
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "search-bench.csv", results.to_csv(index=False))
    n_configs = sum(len(o.space) for _, _, o in oracles)
    title = f"{results_path.name}: {n_configs} configurations, budget {r.budget:g} of the energy"
    plot_curves(all_curves, out_dir / "search-bench.png", title)
    click.echo(table.to_string(float_format=lambda v: f"{v:.3f}"))
    click.echo(f"→ {out_dir / 'search-bench.csv'}, {out_dir / 'search-bench.png'}")


@dataclass(frozen=True)
class _Replay:
    """`search-bench`'s replay options, as click passes them (by name)."""

    strategies: str
    budget: float
    seeds: int
    first_units: int


def _qualities(specs: tuple[str, ...]) -> list[tuple[str, str]]:
    """--quality COL:max|min, each parsed once (ConfigError naming the bad one)."""
    from t2a_ray.analysis.pipeline import parse_quality

    parsed = []
    for q in specs:
        try:
            parsed.append(parse_quality(q))
        except ValueError:
            raise ConfigError("--quality", q, "must be COL:max or COL:min") from None
    return parsed


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _analyze_run(run_dir: Path, out_dir: Path | None = None, intensity: float | None = None) -> None:
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    if not run.exists():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)"))
    from t2a_ray.analysis import AnalysisError, analyze_run
    from t2a_ray.frozen import load_run_sweep, pending_trials, shard_owner
    from t2a_ray.schema import merge_results

    run.remove_stale_temp_files()  # of this host's writers killed mid-write (a merge, a report)
    try:
        sweep = load_run_sweep(run)
    except ConfigError as e:
        _fail_usage(e)
    table, _ = merge_results(run, owner=shard_owner(run, sweep))  # only the run's own shards
    if table is None:
        click.echo(f"error: {run.root} has no finished trials yet", err=True)
        sys.exit(EXIT_FAILURE)
    left = len(pending_trials(run, sweep)) if sweep.search.strategy == "grid" else 0
    if left:
        click.echo(
            f"note: the run is unfinished: {left} of {plural(len(sweep.trials()), 'trial')} pending"
            f" (`t2a-ray resume {run.root}` runs them); the analysis covers the finished ones",
            err=True,
        )
    try:
        click.echo(analyze_run(run.root, out_dir=out_dir, intensity_g_per_kwh=intensity).text())
    except AnalysisError as e:
        _echo_failures(run)
        _fail_usage(e)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """The adapters: weight modes, parameters, defaults and limits."""
    import json

    from t2a_ray.adapters import get_card, model_ids

    cards = [get_card(m) for m in model_ids()]
    if as_json:
        click.echo(json.dumps([_card_doc(c) for c in cards], indent=2, default=str))
        return
    for c in cards:
        click.echo(f"{c.id}  —  {c.summary}")
        click.echo(
            f"  pipeline: {c.pipeline}; repo: {c.repo or '-'}{'@' + c.revision if c.revision else ''}; {c.sample_rate_hz} Hz × {c.channels} ch"
        )
        click.echo(f"  weights: {', '.join(c.weight_modes)}; phases: {', '.join(c.phases)}")
        click.echo(f"  limits: {_limits_text(c)}")
        for p in c.params:
            click.echo(f"    {p.name:<16} default {p.default!r:<8} {p.allowed():<40} {p.help}")
        for k, v in c.options.items():
            click.echo(f"    option {k}: {v}")
        if c.notes:
            click.echo(f"  notes: {c.notes}")
        click.echo("")


def _limits_text(card) -> str:
    """Each weight mode's limits, modes with the same limits together: the duration range, any
    parameter a mode limits more tightly than the card, and the prompt tokens the text encoder reads."""
    shown = {"duration_s"} | {n for lim in card.mode_limits.values() for n in lim.maximum}
    by_text: dict[str, list[str]] = {}
    for mode in card.weight_modes:
        lim = card.limits(mode)
        parts = []
        for name in card.param_names:
            if name in shown and name in lim.maximum:
                spec = card.param(name)
                low = f"{spec.minimum:g}–" if spec.minimum is not None else "≤ "
                parts.append(f"{name} {low}{lim.maximum[name]:.3g}{' ' + spec.unit if spec.unit else ''}")
        if lim.why:
            parts[-1] += f" ({lim.why})"
        tokens = lim.text_max_tokens
        parts.append(f"prompts {tokens} tokens" if tokens else "no text encoder")
        by_text.setdefault(", ".join(parts), []).append(mode)
    return "; ".join(f"{', '.join(modes)}: {text}" for text, modes in by_text.items())


def _card_doc(card) -> dict:
    return {
        "id": card.id,
        "summary": card.summary,
        "pipeline": card.pipeline,
        "repo": card.repo,
        "revision": card.revision,
        "sample_rate_hz": card.sample_rate_hz,
        "channels": card.channels,
        "weight_modes": list(card.weight_modes),
        "phases": list(card.phases),
        "notes": card.notes,
        "options": dict(card.options),
        "limits": {
            mode: {
                "maximum": dict(lim.maximum),
                "text_max_tokens": lim.text_max_tokens,
                "why": lim.why or None,
            }
            for mode in card.weight_modes
            for lim in [card.limits(mode)]
        },
        "params": [
            {
                "name": p.name,
                "type": p.kind.__name__,
                "default": p.default,
                "allowed": p.allowed(),
                "unit": p.unit,
                "help": p.help,
            }
            for p in card.params
        ],
    }


@main.command()
@gpus_option("GPUs to check. Default: every visible GPU.")
@address_option("Check every GPU of a Ray cluster: 'auto' or HOST:PORT.")
@out_option(Path("t2a-doctor"), "Folder for the record: doctor.md and doctor.json.")
@click.option("--quick", is_flag=True, help="Shorter measurements: ~20 s per GPU instead of ~3 min.")
def doctor(gpus: int | None, address: str | None, out_dir: Path, quick: bool) -> None:
    """Check on every GPU that the meter can be trusted there (exit 1 if a check fails)."""
    given = {"--gpus": gpus, "--address": address, "--out": out_dir}
    command = " ".join(["t2a-ray doctor", *(f"{k} {v}" for k, v in given.items() if v is not None)])
    command += " --quick" if quick else ""
    try:
        gpus = _check_gpus(gpus, address)
    except ConfigError as e:
        _fail_usage(e)
    from t2a_ray.orchestrator.doctor_fanout import run_doctor

    try:
        record = run_doctor(gpus, address, quick, out_dir, command)
    except ConfigError as e:
        _fail_usage(e)
    except T2ARayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(record.markdown())
    click.echo(f"record: {out_dir / 'doctor.md'}, {out_dir / 'doctor.json'}", err=True)
    sys.exit(record.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
