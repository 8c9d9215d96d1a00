"""The command line: launch | resume | status | analyze | models.

Exit codes: 0 ok, 2 bad usage or config (one line, before any model loads, nothing written), 1 failure.
Heavy modules (Ray, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path

import click

from t2a_ray import __version__
from t2a_ray.errors import ConfigError, T2ARayError

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130  # 130: 128 + SIGINT, as a shell reports Ctrl-C
# Tests on CPU-only machines run multi-GPU sweeps on Ray's logical GPUs (nothing is on them).
LOGICAL_GPUS_ENV = "T2A_RAY_LOGICAL_GPUS"


def _fail_usage(error: ConfigError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    if os.environ.get(LOGICAL_GPUS_ENV) == "1":
        return gpus or 0
    from t2a_ray.metering.gpu import visible_gpu_count

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
@click.option(
    "--gpus",
    type=int,
    default=None,
    help="GPUs to use, one worker each; 0 runs on the CPU. Default: every visible GPU, else the CPU.",
)
@click.option(
    "--address",
    default=None,
    help="Join an existing Ray cluster: 'auto' or HOST:PORT. Default: start a local Ray on 127.0.0.1 and stop it afterwards.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder that holds run folders.",
)
@click.option(
    "--name", default=None, help="Run name (the run folder is OUT/NAME). Default: the sweep's name."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a value of the sweep file (VALUE in YAML; repeatable), e.g. --set weights=random --set grid.steps=[10,25].",
)
@click.option("--no-progress", is_flag=True, help="No progress line.")
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
    from t2a_ray.orchestrator.progress import plural

    click.echo(
        f"sweep {sweep.name}: {plural(len(sweep.trials()), 'trial')} × {plural(sweep.repeats, 'repeat')}"
        f" × {plural(len(sweep.prompts), 'prompt')} → {run.root}",
        err=True,
    )
    run.create(sweep.to_yaml())
    _run(run, gpus, address, not no_progress, analyze=True)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--gpus", type=int, default=None, help="GPUs to use (default: every visible GPU, else the CPU)."
)
@click.option("--address", default=None, help="Join an existing Ray cluster: 'auto' or HOST:PORT.")
@click.option("--no-progress", is_flag=True, help="No progress line.")
def resume(run_dir: Path, gpus: int | None, address: str | None, no_progress: bool) -> None:
    """Continue an interrupted sweep from its folder alone: finished trials are never run again."""
    from t2a_ray.config import load_sweep
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    try:
        if not run.exists():
            raise ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)")
        load_sweep(run.sweep_yaml)
        gpus = _check_gpus(gpus, address)
    except ConfigError as e:
        _fail_usage(e)
    _run(run, gpus, address, not no_progress, analyze=True)


def _check_out(out_dir: Path) -> None:
    """--out must be a folder this process can create and write, before anything starts."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("--out", str(out_dir), f"cannot be created ({e.strerror or e})") from None
    try:
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".t2a-ray-probe-")
    except OSError as e:
        raise ConfigError("--out", str(out_dir), f"cannot be written ({e.strerror or e})") from None
    probe.close()


def _run(run, gpus: int | None, address: str | None, progress: bool, analyze: bool) -> None:
    from t2a_ray.config import load_sweep
    from t2a_ray.orchestrator import reaper
    from t2a_ray.orchestrator.progress import plural
    from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep, stop_on_sigint

    def interrupted(at_once: bool = False) -> None:
        if at_once:  # a second Ctrl-C: Ray's processes go now, with whatever they were doing
            reaper.kill_descendants()
        sweep = load_sweep(run.sweep_yaml)
        done = len(run.finished_trial_ids() & {t.trial_id for t in sweep.trials()})
        click.echo(
            f"\ninterrupted: {done} done, {len(sweep.trials()) - done} to run"
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
            outcome = run_sweep(run, LaunchOptions(gpus=gpus, address=address, progress=progress))
    except KeyboardInterrupt:  # the first Ctrl-C, raised through Ray and Tune
        interrupted()
    except ConfigError as e:
        _fail_usage(e)
    except T2ARayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILURE)
    if signalled:  # a Ctrl-C that came too late to stop anything still skips the analysis
        interrupted()
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(outcome.statuses.items())) or "none"
    click.echo(
        f"{plural(outcome.total, 'trial')}: ran {outcome.ran}, skipped {outcome.skipped} already done;"
        f" outcomes: {statuses} ({outcome.wall_s:.1f} s)",
        err=True,
    )
    for path in outcome.quarantined:
        click.echo(f"warning: unreadable shard moved aside: {path}", err=True)
    if analyze and run.results.exists():
        _analyze_run(run.root)


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
@click.argument("run_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--results",
    "results_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Any results table (.csv or .parquet) instead of a run folder.",
)
@click.option("--energy", "energy_col", default=None, help="Energy column to minimise (with --results).")
@click.option(
    "--quality", "qualities", multiple=True, help="COL:max or COL:min, repeatable (with --results)."
)
@click.option(
    "--group", "group_cols", default="", help="Comma-separated columns: one front per group (with --results)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder (default: RUN_DIR/report, or ./t2a-report for --results).",
)
def analyze(
    run_dir: Path | None,
    results_path: Path | None,
    energy_col: str | None,
    qualities: tuple[str, ...],
    group_cols: str,
    out_dir: Path | None,
) -> None:
    """Pareto fronts, fits and the report, for a run folder or any results table."""
    if (run_dir is None) == (results_path is None):
        _fail_usage(
            ConfigError(
                "RUN_DIR/--results", None, "give a run folder or --results TABLE, not both, not neither"
            )
        )
    if run_dir is not None:
        _analyze_run(run_dir, out_dir)
        return
    parsed = []
    try:
        if not energy_col:
            raise ConfigError("--energy", None, "name the energy column to minimise")
        if not qualities:
            raise ConfigError("--quality", None, "give at least one COL:max or COL:min")
        for q in qualities:
            col, _, direction = q.rpartition(":")
            if not col or direction not in ("max", "min"):
                raise ConfigError("--quality", q, "must be COL:max or COL:min")
            parsed.append((col, direction))
        from t2a_ray.analysis import analyze_table, load_table

        try:
            df = load_table(results_path)
        except (ValueError, OSError) as e:
            raise ConfigError("--results", str(results_path), str(e)) from None
        groups = [g for g in group_cols.split(",") if g]
        for col in [energy_col, *(c for c, _ in parsed), *groups]:
            if col not in df.columns:
                raise ConfigError(
                    "--energy/--quality/--group",
                    col,
                    f"no such column in {results_path.name} (has: {', '.join(map(str, df.columns))})",
                )
    except ConfigError as e:
        _fail_usage(e)
    click.echo(analyze_table(df, energy_col, parsed, groups, out_dir or Path("t2a-report")).text())


def _analyze_run(run_dir: Path, out_dir: Path | None = None) -> None:
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    if not run.exists():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)"))
    from t2a_ray.analysis import analyze_run
    from t2a_ray.schema import merge_results

    table, _ = merge_results(run)
    if table is None:
        click.echo(f"error: {run.root} has no finished trials yet", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(analyze_run(run.root, out_dir=out_dir).text())


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
        for p in c.params:
            click.echo(f"    {p.name:<16} default {p.default!r:<8} {p.allowed():<40} {p.help}")
        for k, v in c.options.items():
            click.echo(f"    option {k}: {v}")
        if c.notes:
            click.echo(f"  notes: {c.notes}")
        click.echo("")


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


if __name__ == "__main__":  # pragma: no cover
    main()
