"""Energy against time: latency per waveform, real-time factor, the energy–latency front and the
minimum energy under a latency limit.

Per window (one row of the results), where the table has the columns each figure needs:

* ``latency_per_waveform_s`` = ``window_s`` / (``generations_in_window`` × ``batch_size``): the wall
  time the window spent per waveform it made (a batch of 4 in 2 s is 0.5 s per waveform);
* ``rtf`` = ``duration_s`` / ``latency_per_waveform_s``: seconds of audio made per wall second, the
  real-time factor audio users think in (above 1: faster than real time);
* ``energy_per_audio_s_j``: the table's own (t2a-ray's results: the window's device energy over the
  audio it made), so J per audio second stands beside J per waveform.

Each configuration gets the mean of each over its windows with the t-based 95 % CI, each GPU weighted
equally, as its energy does (`gpu_effect.config_mean_ci`).

Both the energy and the latency are minimised, so the energy–latency front is a Pareto front in which
latency plays the part of a quality to minimise: `fronts.compute_fronts` draws it, CI-aware where there
are repeats. The minimum-energy configuration under a latency limit is the answer to "what is the
cheapest way to make this audio at least this fast" (ML.ENERGY's matched-latency comparison). Limits
are stated per 10 s clip (`LIMITS_S` per `CLIP_S`) and scaled to each configuration's clip length, so a
5 s clip must come in half the time: limit × ``duration_s`` / 10.

**The rule.** A configuration meets a limit when the upper end of its latency's 95 % CI is at or below
it (its mean where it has one window): a configuration whose interval straddles the limit may well miss
it in use, so it is not offered as meeting it. Among those that meet it, the lowest mean energy wins;
a tie goes to the lower mean latency, then to the configuration listed first (the configurations
table's order). `others_within_ci95` counts the other configurations that meet the limit and whose
energy the repeats cannot tell from the winner's (their 95 % CIs overlap).

Where clip lengths differ, the front and the table are drawn per ``duration_s``: J per waveform of a
5 s clip is not comparable with that of a 10 s clip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import t2a_ray.analysis.plots as _plots
from t2a_ray.analysis.fronts import Front, compute_fronts, describe
from t2a_ray.analysis.gpu_effect import GPU_COL, grouped_mean_ci
from t2a_ray.analysis.values import fmt

LATENCY_COL = "latency_per_waveform_s"
RTF_COL = "rtf"
PER_AUDIO_COL = "energy_per_audio_s_j"
# What each per-window figure is computed from (PER_AUDIO_COL: the table's own column).
NEEDS = {
    LATENCY_COL: ("window_s", "generations_in_window", "batch_size"),
    RTF_COL: ("window_s", "generations_in_window", "batch_size", "duration_s"),
    PER_AUDIO_COL: (PER_AUDIO_COL,),
}
LIMITS_S = (1.0, 2.0, 5.0, 10.0)  # latency limits per clip of CLIP_S seconds
CLIP_S = 10.0
DURATION_COL = "duration_s"
LIMIT_COL = "limit_s_per_10s_clip"
ALL = "all models"  # the latency table's scope across models

# Tables this module adds to `Analysis.fits`: key → (title, the printout's detail), as render shows them.
TITLES = {
    "energy_latency_front": (
        "Energy–latency front",
        " (both minimised; CI-aware where there are repeats; * = knee)",
    ),
    "latency": ("Minimum energy under a latency limit", " (the rule: see the notes)"),
}
# The latency table's rule in words, a note of every report that has the table.
RULE = (
    f"Latency limits are per {CLIP_S:g} s clip, scaled to each configuration's duration_s (limit × "
    f"duration_s / {CLIP_S:g}); a configuration meets one when the upper end of its latency's 95 % CI is at "
    "or below it (one whose interval straddles the limit does not); the least mean energy wins, a tie goes "
    "to the lower latency, then to the configuration listed first; others_within_ci95 counts the other "
    "configurations that meet the limit with an energy the repeats cannot tell apart from the winner's."
)


def ci_col(col: str) -> str:
    return f"{col}_ci95"


def per_window(rows: pd.DataFrame) -> pd.DataFrame:
    """The figures of `NEEDS` each window of `rows` allows (same index); a missing input gives null."""

    def num(c: str) -> pd.Series:
        return pd.to_numeric(rows[c], errors="coerce").astype("float64")

    out = pd.DataFrame(index=rows.index)
    if all(c in rows.columns for c in NEEDS[LATENCY_COL]):
        waveforms = num("generations_in_window") * num("batch_size")
        out[LATENCY_COL] = num("window_s") / waveforms.where(waveforms > 0)
        if DURATION_COL in rows.columns:
            out[RTF_COL] = num(DURATION_COL) / out[LATENCY_COL].where(out[LATENCY_COL] > 0)
    if PER_AUDIO_COL in rows.columns:
        out[PER_AUDIO_COL] = num(PER_AUDIO_COL)
    return out


def add_config_columns(
    rows: pd.DataFrame, configs: pd.DataFrame, energy_col: str, config_col: str = "_config"
) -> tuple[pd.DataFrame, list[str]]:
    """`configs` (indexed by `rows[config_col]`) with the mean and 95 % CI of each `per_window`
    figure, and a note naming the columns a figure lacks."""
    figures = per_window(rows)
    figures = figures[[c for c in figures.columns if c != energy_col and figures[c].notna().any()]]
    notes = []
    if LATENCY_COL not in figures.columns:
        missing = [c for c in NEEDS[LATENCY_COL] if c not in rows.columns]
        why = f"no {', '.join(missing)} column" if missing else "no value of it"
        notes.append(
            f"Energy against time (latency per waveform, RTF, the energy–latency front): skipped — {why} "
            f"(needs {', '.join(NEEDS[LATENCY_COL])}; RTF also {DURATION_COL})."
        )
    if figures.empty:
        return configs, notes
    figures = figures.assign(**{config_col: rows[config_col]})
    if GPU_COL in rows.columns:
        figures[GPU_COL] = rows[GPU_COL]
    added = pd.DataFrame(index=configs.index)
    for c in [c for c in figures.columns if c not in (config_col, GPU_COL)]:
        stats = grouped_mean_ci(figures, c, config_col)
        added[c], added[ci_col(c)] = stats["mean"], stats["ci95"]
    return configs.drop(columns=[c for c in added.columns if c in configs.columns]).join(added), notes


def shown(configs: pd.DataFrame) -> list[str]:
    """The configurations table's columns of this module, J per audio second first (it goes beside J
    per waveform)."""
    cols = [PER_AUDIO_COL, ci_col(PER_AUDIO_COL), LATENCY_COL, ci_col(LATENCY_COL), RTF_COL, ci_col(RTF_COL)]
    return [c for c in cols if c in configs.columns]


@dataclass(frozen=True)
class EnergyTime:
    """What `energy_against_time` found: its tables (keys of `TITLES`), plots, notes, comparisons."""

    tables: dict[str, pd.DataFrame]
    figures: list[tuple[str, str, bytes]] = field(repr=False)  # (file name, caption, PNG)
    notes: list[str]
    compared: list[tuple[str, list]]  # the latency table's comparisons, for `hosts.mixing_warnings`


def energy_against_time(
    configs: pd.DataFrame,
    energy_col: str,
    group_cols: Sequence[str],
    label_cols: Sequence[str],
    *,
    repeats: bool,
    energy_label: str,
    limits_s: Sequence[float] = LIMITS_S,
) -> EnergyTime:
    """The energy–latency front (per group, and per clip length where it varies), its plot, and the
    minimum-energy table under `limits_s`; empty where `configs` has no latency."""
    if LATENCY_COL not in configs.columns:
        return EnergyTime({}, [], [], [])
    by = list(group_cols)
    if DURATION_COL in configs.columns and configs[DURATION_COL].nunique() > 1 and DURATION_COL not in by:
        by.append(DURATION_COL)
    e_ci = ci_col(energy_col) if repeats else None
    fronts = compute_fronts(
        configs,
        energy_col,
        [(LATENCY_COL, "min")],
        by,
        energy_ci_col=e_ci,
        quality_ci_cols={LATENCY_COL: ci_col(LATENCY_COL)} if repeats else None,
    )
    tables: dict[str, pd.DataFrame] = {}
    figures, notes = [], []
    if fronts:
        tables["energy_latency_front"] = front_points(configs, fronts, energy_col, label_cols)
        try:
            png = _plots.plot_fronts(
                configs, fronts, energy_col, e_ci, ci_col(LATENCY_COL) if repeats else None,
                list(label_cols), energy_label,
            )  # fmt: skip
            figures.append(
                (
                    "plot_energy_latency.png",
                    "Energy per waveform vs latency per waveform, both lower is better: outlined points are "
                    "on the front, the black staircase is the front of the means, the star the knee.",
                    png,
                )
            )
        except ValueError as e:
            notes.append(f"Energy–latency plot: skipped — {e}.")
    table = min_energy_under_limits(configs, energy_col, label_cols, by, limits_s)
    if not table.empty:
        tables["latency"] = table
        notes.append(RULE)
    if DURATION_COL not in configs.columns:
        notes.append(
            f"Latency limits: the table has no {DURATION_COL}, so each limit is taken per waveform as it is "
            f"(not scaled to the clip's length), and there is no RTF."
        )
    return EnergyTime(tables, figures, notes, comparisons(configs, energy_col, by))


def front_points(
    configs: pd.DataFrame, fronts: Sequence[Front], energy_col: str, label_cols: Sequence[str]
) -> pd.DataFrame:
    """The configurations on each front, by increasing energy, with `*` at the knee."""
    parts = []
    for f in fronts:
        c = configs.loc[list(f.members)]
        group = dict(f.group)
        cols = [x for x in label_cols if x not in group] + ["n", energy_col, ci_col(energy_col)]
        cols += [PER_AUDIO_COL, LATENCY_COL, ci_col(LATENCY_COL), RTF_COL]
        out = c[[x for x in dict.fromkeys(cols) if x in c.columns]].copy()
        for k, v in reversed(f.group):
            out.insert(0, k, v)
        out.insert(0, "knee", ["*" if i == f.knee else "" for i in c.index])
        parts.append(out)
    table = pd.concat(parts, ignore_index=True)
    return table[[x for x in table.columns if not (x.endswith("_ci95") and table[x].isna().all())]]


def min_energy_under_limits(
    configs: pd.DataFrame,
    energy_col: str,
    label_cols: Sequence[str],
    group_cols: Sequence[str] = (),
    limits_s: Sequence[float] = LIMITS_S,
) -> pd.DataFrame:
    """One row per group, scope (each model, then all models together) and limit: the configuration of
    least mean energy that meets the limit (the rule is in the module docstring), or "none meets L s"."""
    rows = []
    for group, among, scope in scopes(configs, energy_col, group_cols):
        named = [c for c in label_cols if c != "model" or among == ALL]  # the model is `among`'s
        for limit in limits_s:
            rows.append(
                dict(group)
                | {"among": among, LIMIT_COL: float(limit)}
                | _pick(scope, energy_col, named, limit)
            )
    return pd.DataFrame(rows)


def scopes(
    configs: pd.DataFrame, energy_col: str, group_cols: Sequence[str] = ()
) -> list[tuple[tuple[tuple[str, object], ...], str, pd.DataFrame]]:
    """(group, among, configurations) the latency table compares: per group, each model's
    configurations with an energy and a latency, then all models together (where there are several)."""
    has = configs[np.isfinite(configs[energy_col].astype(float))]
    has = has[np.isfinite(has[LATENCY_COL].astype(float))]
    if has.empty:
        return []
    groups = [((), has)]
    if group_cols:
        groups = [
            ((k if isinstance(k, tuple) else (k,)), sub)
            for k, sub in has.groupby(list(group_cols), dropna=False, sort=True)
        ]
    out = []
    for key, sub in groups:
        group = tuple(zip(group_cols, key, strict=True))
        if "model" in sub.columns:
            out += [(group, str(m), s) for m, s in sub.groupby("model", sort=True)]
        if "model" not in sub.columns or sub["model"].nunique() > 1:
            out.append((group, ALL, sub))
    return out


def comparisons(
    configs: pd.DataFrame, energy_col: str, group_cols: Sequence[str] = ()
) -> list[tuple[str, list]]:
    """(what, configuration labels) of each comparison made here — the energy–latency front of each
    group, each scope of the latency table — for `hosts.mixing_warnings`."""
    out = []
    fronts: dict[tuple, list] = {}
    for group, among, scope in scopes(configs, energy_col, group_cols):
        where = "".join(f", {k}={fmt(v)}" for k, v in group)
        out.append((f"the minimum energy under latency limits among {among}{where}", list(scope.index)))
        if among == ALL or "model" not in scope.columns or scope["model"].nunique() == 1:
            fronts[group] = list(scope.index)
    front = [
        (f"the energy–latency front{''.join(f', {k}={fmt(v)}' for k, v in g)}", m) for g, m in fronts.items()
    ]
    return front + out


def _pick(scope: pd.DataFrame, energy_col: str, label_cols: Sequence[str], limit: float) -> dict:
    """The winner under `limit` (per `CLIP_S` s clip) in `scope`, as the table's columns."""
    scale = (
        scope[DURATION_COL].astype(float) / CLIP_S
        if DURATION_COL in scope.columns
        else pd.Series(1.0, scope.index)
    )
    allowed = limit * scale
    lat = scope[LATENCY_COL].astype(float)
    lat_ci = _zero_nan(scope, ci_col(LATENCY_COL))
    meets = scope[(lat + lat_ci <= allowed).to_numpy()]
    per_audio = [PER_AUDIO_COL] if PER_AUDIO_COL in scope.columns else []
    figures = [energy_col, ci_col(energy_col), *per_audio, LATENCY_COL, ci_col(LATENCY_COL), RTF_COL]
    figures = [c for c in figures if c in scope.columns]
    if meets.empty:
        return (
            {"configuration": f"none meets {fmt(limit)} s per {fmt(CLIP_S)} s clip", "limit_s": math.nan}
            | {c: math.nan for c in figures}
            | {"others_within_ci95": math.nan}
        )
    order = np.lexsort(
        (np.arange(len(meets)), meets[LATENCY_COL].astype(float), meets[energy_col].astype(float))
    )
    best = meets.iloc[order[0]]
    e_ci = _zero_nan(meets, ci_col(energy_col))
    overlap = (meets[energy_col].astype(float) - float(best[energy_col])).abs() <= e_ci + e_ci.iloc[order[0]]
    return (
        {"configuration": describe(best, label_cols), "limit_s": float(allowed.loc[best.name])}
        | {c: best[c] for c in figures}
        | {"others_within_ci95": int(overlap.sum()) - 1}
    )


def _zero_nan(df: pd.DataFrame, col: str) -> pd.Series:
    """A CI column with a missing interval (one window) counted as zero; all zeros where absent."""
    if col not in df.columns:
        return pd.Series(0.0, index=df.index)
    return df[col].astype(float).fillna(0.0)
