"""Comparisons that mix hosts: a front, a fit or a ranking whose configurations were measured on
different GPUs or hosts, with nothing to balance them.

At batch 1 a diffusion pipeline is launch-bound, so its energy follows the host CPU as much as the GPU
(`gpu_effect.py`): two configurations measured on two hosts differ by their hosts too.

* A row's **source** is the GPU that measured it (``gpu_uuid``) on its host (``host_id``). Either may be
  absent — a CPU run has no GPU, runs made before ``host_id`` existed have no host — and a row with
  neither is left out. ``worker_id`` is not a source: it numbers the workers of one attempt, and attempt
  3's worker 0 may be another GPU than attempt 1's.
* A **comparison** is a set of configurations whose figures are set against each other: the
  configurations table (any ranking of its rows), each front, each fit series, the fits of one kind
  side by side, each scope of the latency table.
* It **mixes hosts** when its configurations span two sources or more and at least one of them was
  measured on one source only. A configuration measured on several sources (``placement: spread``) is
  balanced: its mean weighs each GPU equally and the GPU effect table measures each GPU against the
  others, with a warning where one is off. So this looks at where each configuration was measured,
  not at the sweep's placement setting: spread with one repeat balances nothing.
* Each mixed comparison gets one warning (comparisons of the same configurations share it) naming its
  sources and the **reference workload's** ratio between them: the joules and seconds per call of the
  fixed launch-bound loop and matmul each worker metered at its start (``logs/gpus-attempt-N.json``,
  every attempt, since rows come from all of them). Where no log holds a source's reference workload (a
  run from before it existed, or tables read without their run folders), the ratio is said to be
  unknown.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import Front
from t2a_ray.analysis.values import count, fmt, is_missing
from t2a_ray.runfolder import RunFolder

HOST_COL, GPU_COL = "host_id", "gpu_uuid"
SOURCE_COLS = (HOST_COL, GPU_COL)
# The fits whose series compare configurations (steps, batch sizes, durations of one model).
SERIES_FITS = {
    "energy_vs_steps": "energy vs steps",
    "energy_vs_batch": "energy vs batch size",
    "energy_per_audio_s_vs_duration": "energy per audio second vs duration",
}
_REFERENCE = re.compile(r"^reference_(?P<work>.+)_(?P<unit>j|s)$")
_MAX_NAMED = 3  # comparisons named in one warning before "and N more"

Source = tuple[object, object]  # (host_id, gpu_uuid), None where absent


def sources(rows: pd.DataFrame, config_col: str = "_config") -> dict[object, frozenset[Source]]:
    """Each configuration's sources (see the module docstring); {} where the table names none."""
    if not any(c in rows.columns for c in SOURCE_COLS):
        return {}
    src = _source_series(rows)
    known = src.notna()
    return {cfg: frozenset(s) for cfg, s in src[known].groupby(rows.loc[known, config_col], sort=False)}


def reference_table(run_dirs: Iterable[str | os.PathLike]) -> pd.DataFrame | None:
    """The reference workload of every worker of every attempt of each run folder, averaged per source:
    one row per (host_id, gpu_uuid) with its ``reference_<work>_j`` and ``_s``; None where no log has
    one (a folder without logs/ is skipped)."""
    records = []
    for d in run_dirs:
        run = RunFolder(d)
        for _, path in run.attempt_logs("gpus"):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for w in doc if isinstance(doc, list) else []:
                figures = {k: v for k, v in w.items() if _REFERENCE.match(k) and isinstance(v, (int, float))}
                if figures:
                    records.append({HOST_COL: w.get(HOST_COL), GPU_COL: w.get(GPU_COL), **figures})
    if not records:
        return None
    df = pd.DataFrame(records)
    return df.groupby([HOST_COL, GPU_COL], dropna=False, sort=True).mean().reset_index()


def comparisons(
    configs: pd.DataFrame,
    fronts: Sequence[Front],
    fits: dict[str, pd.DataFrame],
    series_cols: Sequence[str],
    extra: Sequence[tuple[str, list]] = (),
) -> list[tuple[str, list]]:
    """(what, configuration labels) of every comparison the analysis makes (module docstring): the
    configurations table, each front's group, each fit series (matched to `configs` on the fit's
    columns among `series_cols`) and each kind of fit as a whole, then `extra`."""
    out = [("the configurations table (any ranking of its rows)", list(configs.index))]
    for f in fronts:
        sub = _in_group(configs, f.group)
        ok = np.isfinite(pd.to_numeric(sub[f.metric], errors="coerce").astype(float))
        out.append((f"the front {f.label}", list(sub.index[ok.to_numpy()])))
    for key, title in SERIES_FITS.items():
        table = fits.get(key)
        if table is None or table.empty:
            continue
        keys = [c for c in table.columns if c in series_cols and c in configs.columns]
        union: list = []
        for _, series in table.iterrows():
            sub = _in_group(configs, [(c, series[c]) for c in keys])
            union += list(sub.index)
            named = ", ".join(f"{c}={fmt(series[c])}" for c in keys)
            out.append((f"the fit of {title} ({named})" if named else f"the fit of {title}", list(sub.index)))
        if len(table) > 1:
            out.append((f"the fits of {title} side by side", list(dict.fromkeys(union))))
    return out + list(extra)


def mixing_warnings(
    rows: pd.DataFrame,
    comparisons: Sequence[tuple[str, list]],
    reference: pd.DataFrame | None,
    config_col: str = "_config",
) -> list[str]:
    """One warning per set of configurations that a comparison of them mixes hosts (module docstring)."""
    by_config = sources(rows, config_col)
    if not by_config:
        return []
    names = _names(rows)
    merged: dict[frozenset, list[str]] = {}
    for what, labels in comparisons:
        members = frozenset(c for c in labels if c in by_config)
        if len(members) >= 2:
            merged.setdefault(members, []).append(what)
    out = []
    for members, whats in merged.items():
        spanned = frozenset().union(*(by_config[c] for c in members))
        alone = [c for c in members if len(by_config[c]) == 1]
        if len(spanned) < 2 or not alone:
            continue
        per_source = {s: sum(s in by_config[c] for c in members) for s in spanned}
        order = sorted(spanned, key=lambda s: (-per_source[s], str(s)))
        listed = "; ".join(whats[:_MAX_NAMED]) + (
            f"; and {len(whats) - _MAX_NAMED} more" if len(whats) > _MAX_NAMED else ""
        )
        where = ", ".join(f"{names[s]} ({count(per_source[s], 'configuration')})" for s in order)
        out.append(
            f"Warning: {listed} — compares configurations measured on {len(spanned)} different GPUs/hosts, "
            f"{len(alone)} of {len(members)} of them on one only (nothing balances them; placement: "
            f"spread would): {where}. {_ratio_text(order, names, reference)}"
        )
    return out


def _ratio_text(order: list[Source], names: dict[Source, str], reference: pd.DataFrame | None) -> str:
    base, others = order[0], order[1:]
    figures = {s: _reference_of(s, reference) for s in order}
    unknown = [names[s] for s in order if not figures[s]]
    if unknown:
        return (
            "The reference workload's ratio between them is unknown (no reference workload in logs/ for "
            f"{', '.join(unknown)}: a run from before it was recorded, or a table read without its run "
            "folder); a difference between them may be the host's."
        )
    parts = []
    for s in others:
        works = sorted({w for w, _ in figures[s]} & {w for w, _ in figures[base]})
        ratios = []
        for w in works:
            per = [
                f"×{figures[s][(w, u)] / figures[base][(w, u)]:.3g} {u.upper() if u == 'j' else u}"
                for u in ("j", "s")
                if (w, u) in figures[s] and (w, u) in figures[base] and figures[base][(w, u)]
            ]
            if per:
                ratios.append(f"{w} {', '.join(per)}")
        parts.append(f"{names[s]}: {'; '.join(ratios) or 'no common figure'}")
    return (
        f"Reference workload per call against {names[base]} — {' | '.join(parts)}: a difference between "
        "them of this size may be the host's."
    )


def _reference_of(source: Source, reference: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    """{(work, "j"|"s"): value} of `source`: its own row, else (a row without host_id) its GPU's."""
    if reference is None or reference.empty:
        return {}
    host, gpu = source
    ref_host = reference[HOST_COL].map(_clean)
    ref_gpu = reference[GPU_COL].map(_clean)
    match = reference[(ref_host == host) & (ref_gpu == gpu)] if host is not None else reference.iloc[0:0]
    if match.empty and gpu is not None:
        match = reference[ref_gpu == gpu]
    if match.empty and gpu is None:
        match = reference[(ref_host == host) & ref_gpu.isna()]
    out = {}
    for col in reference.columns:
        m = _REFERENCE.match(str(col))
        if m and not match.empty:
            v = float(pd.to_numeric(match[col], errors="coerce").mean())
            if math.isfinite(v):
                out[(m["work"], m["unit"])] = v
    return out


def _source_series(rows: pd.DataFrame) -> pd.Series:
    """Each row's source; None where the row names neither host nor GPU."""
    host, gpu = (
        [_clean(v) for v in rows[c]] if c in rows.columns else [None] * len(rows) for c in SOURCE_COLS
    )
    return pd.Series(
        [(h, g) if h is not None or g is not None else None for h, g in zip(host, gpu, strict=True)],
        index=rows.index,
        dtype=object,
    )


def _names(rows: pd.DataFrame) -> dict[Source, str]:
    """A source in words: ``GPU-2d873470 on vm (host dd389f78cbbe)``."""
    src = _source_series(rows)
    node = rows["node"] if "node" in rows.columns else pd.Series(None, index=rows.index)
    out = {}
    for s, n in zip(src, node, strict=True):
        if s is None or s in out:
            continue
        host, gpu = s
        text = str(gpu)[:12] if gpu is not None else "the CPU"
        text += f" on {n}" if not is_missing(n) else ""
        text += f" (host {host})" if host is not None else ""
        out[s] = text
    return out


def _clean(v: object) -> object:
    return None if is_missing(v) else str(v)


def _in_group(configs: pd.DataFrame, group: Sequence[tuple[str, object]]) -> pd.DataFrame:
    sub = configs
    for col, val in group:
        if col not in sub.columns:
            continue
        sub = sub[sub[col].isna()] if is_missing(val) else sub[sub[col] == val]
    return sub
