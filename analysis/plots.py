"""The report's PNG plots, drawn with matplotlib's object API and the Agg canvas.

No pyplot: importing this module never changes the process-wide backend (a notebook keeps its own), and
figures are freed with their objects. Each function returns one PNG's bytes; the report writes them.
`energy_label` is the energy axis's words (with its unit, and "CPU estimate" where it is one); `banner`,
where given, heads the figure (`meaning.UNTRAINED_BANNER`: every plot of such an analysis carries it).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import Front, pareto_mask
from t2a_ray.analysis.values import fmt
from t2a_ray.schema import PHASES, QUALITY_METRICS

DPI = 110
_BETTER = {"max": "higher is better", "min": "lower is better"}  # a quality's direction, in words
_NICE = {
    "energy_per_waveform_j": "Energy per waveform (J)",
    "gpu_energy_j": "GPU energy per window (J)",
    "gpu_energy_net_j": "GPU energy above idle per window (J)",
    "energy_per_audio_s_j": "Energy per second of audio (J/s)",
    "latency_per_waveform_s": "Latency per waveform (s; lower is better)",
    "clap_mean": f"CLAP score (cosine; {_BETTER[QUALITY_METRICS['clap_mean']]})",
    "clap": f"CLAP score ({_BETTER[QUALITY_METRICS['clap_mean']]})",  # a results CSV's own name for it
    "fad": f"FAD ({_BETTER[QUALITY_METRICS['fad']]})",
    "fad_inf": f"FAD∞ ({_BETTER[QUALITY_METRICS['fad_inf']]})",
    "steps": "Denoising steps",
    "batch_size": "Batch size (waveforms per call)",
}
_UNITS = (("_kwh", "kWh"), ("_wh", "Wh"), ("_kj", "kJ"), ("_mj", "mJ"), ("_j", "J"), ("_s", "s"), ("_w", "W"))


def axis_label(col: str, sense: str | None = None) -> str:
    """A readable axis label with the unit read from the column name's suffix (``_j`` → J)."""
    if col in _NICE:
        return _NICE[col]
    unit = unit_of(col)
    text = col.replace("_", " ")
    if unit:
        text = f"{text} ({unit})"
    if sense is not None:
        text += f" ({_BETTER[sense]})"
    return text


def unit_of(col: str) -> str | None:
    """The unit a column's name ends with (``energy_per_audio_s_j`` → J), or None."""
    return next((u for suffix, u in _UNITS if col.lower().endswith(suffix)), None)


def model_colors(models: Sequence[object]) -> dict[object, tuple]:
    """One fixed colour per model, the same in every plot (sorted names → tab10, or tab20 beyond 10)."""
    from matplotlib import colormaps

    names = sorted({str(m) for m in models})
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(names)}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig, banner: str = "") -> bytes:
    if banner:
        _banner(fig, banner)
    # Pin the metadata so that re-running the analysis rewrites byte-identical files; the banner is also
    # the PNG's description, for whoever reads the file without looking at it.
    buf = io.BytesIO()
    meta = {"Software": None} | ({"Description": banner} if banner else {})
    fig.savefig(buf, format="png", bbox_inches="tight", metadata=meta)
    return buf.getvalue()


def _banner(fig, text: str) -> None:
    """`text` in a red box above everything drawn (titles and legends outside the axes included):
    `bbox_inches="tight"` then grows the image to hold it."""
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_figwidth(), fig.get_figheight()
    fig.text(
        (drawn.x0 + drawn.x1) / 2 / width,
        (drawn.y1 + 0.15) / height,
        textwrap.fill(text, max(50, int(drawn.width * 13))),
        ha="center",
        va="bottom",
        fontsize=8.5,
        weight="bold",
        color="#8b0000",
        bbox={"boxstyle": "round,pad=0.5", "facecolor": "#fdecea", "edgecolor": "#8b0000"},
    )


def _log_if_wide(ax, values: np.ndarray, axis: str = "x", ratio: float = 30.0) -> None:
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and v.max() / v.min() > ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _legend(ax, n_entries: int, title: str | None = None) -> None:
    if n_entries == 0:
        return
    if n_entries > 8:
        ax.legend(title=title, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.legend(title=title, fontsize=8, frameon=True, framealpha=0.85)


def plot_energy_vs_axis(
    configs: pd.DataFrame,
    axis: str,
    energy_col: str,
    ci_col: str | None,
    series_cols: Sequence[str],
    energy_label: str,
    fits: pd.DataFrame | None = None,
    title: str = "",
    banner: str = "",
) -> bytes:
    """Mean energy (±95 % CI over repeats) against a parameter, one line per series (model + fixed axes).

    With `fits` (rows keyed by the same series columns, with slope_j_per_step and intercept_j) the fitted
    line is drawn dashed.
    """
    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    colors = model_colors(configs["model"]) if "model" in configs else {}
    series = (
        list(configs.groupby(list(series_cols), dropna=False, sort=True)) if series_cols else [((), configs)]
    )
    series = [((k if isinstance(k, tuple) else (k,)), sub) for k, sub in series if sub[axis].nunique() > 1]
    if not series:
        raise ValueError(f"no series has two values of {axis!r}")
    # Name in the legend only what tells the drawn series apart.
    shown = [j for j, c in enumerate(series_cols) if c == "model" or len({k[j] for k, _ in series}) > 1]
    markers = "osD^v<>ph*"
    for i, (key, sub) in enumerate(series):
        sub = sub.sort_values(axis)
        label = ", ".join(
            str(key[j]) if series_cols[j] == "model" else f"{series_cols[j]}={fmt(key[j])}" for j in shown
        )
        model = str(dict(zip(series_cols, key, strict=True)).get("model", ""))
        color = colors.get(model)
        x = sub[axis].to_numpy(dtype=np.float64)
        y = sub[energy_col].to_numpy(dtype=np.float64)
        yerr = sub[ci_col].fillna(0.0).to_numpy(dtype=np.float64) if ci_col and ci_col in sub else None
        ax.errorbar(
            x,
            y,
            yerr=yerr,
            marker=markers[i % len(markers)],
            ms=4,
            lw=1.4,
            capsize=3,
            color=color,
            label=label or energy_col,
        )
        if fits is not None and not fits.empty and "slope_j_per_step" in fits:
            match = fits
            for c, v in zip(series_cols, key, strict=True):
                match = match[(match[c] == v) | (match[c].isna() & pd.isna(v))] if c in match else match
            if len(match) == 1:
                xs = np.linspace(np.nanmin(x), np.nanmax(x), 50)
                row = match.iloc[0]
                ax.plot(
                    xs,
                    row["slope_j_per_step"] * xs + row["intercept_j"],
                    ls="--",
                    lw=0.9,
                    color=color,
                    alpha=0.7,
                )
    ax.set_xlabel(axis_label(axis))
    ax.set_ylabel(energy_label)
    _log_if_wide(ax, configs[energy_col].to_numpy(dtype=np.float64), "y")
    if axis == "batch_size":
        ax.set_xscale("log", base=2)
        ticks = sorted(configs[axis].dropna().unique())
        ax.set_xticks(ticks, [fmt(t) for t in ticks])
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"{energy_label} vs {axis_label(axis).lower()} (mean ± 95 % CI)", fontsize=10)
    _legend(ax, len(series), title=None)
    return _png(fig, banner)


# The kinds of point of a front plot, as its legend names them (`fronts.classify`).
_ON = "on the front"
_BESIDE = "indistinguishable from the front (not on it)"
_OUT = "ruled out (beaten in both beyond noise)"


def plot_fronts(*args, banner: str = "", **kwargs) -> bytes:
    """`fronts_figure` as PNG."""
    return _png(fronts_figure(*args, **kwargs), banner)


def fronts_figure(
    configs: pd.DataFrame,
    fronts: Sequence[Front],
    energy_col: str,
    energy_ci_col: str | None,
    quality_ci_col: str | None,
    label_cols: Sequence[str],
    energy_label: str,
):
    """Energy–quality scatter, one panel per group: front members outlined in black, configurations
    indistinguishable from the front as open circles (beside it, not on it), the others faint; the plain
    Pareto front of the means as a staircase; the knee, where there is one, as a star. All `fronts` share
    one metric. Only front points are labelled, and a label that would overlap another is left out. The
    legend names only what is drawn.
    """
    from matplotlib.lines import Line2D

    metric, sense = fronts[0].metric, fronts[0].sense
    n = len(fronts)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(6.2 * cols + 1.8, 4.4 * rows)
    has_model = "model" in configs
    colors = model_colors(configs["model"]) if has_model else {"all": "tab:blue"}
    group_names = {g for g, _ in fronts[0].group}
    # Label a point only with what tells it apart from its own model's other points (colour names the model).
    annotate_cols = [
        c
        for c in label_cols
        if c != "model"
        and c not in group_names
        and (configs.groupby("model")[c].nunique().max() > 1 if has_model else configs[c].nunique() > 1)
    ]
    styles = {  # what each kind of point looks like: (marker size, face, edge, alpha, z-order)
        _ON: (6.5, None, "black", 1.0, 3),
        _BESIDE: (6.0, "white", None, 1.0, 2.5),
        _OUT: (4.5, None, "none", 0.4, 2),
    }
    drawn_models: set[str] = set()
    drawn_kinds: set[str] = set()
    to_label: list[tuple[object, list[tuple[float, float, str]], list[tuple[float, float]]]] = []
    knee_drawn = staircase = False
    for i, front in enumerate(fronts):
        ax = fig.add_subplot(rows, cols, i + 1)
        sub = configs
        for col, val in front.group:
            sub = sub[(sub[col] == val) | (sub[col].isna() & pd.isna(val))]
        e_all = sub[energy_col].astype(float)
        q_all = sub[metric].astype(float)
        sub = sub[np.isfinite(e_all) & np.isfinite(q_all)]
        band = {m for m, _ in front.indistinguishable}
        kind = pd.Series(_OUT, index=sub.index)
        kind[sub.index.isin(list(band))] = _BESIDE
        kind[sub.index.isin(list(front.members))] = _ON
        models = sub["model"].astype(str) if has_model else pd.Series("all", index=sub.index)
        for k, (ms, face, edge, alpha, z) in styles.items():
            for model in sorted(set(models)):
                pts = sub[((models == model) & (kind == k)).to_numpy()]
                if pts.empty:
                    continue
                drawn_models.add(model)
                drawn_kinds.add(k)
                ax.errorbar(
                    pts[energy_col].astype(float),
                    pts[metric].astype(float),
                    xerr=_err(pts, energy_ci_col),
                    yerr=_err(pts, quality_ci_col),
                    fmt="o",
                    ms=ms,
                    color=colors[model],
                    mfc=face or colors[model],
                    mec=edge or colors[model],
                    alpha=alpha,
                    elinewidth=0.8,
                    capsize=2,
                    mew=1.3 if face else 0.9,
                    zorder=z,
                )
        e, q = sub[energy_col].to_numpy(dtype=float), sub[metric].to_numpy(dtype=float)
        plain = pareto_mask(e, q, sense)
        if plain.sum() > 1:  # a staircase of one point draws nothing
            order = np.lexsort((-q[plain] if sense == "max" else q[plain], e[plain]))
            ax.step(e[plain][order], q[plain][order], where="post", color="black", lw=1.1, zorder=1)
            staircase = True
        labels = []
        for idx in front.members:
            text = _compact(sub.loc[idx], annotate_cols)
            if text:
                labels.append((float(sub.loc[idx, energy_col]), float(sub.loc[idx, metric]), text))
        to_label.append((ax, labels, list(zip(e, q, strict=True))))
        if front.knee is not None:
            k = sub.loc[front.knee]
            ax.plot([float(k[energy_col])], [float(k[metric])], "*", ms=16, mfc="gold", mec="black", zorder=5)
            knee_drawn = True
        _log_if_wide(ax, e, "x")
        ax.set_xlabel(energy_label + " — lower is better")
        ax.set_ylabel(axis_label(metric, sense))
        group = ", ".join(f"{k}={fmt(v)}" for k, v in front.group)
        rule = "CI-aware (95 %)" if front.dominance == "ci95" else "plain"
        beside = f", {len(band)} indistinguishable" if band else ""
        ax.set_title(
            (group + ": " if group else "")
            + f"{len(front.members)} of {front.n_points} on the front{beside}, {rule} dominance",
            fontsize=9,
        )
        ax.grid(True, alpha=0.3)
    handles = [
        Line2D([], [], ls="none", marker="o", ms=6, color=c, label=m)
        for m, c in colors.items()
        if m != "all" and m in drawn_models
    ]
    for k, (ms, face, edge, alpha, _) in styles.items():
        if k in drawn_kinds:
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="none",
                    marker="o",
                    ms=ms,
                    color="grey",
                    alpha=alpha,
                    mfc=face or "grey",
                    mec=edge or "grey",
                    mew=1.3 if face else 0.9,
                    label=k,
                )
            )
    if staircase:
        handles.append(Line2D([], [], color="black", lw=1.1, label="Pareto front of the means"))
    if knee_drawn:
        handles.append(Line2D([], [], ls="none", marker="*", ms=12, mfc="gold", mec="black", label="knee"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.93), fontsize=8, frameon=False)
    bars = " (bars: 95 % CI)" if any(f.dominance == "ci95" for f in fronts) else ""
    fig.suptitle(f"Energy vs {axis_label(metric, sense).split(' (')[0]}: Pareto fronts{bars}", fontsize=11)
    fig.tight_layout()
    # Labels last, once the layout is fixed: their places on the canvas are final.
    skipped = sum(_label_points(ax, labels, points) for ax, labels, points in to_label)
    if annotate_cols:
        left_out = f"; {skipped} left out where they would overlap" if skipped else ""
        fig.text(
            1.0,
            0.06,
            "labels (front points): " + ", ".join(_COMPACT.get(c, c) for c in annotate_cols) + left_out,
            fontsize=7,
            color="0.3",
        )
    return fig


# Where a label may sit beside its point, in points, tried in turn: right-below, right-above, left-above,
# left-below.
_LABEL_OFFSETS = ((4, -9), (4, 4), (-4, 4), (-4, -9))
_MARKER_PX = 5.0  # half the drawn size of a front marker (6.5 pt at `DPI`), px: labels keep off it


def _label_points(
    ax, labels: Sequence[tuple[float, float, str]], points: Sequence[tuple[float, float]] = ()
) -> int:
    """Annotate each (x, y, text) at the first offset where it overlaps no label already placed and no
    marker of `points`; returns how many found no such place and were left out."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    r = _MARKER_PX
    at = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    placed: list = [Bbox.from_bounds(px - r, py - r, 2 * r, 2 * r) for px, py in at]
    skipped = 0
    for x, y, text in labels:
        for dx, dy in _LABEL_OFFSETS:
            ann = ax.annotate(
                text,
                (x, y),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx > 0 else "right",
                fontsize=6.5,
                color="0.25",
                zorder=6,
            )
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            ann.remove()
        else:
            skipped += 1
    return skipped


_LABEL_CHARS = 24  # a value longer than this (a prompt) is cut in a point's label
_COMPACT = {"steps": "N st = steps", "batch_size": "bN = batch size", "duration_s": "N s = duration"}


def _compact(row: pd.Series, cols: Sequence[str]) -> str:
    """``100 st b5``: a front point's other parameters, short enough to sit beside it."""
    out = []
    for c in cols:
        if pd.isna(row[c]):
            continue  # a parameter this model does not have
        v = fmt(row[c])
        v = v if len(v) <= _LABEL_CHARS else v[: _LABEL_CHARS - 1] + "…"
        out.append({"steps": f"{v} st", "batch_size": f"b{v}", "duration_s": f"{v} s"}.get(c, f"{c}={v}"))
    return " ".join(out)


def plot_phases(shares: pd.DataFrame, by: Sequence[str], banner: str = "") -> bytes:
    """`phases_figure` as PNG."""
    return _png(phases_figure(shares, by), banner)


def phases_figure(shares: pd.DataFrame, by: Sequence[str]):
    """Stacked horizontal bars: each phase's share of the measured phase energy, per model. A phase no
    row has (a share null or zero everywhere) is neither drawn nor in the legend."""
    fig = _figure(7.5, 0.9 + 0.42 * max(len(shares), 2))
    ax = fig.add_subplot(1, 1, 1)
    labels = [" ".join(fmt(r[c]) for c in by) for _, r in shares.iterrows()]
    left = np.zeros(len(shares))
    from matplotlib import colormaps

    cmap = colormaps["Set2"]
    y = np.arange(len(shares))
    for i, name in enumerate(PHASES):
        col = f"{name}_share"
        if col not in shares or not (shares[col].fillna(0.0) > 0).any():
            continue
        v = 100.0 * shares[col].fillna(0.0).to_numpy(dtype=np.float64)  # a null share draws no bar
        ax.barh(y, v, left=left, color=cmap(i), label=name.replace("_", " "), edgecolor="white", lw=0.5)
        for yi, (l0, vi) in enumerate(zip(left, v, strict=True)):
            if vi >= 6:
                ax.text(l0 + vi / 2, yi, f"{vi:.0f}%", ha="center", va="center", fontsize=7)
        left += v
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("Share of the energy of the measured phases (%)")
    ax.set_title("Where the energy goes: phase shares per " + " / ".join(by), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="phase")
    return fig


def _err(df: pd.DataFrame, col: str | None):
    if not col or col not in df:
        return None
    return df[col].astype(float).fillna(0.0).to_numpy()
