"""The analysis as a value: from a results table to an `Analysis`, with no file read or written.

Read top to bottom, `build` does:

1. keep the rows with status ``ok`` and a finite energy (energy and qualities must be numbers);
2. group them into configurations (`key_cols`) with the mean and t-based 95 % CI over repeats/prompts
   of the energy and of each quality (`latency.py`: of latency, RTF and J per audio second too); merge a
   run's quality table;
3. Pareto fronts of energy vs each quality, per group (CI-aware when there are repeats);
4. fits: energy vs steps, energy per audio second vs duration, energy per waveform vs batch size, phase
   shares, the spread over repeats, the GPUs;
5. carbon, where an intensity is known (the caller's, the sweep's, or the table's own per row);
5b. energy against time (`latency.py`: latency per waveform, RTF, the energy–latency front, the minimum
    energy under latency limits) and a warning for each comparison that mixes GPUs or hosts (`hosts.py`);
6. the plots that the table's columns allow, drawn to PNG bytes (a note for each one skipped).

`configuration_keys` decides what identifies a configuration in a table without `trial_id`.
`report.write_report` writes the value (and alone knows its paths); `render` turns it into text and HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

import t2a_ray.analysis.fits as _fits
import t2a_ray.analysis.hosts as _hosts
import t2a_ray.analysis.latency as _latency
import t2a_ray.analysis.plots as _plots
from t2a_ray.analysis.energy_basis import PER_WAVEFORM_COLUMNS, energy_basis, estimate_label
from t2a_ray.analysis.failures import Failures, find_failures
from t2a_ray.analysis.fronts import Front, compute_fronts, fronts_summary
from t2a_ray.analysis.gpu_effect import config_mean_ci, gpu_effect, gpu_warnings
from t2a_ray.analysis.inputs import INTENSITY_COL, numeric_column
from t2a_ray.analysis.meaning import UNTRAINED_BANNER, quality_is_trained
from t2a_ray.analysis.stats import mean_ci
from t2a_ray.analysis.tables import AnalysisError
from t2a_ray.analysis.values import count, sort_key
from t2a_ray.schema import MEASUREMENT_COLUMNS, PHASE_COLUMNS, QUALITY_SENSES
from t2a_ray.units import carbon_g

# A fractional numeric column with a value of its own in more than this share of the rows (and at least
# MIN_MEASURED_VALUES values) is a reading, not a setting: the inference never makes it a key.
MEASURED_SHARE = 0.5
MIN_MEASURED_VALUES = 10


@dataclass(frozen=True)
class Figure:
    """One plot of the report: its file name, caption and PNG."""

    name: str
    caption: str
    png: bytes = field(repr=False)


# Tables of `Analysis.fits` the report also writes whole, as `report/<key>.csv`: key → (the printout's
# label, what the report's link says the file holds).
TABLE_CSVS = {
    "gpu_effect": ("GPU effect", "each GPU's energy ratio, 95 % CI"),
    "runtime": ("Runtimes", "each runtime against eager"),
    "latency": ("Latency limits", "the minimum-energy configuration under each latency limit"),
}


@dataclass(frozen=True)
class AnalysisOptions:
    """What `build` analyses a table for: the energy and qualities, how rows group into configurations
    and fronts, the carbon intensity, and what the caller already knows (notes, a quality table, each
    GPU's reference workload)."""

    energy_col: str
    qualities: list[tuple[str, str]]
    group_cols: list[str]
    key_cols: list[str]  # what identifies a configuration
    display_cols: list[str]  # the configuration's columns shown
    source: str
    intensity: float | None = None
    quality_table: pd.DataFrame | None = None
    notes: Sequence[str] = ()
    reference: pd.DataFrame | None = None


@dataclass(frozen=True)
class Analysis:
    """What `analyze_table` / `analyze_run` found: numbers, labels and notes, built once by `build`.
    `render` turns it into text and HTML; `report` writes it to a folder (and owns the paths)."""

    source: str
    energy_col: str
    energy_label: str  # the energy's words with unit, "CPU estimate" where it is one
    estimate: str  # "" (measured), or how much of the energy is a CPU estimate
    qualities: list[tuple[str, str]]
    group_cols: list[str]
    label_cols: list[str]  # the columns that tell configurations apart, model first
    quality_ci: dict[str, str]  # quality column → its 95 % CI column
    configs: pd.DataFrame  # one row per configuration: means, 95 % CIs, n
    shown: list[str]  # the configuration columns shown and written to configs.csv
    fronts: list[Front]
    fronts_table: pd.DataFrame  # one row per front
    front_rows: pd.DataFrame  # the input rows written to fronts.csv
    fits: dict[str, pd.DataFrame]
    carbon: dict[str, object] | None  # None where no intensity is known
    figures: list[Figure]
    used: dict[str, object]  # rows read and used, statuses, configurations, repeats
    notes: list[str] = field(default_factory=list)
    quality_trained: bool = True  # False: some quality value came from untrained weights (`meaning`)
    energy_basis: str = ""  # GROSS or NET (`energy_basis`), "" where the table does not say
    failures: Failures | None = None  # the failed and infeasible configurations; None: no status column

    @property
    def banner(self) -> str:
        """`meaning.UNTRAINED_BANNER` where the quality of the fronts means nothing, else ""."""
        return UNTRAINED_BANNER if self.qualities and not self.quality_trained else ""

    def with_tables(self, fits: dict[str, pd.DataFrame], notes: Sequence[str] = ()) -> Analysis:
        """This analysis with more tables of fits and notes after its own (a run's runtimes, workers,
        search): a new value."""
        return replace(self, fits={**self.fits, **fits}, notes=[*self.notes, *notes])

    def __repr__(self) -> str:
        return f"Analysis({self.source!r}, configs={len(self.configs)}, fronts={len(self.fronts)})"


def parse_quality(spec: str | tuple[str, str]) -> tuple[str, str]:
    """``"clap:max"`` or ``("clap", "max")`` → ``("clap", "max")``; AnalysisError otherwise."""
    if isinstance(spec, str):
        col, sep, sense = spec.rpartition(":")
        if not sep or not col:
            raise AnalysisError(f"quality {spec!r}: write COLUMN:max or COLUMN:min")
    else:
        try:
            col, sense = spec
        except (TypeError, ValueError):
            raise AnalysisError(f"quality {spec!r}: give (column, 'max'|'min')") from None
    if sense not in QUALITY_SENSES:
        raise AnalysisError(f"quality {col!r}: sense {sense!r} must be max or min")
    return str(col), sense


# ---------------------------------------------------------------------------------------------------------
# What identifies a configuration


def configuration_keys(
    df: pd.DataFrame,
    taken: set[str],
    group_cols: Sequence[str],
    not_keys: set[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """(key columns, numeric columns left out as measurements) of a table without `trial_id`.

    Candidates are the columns not `taken` (the energy, qualities, repeat columns), not a measurement
    or bookkeeping column of results.parquet, and not in `not_keys` (a recognised format's readings).
    A fractional numeric candidate with a value of its own in most rows is a reading that varies within
    what would otherwise be one configuration (a per-prompt duration, another quality): it is left out,
    or every row would become a configuration of its own. Whole numbers (steps, batch sizes) stay keys.
    """
    keys, measured = [], []
    for c in df.columns:
        if c in taken or c in not_keys or c in MEASUREMENT_COLUMNS or c in group_cols:
            continue
        if _reading_like(df[c]):
            measured.append(c)
        else:
            keys.append(c)
    return list(dict.fromkeys(keys + list(group_cols))), measured


def _reading_like(s: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    values = s.dropna().astype("float64")
    distinct = values.nunique()
    fractional = bool((values % 1 != 0).any())
    return fractional and distinct >= MIN_MEASURED_VALUES and distinct > MEASURED_SHARE * len(s)


def constant_within(df: pd.DataFrame, key_cols: list[str], exclude: set[str]) -> list[str]:
    """Key columns, then the non-measurement columns that are constant within each configuration."""
    out = list(key_cols)
    g = df.groupby(key_cols, dropna=False, sort=False)
    for c in df.columns:
        if c in out or c in exclude or c in MEASUREMENT_COLUMNS:
            continue
        if g[c].nunique(dropna=False).max() <= 1:
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------------------
# The analysis


def build(table: pd.DataFrame, options: AnalysisOptions) -> Analysis:
    """The whole analysis of `table` as a value (see the module docstring); nothing is written."""
    o = options
    energy_col, qualities, group_cols, key_cols = o.energy_col, o.qualities, o.group_cols, o.key_cols
    display_cols, source, quality_table = o.display_cols, o.source, o.quality_table
    notes = list(o.notes)
    input_cols = list(table.columns)

    # 1. Rows used: status ok, finite energy.
    rows = table.copy()
    status_counts: dict[str, int] = {}
    if "status" in rows.columns:
        status_counts = {
            str(k): int(v) for k, v in rows["status"].astype("string").fillna("–").value_counts().items()
        }
        rows = rows[rows["status"].astype("string") == "ok"]
    rows[energy_col] = numeric_column(rows, energy_col, "energy column")
    no_energy = int(rows[energy_col].isna().sum())
    if no_energy:
        notes.append(f"{no_energy} row(s) with status ok but no {energy_col} were left out.")
        rows = rows[rows[energy_col].notna()]
    infinite = np.isinf(rows[energy_col])
    if infinite.any():
        notes.append(f"{int(infinite.sum())} row(s) with an infinite {energy_col} (±inf) were left out.")
        rows = rows[~infinite]
    if rows.empty:
        raise AnalysisError(f"{source}: no rows with status ok and a value of {energy_col}")
    for q, _ in qualities:
        if q in rows.columns:
            rows[q] = numeric_column(rows, q, "quality column")

    # 2. Configurations: mean and 95 % CI over repeats.
    rows = rows.copy()
    if key_cols:
        rows["_config"] = rows.groupby(key_cols, dropna=False, sort=True).ngroup()
    else:  # nothing but measurements: every row is a configuration of its own
        rows["_config"] = np.arange(len(rows))
    row_qualities = [q for q, _ in qualities if q in rows.columns]
    configs = _aggregate(rows, display_cols, energy_col, row_qualities)
    configs, time_notes = _latency.add_config_columns(rows, configs, energy_col)  # latency, RTF, J/audio s
    notes += time_notes
    quality_ci: dict[str, str] = {q: f"{q}_ci95" for q in row_qualities}
    if quality_table is not None:
        configs, qnotes = _merge_quality(configs, quality_table, [q for q, _ in qualities])
        notes += qnotes
        if "clap_ci95" in configs:
            configs["clap_mean_ci95"] = configs["clap_ci95"]
            quality_ci["clap_mean"] = "clap_mean_ci95"
    missing_groups = [g for g in group_cols if g not in configs.columns]
    if missing_groups:
        raise AnalysisError(f"{source}: group column(s) {', '.join(missing_groups)} not found")
    label_cols = _label_cols(configs, display_cols)
    configs = configs.loc[_natural_order(configs, label_cols)]
    repeats = int(configs["n"].max()) > 1
    single = int((configs["n"] == 1).sum())
    if len(configs) > 1 and single > len(configs) / 2:
        notes.append(
            f"Warning: {single} of {len(configs)} configurations have one row each (no CI): if rows of "
            "one configuration differ in a column, name the configuration with --config-cols."
        )

    # 3. Pareto fronts; no knee recommended from quality that means nothing.
    trained = quality_is_trained(rows, quality_table)
    fronts = compute_fronts(
        configs,
        energy_col,
        qualities,
        group_cols,
        energy_ci_col=f"{energy_col}_ci95" if repeats else None,
        quality_ci_cols=quality_ci if repeats or quality_table is not None else None,
        knee=trained,
    )
    if qualities and not fronts:
        notes.append("No configuration has both an energy and a quality value: no Pareto fronts.")
    for f in fronts:
        if f.on_cycle:
            notes.append(
                f"Front {f.label}: {count(len(f.on_cycle), 'configuration')} on it although dominated, by "
                "configurations on a cycle of dominance with them (see the dominance rule)."
            )

    # 4. Fits.
    axes = [c for c in display_cols if c in configs.columns and c not in ("trial_id", "run")]
    e_rows, e_configs, e_groups = _energy_view(rows, configs, energy_col, group_cols, label_cols)
    fits, fit_notes = _all_fits(
        e_rows, energy_col, [c for c in axes if c in e_groups or c not in group_cols], e_groups
    )
    notes += fit_notes

    # 5. Carbon.
    carbon = _carbon(rows, e_rows, configs, energy_col, o.intensity)
    if carbon is None:
        notes.append(
            "Carbon: no intensity known (give --carbon-intensity G_PER_KWH, or the sweep's carbon:)."
        )

    # The energy's words on every table and plot: "CPU estimate" where it is one.
    estimate = estimate_label(rows, energy_col)
    basis = energy_basis(rows, energy_col)
    energy_label = _plots.axis_label(energy_col) + "".join(f" — {w}" for w in (basis, estimate) if w)

    # Energy against time; warnings where a comparison mixes hosts (`reference`: each GPU's from logs/).
    timed = _latency.energy_against_time(
        e_configs, energy_col, e_groups, label_cols, repeats=repeats, energy_label=energy_label
    )
    fits |= timed.tables
    compared = _hosts.comparisons(configs, fronts, fits, label_cols, timed.compared)
    notes += timed.notes + _hosts.mixing_warnings(rows, compared, o.reference)

    analysis = Analysis(
        source=source,
        energy_col=energy_col,
        energy_label=energy_label,
        estimate=estimate,
        qualities=qualities,
        group_cols=group_cols,
        label_cols=label_cols,
        quality_ci=quality_ci,
        configs=configs,
        shown=_shown_columns(configs, label_cols, energy_col, qualities, quality_ci),
        fronts=fronts,
        fronts_table=fronts_summary(fronts, configs, [c for c in label_cols if c not in group_cols]),
        front_rows=_front_rows(rows, fronts, input_cols),
        fits=fits,
        carbon=carbon,
        figures=[],
        used={
            "rows": len(table),
            "used": len(rows),
            "status": status_counts,
            "configs": len(configs),
            "repeats": repeats,
        },
        notes=notes,
        quality_trained=trained,
        energy_basis=basis,
        failures=find_failures(table, key_cols, display_cols),
    )
    # 6. Plots, drawn from the value (a plot that cannot be drawn is a note).
    figures, draw_notes = _draw(analysis, e_configs, axes, e_groups)
    return replace(
        analysis, figures=figures + [Figure(*f) for f in timed.figures], notes=[*notes, *draw_notes]
    )


def _aggregate(
    rows: pd.DataFrame, display_cols: list[str], energy_col: str, qualities: list[str]
) -> pd.DataFrame:
    records, ids = [], []
    extra = [c for c in ("latency_s", "avg_power_w") if c in rows.columns and c != energy_col]
    for cfg, sub in rows.groupby("_config", sort=True):
        first = sub.iloc[0]
        rec: dict[str, object] = {c: first[c] for c in display_cols if c in sub.columns}
        mean, ci, n = config_mean_ci(sub, energy_col)  # each GPU weighted equally: `gpu_effect.py`
        rec |= {"n": n, energy_col: mean, f"{energy_col}_ci95": ci}
        for q in qualities:
            m, c, _ = mean_ci(sub[q])
            # One value repeated over the rows (a score per configuration) has no spread to show.
            rec |= {q: m, f"{q}_ci95": c if sub[q].nunique() > 1 else math.nan}
        for c in extra:
            rec[c] = float(pd.to_numeric(sub[c], errors="coerce").mean())
        records.append(rec)
        ids.append(cfg)
    configs = pd.DataFrame.from_records(records, index=pd.Index(ids, name="config"))
    configs["n"] = configs["n"].astype(int)
    return configs


def _merge_quality(
    configs: pd.DataFrame, quality: pd.DataFrame, metrics: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    q = quality.drop_duplicates("trial_id", keep="last").set_index("trial_id")
    q = q[[c for c in q.columns if c not in configs.columns or c in metrics]]
    merged = configs.drop(columns=[c for c in q.columns if c in configs.columns]).join(q, on="trial_id")
    merged.index = configs.index
    without = int(merged[metrics].isna().all(axis=1).sum()) if metrics else 0
    if metrics and without:
        notes.append(f"{without} configuration(s) have no quality score; they are left off the fronts.")
    for c in ("clap_model", "fad_model", "fad_reference"):
        if c in merged and merged[c].notna().any():
            notes.append(f"{c}: {', '.join(sorted(map(str, merged[c].dropna().unique())))}")
    if "scoring_energy_j" in merged and merged["scoring_energy_j"].notna().any():
        total = float(pd.to_numeric(merged["scoring_energy_j"], errors="coerce").sum())
        notes.append(f"Energy of quality scoring (metered apart, not in the fronts): {total:.4g} J.")
    return merged, notes


def _front_rows(rows: pd.DataFrame, fronts: list[Front], input_cols: list[str]) -> pd.DataFrame:
    """The input rows of each front's configurations, in front order (by energy), then those of the
    configurations indistinguishable from it (by energy), with `front`, `on_front` and
    `indistinguishable_in` (null on the front). Empty (no columns) without fronts."""
    parts = []
    for f in fronts:
        place = [(m, True, None) for m in f.members] + [(m, False, why) for m, why in f.indistinguishable]
        rank = {m: i for i, (m, _, _) in enumerate(place)}
        sub = rows[rows["_config"].isin(rank)].copy()
        sub = sub.assign(_rank=sub["_config"].map(rank)).sort_values("_rank", kind="stable")
        parts.append(
            sub[input_cols].assign(
                front=f.label,
                on_front=sub["_rank"].map(lambda r, p=place: p[r][1]).astype(bool),
                indistinguishable_in=sub["_rank"].map(lambda r, p=place: p[r][2]).astype("string"),
            )
        )
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def _energy_view(rows, configs, energy_col, group_cols, label_cols):
    """Rows and configurations for the energy fits and plots, without quality-only groups.

    A table in the paper's layout repeats each energy measurement once per dataset (the quality differs,
    the energy is the same window): fitting or drawing energy per dataset would duplicate every line. A
    group column whose values never change the energy is dropped here, keeping its first value's rows.
    """
    kept = list(group_cols)
    for g in group_cols:
        others = [c for c in label_cols if c != g and c in configs.columns]
        if not others or configs[g].nunique(dropna=False) < 2:
            continue
        by_others = configs.groupby(others, dropna=False)[energy_col]
        if by_others.nunique(dropna=False).max() <= 1 and by_others.size().max() > 1:
            first = sorted(configs[g].dropna().unique(), key=sort_key)[0]
            configs = configs[configs[g] == first]
            rows = rows[rows[g] == first] if g in rows.columns else rows
            kept.remove(g)
    return rows, configs, kept


def _all_fits(rows, energy_col, axes, group_cols) -> tuple[dict[str, pd.DataFrame], list[str]]:
    fits: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    by = ["model"] if "model" in rows.columns else []
    by = by + [g for g in group_cols if g in rows.columns and g not in by]

    def varies(col: str) -> bool:
        return col in rows.columns and rows[col].nunique() > 1

    if varies("steps"):
        fits["energy_vs_steps"] = _fits.energy_vs_steps(rows, energy_col, by, axes)
    else:
        notes.append("Energy vs steps: skipped — " + _why("steps", rows))
    if varies("batch_size"):
        fits["energy_vs_batch"] = _fits.energy_vs_batch(rows, energy_col, by, axes)
    else:
        notes.append("Energy per waveform vs batch size: skipped — " + _why("batch_size", rows))
    if varies("duration_s"):
        if "energy_per_audio_s_j" in rows.columns and rows["energy_per_audio_s_j"].notna().any():
            y = "energy_per_audio_s_j"
            d = rows
        else:
            y = f"{energy_col}_per_audio_s"
            d = rows.assign(**{y: rows[energy_col] / pd.to_numeric(rows["duration_s"], errors="coerce")})
        fits["energy_per_audio_s_vs_duration"] = _fits.energy_per_audio_s_vs_duration(d, y, by, axes)
    else:
        notes.append("Energy per audio second vs duration: skipped — " + _why("duration_s", rows))
    if any(c in rows.columns for c in PHASE_COLUMNS):
        total = "gpu_energy_j" if "gpu_energy_j" in rows.columns else None
        shares = _fits.phase_shares(rows, by or [], total)
        if not shares.empty:
            fits["phase_shares"] = shares
        else:
            notes.append("Phase breakdown: skipped — the phase energy columns are empty.")
    else:
        notes.append(
            "Phase breakdown: skipped — the table has no phase energy columns ("
            + ", ".join(PHASE_COLUMNS)
            + ")."
        )
    spread = _fits.repeat_spread(rows, energy_col, by)
    if not spread.empty:
        fits["repeat_spread"] = spread
    gpus = _fits.per_gpu(rows)
    if not gpus.empty:
        fits["gpus"] = gpus
    effect = gpu_effect(rows, energy_col)
    if not effect.empty:
        fits["gpu_effect"] = effect
        notes += [f"Warning: {w}." for w in gpu_warnings(effect)]
    return fits, notes


def _why(col: str, rows: pd.DataFrame) -> str:
    return f"the table has no `{col}` column." if col not in rows.columns else f"`{col}` has a single value."


def _carbon(rows, e_rows, configs, energy_col, intensity) -> dict[str, object] | None:
    """Carbon of the energy column in use, at `intensity`, else at each row's own (CodeCarbon's).

    Per configuration: `carbon_g`, of its mean energy. In total: of the energy behind the rows used —
    for a per-waveform column, the windows' device energy (the GPU's, else the CPU's) it was divided from.
    """
    if intensity is not None:
        at = f"{float(intensity):g} g CO2e/kWh"
    elif INTENSITY_COL in rows.columns and rows[INTENSITY_COL].notna().any():
        at = "each row's own intensity (emissions / energy_consumed)"
    else:
        return None

    def g_per_kwh(df: pd.DataFrame) -> pd.Series:
        if intensity is not None:
            return pd.Series(float(intensity), index=df.index)
        return pd.to_numeric(df[INTENSITY_COL], errors="coerce")

    configs["carbon_g"] = carbon_g(rows[energy_col], g_per_kwh(rows)).groupby(rows["_config"]).mean()
    device = [c for c in ("gpu_energy_j", "cpu_energy_j") if c in e_rows.columns]
    if energy_col in PER_WAVEFORM_COLUMNS and device:
        energy = e_rows[device].apply(pd.to_numeric, errors="coerce").bfill(axis=1).iloc[:, 0]
        what = f"the windows' {' else '.join(device)} behind {energy_col}"
    else:
        energy, what = e_rows[energy_col], f"the sum of {energy_col}"
    carbon = carbon_g(energy, g_per_kwh(e_rows))
    return {
        "intensity_g_per_kwh": float(intensity) if intensity is not None else None,
        "total_g": float(carbon.sum()),
        "method": f"{what} at {at}",
    }


def _draw(
    a: Analysis, e_configs: pd.DataFrame, axes: list[str], group_cols: list[str]
) -> tuple[list[Figure], list[str]]:
    """(the plots the data allow, a note for each that cannot be drawn: not an error).

    Energy plots draw `e_configs` (without quality-only groups), the fronts all of `a.configs`.
    """
    figures: list[Figure] = []
    notes: list[str] = []
    configs, fits, energy_col, energy_label = a.configs, a.fits, a.energy_col, a.energy_label
    ci_col = f"{energy_col}_ci95" if a.used["repeats"] else None
    by = ["model"] if "model" in configs.columns else []

    def series_for(axis: str) -> list[str]:
        return by + _fits.held_fixed(e_configs, axis, [c for c in axes if c not in by], by)

    def draw(title: str, name: str, caption: str, make: Callable[[], bytes]) -> None:
        try:
            figures.append(Figure(name, caption, make()))
        except ValueError as e:
            notes.append(f"{title}: skipped — {e}.")

    if "energy_vs_steps" in fits:
        draw(
            "Energy vs steps",
            "plot_energy_vs_steps.png",
            "Energy vs denoising steps per model: mean ± 95 % CI over repeats; dashed: the linear fit.",
            lambda: _plots.plot_energy_vs_axis(
                e_configs,
                "steps",
                energy_col,
                ci_col,
                series_for("steps"),
                energy_label,
                fits=fits["energy_vs_steps"],
                banner=a.banner,
            ),
        )
    if "energy_vs_batch" in fits:
        draw(
            "Energy vs batch size",
            "plot_energy_vs_batch.png",
            "Energy per waveform vs batch size: below the batch-1 value, batching pays.",
            lambda: _plots.plot_energy_vs_axis(
                e_configs,
                "batch_size",
                energy_col,
                ci_col,
                series_for("batch_size"),
                energy_label,
                title=f"{energy_label} vs batch size (mean ± 95 % CI)",
                banner=a.banner,
            ),
        )
    by_metric: dict[str, list[Front]] = {}
    for f in a.fronts:
        by_metric.setdefault(f.metric, []).append(f)
    for metric, fs in by_metric.items():
        has_band = any(f.indistinguishable for f in fs)
        band = (
            " open circles are indistinguishable from the front (beside it, not on it)," if has_band else ""
        )
        knee = " the star the knee;" if any(f.knee is not None for f in fs) else ""
        draw(
            f"Energy vs {metric}",
            f"plot_front_{_slug(metric)}.png",
            f"Energy vs {metric}: outlined points are on the front ({fs[0].dominance} dominance),{band} "
            f"a black staircase joins the Pareto front of the means;{knee} labels on front points give "
            "their other parameters.",
            lambda metric=metric, fs=fs: _plots.plot_fronts(
                configs,
                fs,
                energy_col,
                ci_col,
                a.quality_ci.get(metric),
                a.label_cols,
                energy_label,
                banner=a.banner,
            ),
        )
    if not a.fronts:
        notes.append("Energy–quality scatter: skipped — no quality values to draw fronts from.")
    if "phase_shares" in fits:
        shares = fits["phase_shares"]
        draw(
            "Phase breakdown",
            "plot_phases.png",
            "Phase shares of the measured phase energy, summed over all windows of each model.",
            lambda: _plots.plot_phases(
                shares, [c for c in ("model", *group_cols) if c in shares] or ["n"], banner=a.banner
            ),
        )
    return figures, notes


def _shown_columns(configs, label_cols, energy_col, qualities, quality_ci) -> list[str]:
    cols = list(label_cols) + ["n", energy_col, f"{energy_col}_ci95", *_latency.shown(configs)]
    for q, _ in qualities:
        cols += [q, quality_ci.get(q, f"{q}_ci95")]
    cols += ["carbon_g", "latency_s", "avg_power_w"]
    return [c for c in dict.fromkeys(cols) if c in configs.columns]


def _label_cols(configs: pd.DataFrame, display_cols: list[str]) -> list[str]:
    """The display columns that tell configurations apart (model first); all of them if none does."""
    varying = [
        c for c in display_cols if c in configs and c != "trial_id" and configs[c].nunique(dropna=False) > 1
    ]
    if "model" in configs and "model" not in varying:
        varying.insert(0, "model")
    elif "model" in varying:
        varying.remove("model")
        varying.insert(0, "model")
    return varying or [c for c in display_cols if c in configs]


def _natural_order(configs: pd.DataFrame, cols: list[str]) -> list:
    def key(idx):
        row = configs.loc[idx]
        return tuple(sort_key(row[c]) for c in cols) + (idx,)

    return sorted(configs.index, key=key)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
