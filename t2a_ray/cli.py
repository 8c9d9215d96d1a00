"""The command line: launch | resume | status | analyze | models | doctor.

Exit codes: 0 ok, 2 bad usage or config (one line, before any model loads, nothing written), 1 failure.
Heavy modules (Ray, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from importlib import resources
from pathlib import Path

import click

from t2a_ray import __version__
from t2a_ray.errors import ConfigError, T2ARayError
from t2a_ray.units import JOULES_PER

EXIT_FAILURE, EXIT_USAGE = 1, 2
# Tests on CPU-only machines run multi-GPU sweeps on Ray's logical GPUs (nothing is on them).
LOGICAL_GPUS_ENV = "T2A_RAY_LOGICAL_GPUS"


def _fail_usage(error: ConfigError | ValueError) -> None:
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


def _visible_gpus() -> int:
    """GPUs this process may use: those NVML sees (0 without a driver), no more than CUDA_VISIBLE_DEVICES
    names where it is set (Ray and CUDA read it the same way)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 — no driver, no library: no GPUs
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # CUDA stops at the first entry it cannot use: "" and "-1" hide every GPU
        named = itertools.takewhile(
            lambda e: e and not e.startswith("-"), (e.strip() for e in visible.split(","))
        )
        count = min(count, len(list(named)))
    return count


def _check_gpus(gpus: int | None, address: str | None) -> int | None:
    """Resolve --gpus (default: every visible GPU, or the CPU when there is none)."""
    if gpus is not None and gpus < 0:
        raise ConfigError("--gpus", gpus, "must be 0 (CPU) or a positive number of GPUs")
    if address:
        return gpus  # None: every GPU of the cluster, counted once joined
    if os.environ.get(LOGICAL_GPUS_ENV) == "1":
        return gpus or 0
    visible = _visible_gpus()
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
        sweep = load_sweep(demo_config() if demo else config_path, name=name, overrides=overrides)
        gpus = 0 if demo and gpus is None else _check_gpus(gpus, address)
        if sweep.dtype == "auto":
            sweep = sweep.with_dtype("float32" if gpus == 0 else "float16")
        run = RunFolder(out_dir / sweep.name)
        if run.exists():
            raise ConfigError(
                "--name",
                sweep.name,
                f"a run already exists at {run.root}; resume it with `t2a-ray resume {run.root}` or choose another --name",
            )
        n_trials = len(sweep.trials())
    except ConfigError as e:
        _fail_usage(e)
    click.echo(
        f"sweep {sweep.name}: {n_trials} trials × {sweep.repeats} repeats × {len(sweep.prompts)} prompts → {run.root}",
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


def _run(run, gpus: int | None, address: str | None, progress: bool, analyze: bool) -> None:
    from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep

    try:
        outcome = run_sweep(run, LaunchOptions(gpus=gpus, address=address, progress=progress))
    except ConfigError as e:
        _fail_usage(e)
    except T2ARayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILURE)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(outcome.statuses.items())) or "none"
    click.echo(
        f"{outcome.total} trials: ran {outcome.ran}, skipped {outcome.skipped} already done; outcomes: {statuses} ({outcome.wall_s:.1f} s)",
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
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--results",
    "results",
    multiple=True,
    help="Results tables (.csv or .parquet; globs; repeatable), concatenated, instead of a run folder. "
    "CodeCarbon's emissions.csv is recognised by its header (energies in kWh).",
)
@click.option("--energy", "energy_col", default=None, help="Energy column to minimise (with --results).")
@click.option(
    "--energy-unit",
    type=click.Choice(list(JOULES_PER)),
    default=None,
    help="Unit of --energy; default: its _j/_wh/_kwh suffix, else the recognised format's. Converted to J.",
)
@click.option(
    "--quality", "qualities", multiple=True, help="COL:max or COL:min, repeatable (with --results)."
)
@click.option(
    "--group", "group_cols", default="", help="Comma-separated columns: one front per group (with --results)."
)
@click.option(
    "--config-cols",
    default=None,
    help="Comma-separated columns that identify a configuration (default: inferred, and said).",
)
@click.option(
    "--extract",
    "extracts",
    multiple=True,
    help="COL=REGEX with named groups: parse configuration columns out of a text column (repeatable).",
)
@click.option(
    "--join", "joins", multiple=True, help="Another table whose columns to bring in, e.g. quality scores."
)
@click.option("--on", "join_on", multiple=True, help="Comma-separated key columns of each --join.")
@click.option(
    "--carbon-intensity",
    type=click.FloatRange(0.0, 10_000.0),
    default=None,
    help="g CO2e per kWh for the carbon figures (default: the sweep's, or CodeCarbon's own per row).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Report folder (default: RUN_DIR/report, or ./t2a-report for --results).",
)
def analyze(
    run_dir: Path | None,
    results: tuple[str, ...],
    energy_col: str | None,
    energy_unit: str | None,
    qualities: tuple[str, ...],
    group_cols: str,
    config_cols: str | None,
    extracts: tuple[str, ...],
    joins: tuple[str, ...],
    join_on: tuple[str, ...],
    carbon_intensity: float | None,
    out_dir: Path | None,
) -> None:
    """Pareto fronts, fits and the report, for a run folder or any results tables."""
    if run_dir is not None and run_dir.is_file():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), f"is a file; for a table use --results {run_dir}"))
    if (run_dir is None) == (not results):
        _fail_usage(
            ConfigError(
                "RUN_DIR/--results", None, "give a run folder or --results TABLE, not both, not neither"
            )
        )
    if run_dir is not None:
        _analyze_run(run_dir, out_dir, carbon_intensity)
        return
    from t2a_ray.analysis import AnalysisError, analyze_table
    from t2a_ray.analysis import inputs as _inputs

    try:
        if not energy_col:
            raise ConfigError("--energy", None, "name the energy column to minimise")
        if len(join_on) not in (len(joins), 1) or (join_on and not joins):
            raise ConfigError("--on", list(join_on), "give one --on for every --join (or one for all)")
        for q in qualities:
            col, _, direction = q.rpartition(":")
            if not col or direction not in ("max", "min"):
                raise ConfigError("--quality", q, "must be COL:max or COL:min")
        parsed = [tuple(q.rsplit(":", 1)) for q in qualities]
        table = _inputs.read_tables(results)
        for spec in extracts:
            _inputs.extract(table, *_inputs.parse_extract(spec))
        for i, path in enumerate(joins):
            _inputs.join(table, path, _columns(join_on[i] if len(join_on) > 1 else join_on[0]))
        groups, keys = _columns(group_cols), None if config_cols is None else _columns(config_cols)
        df = table.frame
        for col in [energy_col, *(c for c, _ in parsed), *groups, *(keys or [])]:
            if col not in df.columns:
                raise ConfigError(
                    "--energy/--quality/--group/--config-cols",
                    col,
                    f"no such column in the results (has: {', '.join(map(str, df.columns))})",
                )
        df, energy_j, notes = _inputs.energy_in_joules(df, energy_col, energy_unit, table.units)
        analysis = analyze_table(
            df,
            energy_j,
            parsed,
            groups,
            out_dir or Path("t2a-report"),
            config_cols=keys,
            not_keys=table.not_keys | {energy_col},
            intensity_g_per_kwh=carbon_intensity,
            title=", ".join(str(p.name) for p in table.sources[:3])
            + (f" and {len(table.sources) - 3} more" if len(table.sources) > 3 else ""),
            notes=table.notes + notes,
        )
    except ConfigError as e:
        _fail_usage(e)
    except AnalysisError as e:
        _fail_usage(e)
    click.echo(analysis.text())


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _analyze_run(run_dir: Path, out_dir: Path | None = None, intensity: float | None = None) -> None:
    from t2a_ray.runfolder import RunFolder

    run = RunFolder(run_dir)
    if not run.exists():
        _fail_usage(ConfigError("RUN_DIR", str(run_dir), "is not a run folder (no sweep.yaml in it)"))
    from t2a_ray.analysis import AnalysisError, analyze_run
    from t2a_ray.schema import merge_results

    table, _ = merge_results(run)
    if table is None:
        click.echo(f"error: {run.root} has no finished trials yet", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        click.echo(analyze_run(run.root, out_dir=out_dir, intensity_g_per_kwh=intensity).text())
    except AnalysisError as e:
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


@main.command()
@click.option("--gpus", type=int, default=None, help="GPUs to check. Default: every visible GPU.")
@click.option("--address", default=None, help="Check every GPU of a Ray cluster: 'auto' or HOST:PORT.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("t2a-doctor"),
    show_default=True,
    help="Folder for the record: doctor.md and doctor.json.",
)
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
    from t2a_ray.orchestrator.doctor import run_doctor

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
