"""The results table: one pyarrow schema, in one place, with units in the names.

One row per measured window. Values that cannot be had are null, never a silent zero. Grid axes get
one column each; their types come from the adapters' parameter specs, so the schema of a run is
`results_schema(axes)` for the parameters of its models.

Shards (`trials/<unit_id>.parquet`) are plain Parquet: the store never holds pickles. Every file
written here keeps, in its footer, its row count and a SHA-256 of its content, and a shard its run's id:
a resume checks each shard from its footer alone (a file cut short has no valid footer), the merge
checks the content against the checksum as it reads it (a shard that fails is moved aside and its unit
runs again in the same resume), and a merged `results.parquet` records which shards it holds, so
merging a finished run again reads that one file instead of every shard. Only the run's own shards are
merged (`ShardOwner`): anything else in `trials/` is moved aside with a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from t2a_ray.runfolder import QUALITY_SUFFIX, SHARD_SUFFIX, RunFolder, atomic_write

log = logging.getLogger(__name__)


# The phases a generation is split into, in the order they happen; each has an energy column. An adapter
# marks the ones it has.
PHASES = ("text_encoder", "denoise", "decode", "vocoder")
PHASE_COLUMNS = tuple(f"{p}_energy_j" for p in PHASES)

# How the meter may obtain GPU energy (the sweep's `metering.gpu`): the energy counter (falling back to
# power samples where it fails), or power samples only, for a card whose counter is absent or frozen.
GPU_ENERGY_SOURCES = ("counter", "power-integral")

#: The figures a metered window fills, in order (each a column below, and a field of the meter's
#: `WindowResult`); then one energy column per phase.
WINDOW_FIGURES = (
    "gpu_energy_j",
    "gpu_energy_net_j",
    "idle_power_w",
    "cpu_energy_j",
    "dram_energy_j",
    "energy_method",
    "window_s",
    "generations_in_window",
    "avg_power_w",
    "temperature_start_c",
    "temperature_end_c",
    "throttle_reasons",
    "throttled",
)
#: The result columns a window fills, in order (the README's results columns).
RESULT_COLUMNS = (*WINDOW_FIGURES, *PHASE_COLUMNS)


def trial_status(row_statuses: Iterable[str]) -> str:
    """A trial's outcome from its rows': ok only if every window was; infeasible beats failed."""
    seen = set(row_statuses)
    return "ok" if seen == {"ok"} else ("infeasible" if "infeasible" in seen else "failed")


# What a column is to the analysis. `config`: part of what identifies a configuration (the grid axes
# too); `repeat`: tells repeats of one configuration apart; `record`: where and how a row was made;
# `measurement`: a measured value. Only `config` columns may ever become a configuration's key.
CONFIG, REPEAT, RECORD, MEASUREMENT = "config", "repeat", "record", "measurement"

# (name, type, role, description with unit). Grid-axis columns (role `config`) are inserted after `dtype`.
IDENTITY = [
    ("run", pa.string(), RECORD, "run name"),
    ("trial_id", pa.string(), RECORD, "stable hash of the configuration"),
    ("repeat", pa.int32(), REPEAT, "repeat index, 0-based"),
    ("prompt_id", pa.string(), REPEAT, "prompt id"),
    ("model", pa.string(), CONFIG, "adapter id"),
    ("model_revision", pa.string(), CONFIG, "what was loaded: hub revision, folder, or weight mode"),
    ("weights", pa.string(), CONFIG, "pretrained | random | tiny"),
    ("dtype", pa.string(), CONFIG, "float16 | bfloat16 | float32"),
]
AFTER_AXES = [
    ("seed", pa.int64(), REPEAT, "generator seed of the window's first generation"),
    ("prompt_truncated", pa.bool_(), MEASUREMENT, "the text encoder cut the prompt short"),
    ("node", pa.string(), RECORD, "host name"),
    ("worker_id", pa.int32(), RECORD, "the worker (one per GPU) that ran the window; its statistics: logs/"),
    ("host_id", pa.string(), RECORD, "hash of the worker's host and software; its provenance: logs/"),
    ("gpu_index", pa.int32(), RECORD, "physical GPU index on the node (null on CPU)"),
    ("gpu_name", pa.string(), RECORD, "GPU model"),
    ("gpu_uuid", pa.string(), RECORD, "GPU UUID"),
    ("slurm_job_id", pa.string(), RECORD, "Slurm job the worker ran in (SLURM_JOB_ID; null outside Slurm)"),
    (
        "slurm_array_task_id",
        pa.int32(),
        RECORD,
        "its array task (SLURM_ARRAY_TASK_ID; null outside an array)",
    ),
    ("gpu_energy_j", pa.float64(), MEASUREMENT, "GPU energy of the window, J"),
    ("gpu_energy_net_j", pa.float64(), MEASUREMENT, "GPU energy minus idle power × window, J"),
    ("idle_power_w", pa.float64(), MEASUREMENT, "the GPU's idle power measured before the sweep, W"),
    ("cpu_energy_j", pa.float64(), MEASUREMENT, "CPU package energy of the window, J"),
    ("dram_energy_j", pa.float64(), MEASUREMENT, "DRAM energy of the window, J"),
    ("energy_method", pa.string(), RECORD, "how each energy figure was obtained"),
    ("window_s", pa.float64(), MEASUREMENT, "metered window length, s"),
    ("generations_in_window", pa.int32(), MEASUREMENT, "generations repeated inside the window"),
    ("latency_s", pa.float64(), MEASUREMENT, "one generation (one call), s"),
    (
        "energy_per_waveform_j",
        pa.float64(),
        MEASUREMENT,
        "energy of the device the model ran on, per waveform, J",
    ),
    ("energy_per_audio_s_j", pa.float64(), MEASUREMENT, "energy per second of generated audio, J/s"),
    ("avg_power_w", pa.float64(), MEASUREMENT, "mean power over the window, W"),
    (
        "gpu_busy_fraction",
        pa.float64(),
        MEASUREMENT,
        "share of the window in which the GPU ran a kernel (NVML), 0–1",
    ),
    ("peak_memory_bytes", pa.int64(), MEASUREMENT, "peak GPU memory during the window, bytes"),
    ("temperature_start_c", pa.float64(), MEASUREMENT, "GPU temperature at window start, °C"),
    ("temperature_end_c", pa.float64(), MEASUREMENT, "GPU temperature at window end, °C"),
    (
        "throttle_reasons",
        pa.string(),
        MEASUREMENT,
        "GPU clocks-event reasons seen during the window, comma-separated",
    ),
    ("throttled", pa.bool_(), MEASUREMENT, "a power, thermal or hardware slowdown was among them"),
    ("carbon_g", pa.float64(), MEASUREMENT, "energy × carbon intensity, g CO2e"),
    *(
        (column, pa.float64(), MEASUREMENT, f"energy of the {phase} phase, J")
        for phase, column in zip(PHASES, PHASE_COLUMNS, strict=True)
    ),
    (
        "output_rel_l2_error",
        pa.float64(),
        MEASUREMENT,
        "‖waveform − eager waveform‖ / ‖eager waveform‖, same seed",
    ),
    (
        "output_snr_db",
        pa.float64(),
        MEASUREMENT,
        "eager waveform's power over the difference's, dB (inf: identical)",
    ),
    ("status", pa.string(), RECORD, "ok | infeasible | failed"),
    ("error", pa.string(), RECORD, "the error, when status is not ok"),
]
#: The role of every fixed column (grid axes, whatever their names, are `config`).
COLUMN_ROLES = {name: role for name, _, role, _ in IDENTITY + AFTER_AXES}
#: Columns that tell repeats of one configuration apart.
REPEAT_COLUMNS = tuple(n for n, role in COLUMN_ROLES.items() if role == REPEAT)
#: Measurements and bookkeeping: never part of what identifies a configuration.
MEASUREMENT_COLUMNS = frozenset(n for n, role in COLUMN_ROLES.items() if role != CONFIG)
_ARROW_OF = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


# quality.parquet: one row per configuration (trial_id), scored after the energy windows. Each metric
# names the protocol that produced it; a metric that failed is null with its error beside it.
QUALITY = [
    ("trial_id", pa.string(), "the configuration, as in results.parquet"),
    ("model", pa.string(), "adapter id"),
    ("n_generations", pa.int64(), "waveforms scored for this configuration"),
    (
        "trained_weights",
        pa.bool_(),
        "the audio and its scorer both came from trained weights; false (tiny, random): the scores are noise",
    ),
    ("clap_mean", pa.float64(), "mean CLAP score (cosine, −1…1) over the generations"),
    ("clap_std", pa.float64(), "sample standard deviation of the per-generation CLAP scores"),
    ("clap_ci95", pa.float64(), "t-based 95 % CI half-width of clap_mean"),
    ("clap_model", pa.string(), "checkpoint or weight mode that scored CLAP"),
    ("clap_protocol", pa.string(), "how CLAP was computed: stable-audio-metrics"),
    ("clap_error", pa.string(), "why the CLAP score is null"),
    ("fad", pa.float64(), "FAD of all generated embedding rows against the reference set"),
    ("fad_inf", pa.float64(), "FAD∞: intercept of FAD vs 1/N (null below its minimum of rows)"),
    ("fad_inf_slope", pa.float64(), "slope of that fit, FAD units × N"),
    ("fad_inf_r2", pa.float64(), "R² of that fit"),
    ("fad_inf_sizes", pa.list_(pa.int64()), "the subset sizes N of that fit"),
    ("fad_inf_note", pa.string(), "why FAD∞ is null"),
    ("fad_n_generated", pa.int64(), "embedding rows on the generated side"),
    ("fad_n_reference", pa.int64(), "embedding rows on the reference side"),
    ("fad_reference", pa.string(), "the reference folder"),
    ("fad_model", pa.string(), "embedding model of FAD"),
    ("fad_embedding", pa.string(), "how FAD rows were made: fadtk"),
    ("fad_error", pa.string(), "why FAD and FAD∞ are null"),
    ("scoring_s", pa.float64(), "wall time of scoring this configuration, s"),
    ("scoring_energy_j", pa.float64(), "energy of scoring, metered apart, J; null if unmetered"),
    ("scoring_energy_method", pa.string(), "how scoring_energy_j was obtained"),
    ("scoring_error", pa.string(), "why the scorer gave no row at all"),
]

# The metrics of quality.parquet that fronts and the search rank configurations by, each with the
# direction that is better: "max" (higher) or "min" (lower). Every room reads directions here.
QUALITY_SENSES = ("max", "min")
QUALITY_METRICS: Mapping[str, str] = {"clap_mean": "max", "fad": "min", "fad_inf": "min"}


def quality_schema() -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=True, metadata={"description": d}) for n, t, d in QUALITY])


def conform_quality(table: pa.Table) -> pa.Table:
    """A quality table with exactly the schema's columns in its order: absent ones null, each cast to its
    type (a shard written before a column existed still merges). Other columns are an error."""
    schema = quality_schema()
    extra = set(table.column_names) - set(schema.names)
    if extra:
        raise ValueError(f"quality table carries columns the schema does not have: {sorted(extra)}")
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def results_schema(axes: Mapping[str, type]) -> pa.Schema:
    """The schema for a run whose grid axes (every parameter of its models) have these types."""
    axis_fields = [(name, _ARROW_OF[kind], CONFIG, "grid axis") for name, kind in sorted(axes.items())]
    return pa.schema(
        [
            pa.field(n, t, nullable=True, metadata={"description": d, "role": role})
            for n, t, role, d in IDENTITY + axis_fields + AFTER_AXES
        ]
    )


# The setup table (logs/setup/<trial_id>.parquet): one row per setup generation — the first call of a
# runtime other than eager at a trial's shapes, per prompt — metered apart from the windows.
SETUP_AXES = {
    "compile": str,
    "attention": str,
    "precision": str,
    "cache": str,
    "steps": int,
    "batch_size": int,
    "duration_s": float,
}
SETUP_SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("model", pa.string()),
        ("weights", pa.string()),
        ("dtype", pa.string()),
        *((name, _ARROW_OF[kind]) for name, kind in SETUP_AXES.items()),
        ("prompt_id", pa.string()),
        ("node", pa.string()),
        ("gpu_index", pa.int32()),
        ("gpu_name", pa.string()),
        ("gpu_uuid", pa.string()),
        ("graphs_compiled", pa.int64()),  # graphs torch.compile compiled during it (0: shapes were known)
        ("denoisers_quantised", pa.int64()),  # denoiser copies quantised during it (0: one was kept)
        ("setup_s", pa.float64()),  # wall time of the generation, compile and capture included, s
        ("setup_energy_j", pa.float64()),  # energy of the device the model ran on, J
        ("energy_method", pa.string()),
    ]
)


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) to a table of exactly `schema`; a key the schema lacks is a bug, not data."""
    extra = {k for r in rows for k in r} - set(schema.names)
    if extra:
        raise ValueError(f"result rows carry columns the schema does not have: {sorted(extra)}")
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


_CONTENT_KEY = b"t2a_ray_content"  # footer key: {"rows": n, "sha256": hex} of the table's content


class ShardError(ValueError):
    """A shard's footer or content does not match what was written."""


def content_checksum(table: pa.Table) -> str:
    """SHA-256 of a table's columns and values (its Arrow IPC stream, schema metadata left out)."""
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def write_table(table: pa.Table, path: Path, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a Parquet file atomically; `metadata` (JSON-able) goes into the file's key-value footer,
    beside the row count and content checksum that `check_footer` and `read_checked` verify."""
    extra = {_CONTENT_KEY: json.dumps({"rows": table.num_rows, "sha256": content_checksum(table)}).encode()}
    if metadata:
        extra[b"t2a_ray"] = json.dumps(metadata).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    atomic_write(Path(path), lambda f: pq.write_table(table, f))


class NotOurs(ShardError):
    """A file in `trials/` that is not one of this run's shards (moved aside, never merged)."""


class ShardOwner:
    """What makes a file in `trials/` a shard of this run: a regular file (not a link), named for one
    of the run's units (`names`: unit ids), whose footer carries the run's id. A shard written before
    shards carried a run id (none in its footer) is taken on its name alone; so is every shard of a
    folder without a run id (`run_id` None: an older run not yet resumed)."""

    def __init__(self, run_id: str | None, names: frozenset[str]):
        self.run_id, self.names = run_id, names

    def check_file(self, path: Path) -> None:
        """Raises `NotOurs` unless `path` is a regular file named for a unit of this run."""
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise NotOurs(f"{path.name}: {kind}")
        if path.name[: -len(SHARD_SUFFIX)] not in self.names:
            raise NotOurs(f"{path.name}: not named for a unit of this run's trials")

    def check_run_id(self, path: Path, footer: Mapping[bytes, bytes] | None) -> None:
        written_by = json.loads((footer or {}).get(b"t2a_ray", b"{}")).get("run_id")
        if written_by is not None and self.run_id is not None and written_by != self.run_id:
            raise NotOurs(f"{path.name}: written by run {written_by}, not this run ({self.run_id})")


def check_footer(path: Path, owner: ShardOwner | None = None) -> str | None:
    """Read a Parquet file's footer only: its content checksum (None for a file written without one).
    Raises `ShardError` (or Arrow's error) when the footer is missing, unreadable or miscounts rows,
    and `NotOurs` where `owner` says the file is not one of its run's shards."""
    if owner is not None:
        owner.check_file(path)
    meta = pq.read_metadata(path)
    if owner is not None:
        owner.check_run_id(path, meta.metadata)
    content = _content(meta.metadata)
    if content is None:
        return None
    if content["rows"] != meta.num_rows:
        raise ShardError(f"{path.name}: footer says {content['rows']} rows, the file has {meta.num_rows}")
    return content["sha256"]


def _content(metadata: Mapping[bytes, bytes] | None) -> dict[str, Any] | None:
    """The footer's content record ({rows, sha256}), None for a file written without one."""
    return json.loads((metadata or {}).get(_CONTENT_KEY, b"null"))


def read_checked(path: Path) -> pa.Table:
    """Read a Parquet file whole and check its content against the checksum in its footer."""
    table = pq.read_table(path)
    content = _content(table.schema.metadata)
    if content is not None and content_checksum(table) != content["sha256"]:
        raise ShardError(f"{path.name}: content does not match its checksum")
    return table


def check_shards(
    run: RunFolder,
    known: Mapping[str, str | None] | None = None,
    paths: list[Path] | None = None,
    owner: ShardOwner | None = None,
) -> tuple[dict[str, str | None], list[Path]]:
    """Every finished shard's checksum, from footers alone (`known`: shards already checked, by id);
    a shard whose footer fails is moved aside (its unit runs again), and so is, into `foreign_dir`, a
    file `owner` does not own. What a resume does before it decides what is left to run."""
    sums, bad = {}, []
    known = known or {}
    for path in run.shard_paths() if paths is None else paths:
        shard_id = path.name[: -len(SHARD_SUFFIX)]
        if shard_id in known:
            sums[shard_id] = known[shard_id]
            continue
        try:
            sums[shard_id] = check_footer(path, owner)
        except NotOurs as e:
            log.warning("%s is not a shard of this run (%s); moved aside, never merged", path, e)
            bad.append(run.quarantine(path, str(e), run.foreign_dir))
        except (OSError, pa.ArrowException, ShardError, ValueError, KeyError) as e:
            log.warning("shard %s fails its footer check (%s); moved aside, its unit will run again", path, e)
            bad.append(run.quarantine(path, f"footer check: {e}"))
    return sums, bad


def read_metadata(path: Path) -> dict[str, Any]:
    return shard_metadata(pq.read_schema(path))


def shard_metadata(schema: pa.Schema) -> dict[str, Any]:
    """What `write_table(metadata=...)` put in a file's footer."""
    return json.loads((schema.metadata or {}).get(b"t2a_ray", b"{}"))


def read_shards(
    run: RunFolder, quarantine: bool = True, paths: list[Path] | None = None
) -> tuple[pa.Table | None, list[Path]]:
    """Read every finished trial's shard (or `paths`, as listed already). A shard that cannot be read
    is moved aside (with a warning) and reported, so that its trial counts as not finished and runs
    again — never merged silently."""
    tables, bad = [], []
    for path in run.shard_paths() if paths is None else paths:
        try:
            tables.append(read_checked(path))
        except (OSError, pa.ArrowException, ShardError) as e:
            log.warning("shard %s cannot be read (%s); moved aside, its unit will run again", path.name, e)
            bad.append(run.quarantine(path, f"content check: {e}") if quarantine else path)
    if not tables:
        return None, bad
    return pa.concat_tables(tables, promote_options="default"), bad


def _shards_digest(sums: Mapping[str, str | None]) -> str:
    """What results.parquet was merged from: the shards' footer checksums, by id, hashed."""
    return hashlib.sha256(json.dumps(sorted(sums.items())).encode()).hexdigest()


def merge_results(
    run: RunFolder, known: Mapping[str, str | None] | None = None, owner: ShardOwner | None = None
) -> tuple[pa.Table | None, list[Path]]:
    """Merge the shards into results.parquet (sorted for a stable file) and quality shards into
    quality.parquet. Returns the merged table and the shards moved aside.

    Where results.parquet already holds exactly the shards there are now (by their footers'
    checksums), it is read back instead: merging a finished run again costs one file, not every shard.
    `known`: the shards' checksums as `check_shards` found them earlier (their footers are not read
    again); `owner`: what makes a file one of the run's shards (`check_shards`).
    """
    paths = run.shard_paths()
    sums, bad = check_shards(run, known, paths, owner)
    digest = _shards_digest(sums)
    if sums and run.results.is_file():
        try:
            if read_metadata(run.results).get("shards_sha256") == digest:
                return read_checked(run.results), bad
        except (OSError, pa.ArrowException, ShardError, ValueError):
            pass  # a damaged merge is merged again from the shards
    table, bad_now = read_shards(run, paths=[p for p in paths if p.exists()])
    bad += bad_now
    if table is None:
        return None, bad
    table = table.sort_by(
        [
            ("model", "ascending"),
            ("trial_id", "ascending"),
            ("repeat", "ascending"),
            ("prompt_id", "ascending"),
        ]
    )
    if bad_now:  # the checksum list read from the footers included shards now moved aside
        digest = _shards_digest({k: v for k, v in sums.items() if run.shard(k).exists()})
    write_table(table, run.results, metadata={"shards_sha256": digest})
    finished = run.finished_trial_ids()  # listed once: the merge is linear in the number of trials
    quality = [
        p
        for p in sorted(run.trials_dir.glob(f"*{QUALITY_SUFFIX}"))
        if p.name[: -len(QUALITY_SUFFIX)] in finished
    ]
    if quality:
        write_table(pa.concat_tables([conform_quality(pq.read_table(p)) for p in quality]), run.quality)
    return table, bad
