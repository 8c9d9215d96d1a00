"""The configurations that did not run, each with its one-line error: part of a result, printed after
the fronts, shown on the report page and by `t2a-ray status`.

A configuration's outcome is its rows' (`schema.trial_status`: ok only if every window was, infeasible
beats failed). *Infeasible* is a knob that cannot run (out of memory, a runtime the device lacks): an
outcome like any other. *Failed* is something that went wrong (a crash, a bug): the launch exits 1, and
`t2a-ray resume RUN --retry-failed` runs it again. Configurations of one model and outcome that share
an error are one line ("6 trials of stable-audio-open: …"), so a model that failed whole reads as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from t2a_ray.analysis.values import count, fmt, sort_key
from t2a_ray.schema import COLUMN_ROLES, CONFIG

FAILED, INFEASIBLE = "failed", "infeasible"
NAMED_CONFIGS = 3  # a group of at most this many configurations names each one
ERROR_CHARS = 300  # an error is shown as its first line, cut here (the rows keep it whole)
NO_ERROR = "(no error recorded)"
# Configuration columns that never tell two configurations of a model apart in a listing.
_NOT_SHOWN = ("model", "model_revision", "trial_id", "run")


@dataclass(frozen=True)
class FailureGroup:
    """Configurations of one model with one outcome and one error."""

    status: str  # failed | infeasible
    model: str | None
    error: str  # one line
    configs: tuple[str, ...]  # each configuration's settings, "steps=2, batch_size=1" ("" if one)

    def named(self) -> str:
        """The configurations as the listing names them."""
        n, model = len(self.configs), self.model or "the table"
        settings = "; ".join(c for c in self.configs if c)
        if n == 1:
            return f"{model} ({settings})" if settings else model
        if n <= NAMED_CONFIGS and settings:
            return f"{n} trials of {model} ({settings})"
        return f"{n} trials of {model}"


@dataclass(frozen=True)
class Failures:
    groups: tuple[FailureGroup, ...]
    configs: int  # configurations in the table, whatever their outcome

    def count(self, status: str) -> int:
        return sum(len(g.configs) for g in self.groups if g.status == status)

    def text(self) -> str:
        """'Failures: none', or a headline and one line per group."""
        if not self.groups:
            return "Failures: none"
        n = sum(len(g.configs) for g in self.groups)
        head = (
            f"Failures: {n} of {count(self.configs, 'configuration')} "
            f"({self.count(FAILED)} failed, {self.count(INFEASIBLE)} infeasible)"
        )
        return "\n".join([head] + [f"  {g.status:<10}  {g.named()}: {g.error}" for g in self.groups])

    def table(self) -> pd.DataFrame:
        """One row per group, for the report page."""
        return pd.DataFrame(
            [
                {
                    "outcome": g.status,
                    "trials": len(g.configs),
                    "model": g.model,
                    "configurations": "; ".join(c for c in g.configs[:NAMED_CONFIGS] if c)
                    + (
                        f" and {len(g.configs) - NAMED_CONFIGS} more"
                        if len(g.configs) > NAMED_CONFIGS
                        else ""
                    ),
                    "error": g.error,
                }
                for g in self.groups
            ],
            columns=["outcome", "trials", "model", "configurations", "error"],
        )


def find_failures(
    rows: pd.DataFrame, key_cols: Sequence[str] = ("trial_id",), describe_cols: Sequence[str] | None = None
) -> Failures | None:
    """The failed and infeasible configurations of `rows` (one row per window, every outcome), or None
    where the table has no `status` column (nothing to say). A configuration is `key_cols` (none: each
    row its own); it is described by the `describe_cols` (default: a run's configuration columns,
    grid axes included) that vary among its model's configurations."""
    if "status" not in rows.columns:
        return None
    keys = [k for k in key_cols if k in rows.columns]
    config = rows.groupby(keys, dropna=False, sort=False).ngroup() if keys else pd.Series(range(len(rows)))
    config = config.to_numpy()
    status = rows["status"].astype("string").fillna("NA").to_numpy()
    bad = rows[status != "ok"].assign(_config=config[status != "ok"], _status=status[status != "ok"])
    if describe_cols is None:  # results.parquet: grid axes have no role of their own, so are config
        describe_cols = [c for c in rows.columns if COLUMN_ROLES.get(c, CONFIG) == CONFIG]
        if keys:  # settings are the same in every window of a configuration; anything else is a reading
            same = rows.groupby(keys, dropna=False)[describe_cols].nunique(dropna=False).max() <= 1
            describe_cols = [c for c in describe_cols if same.get(c, True)]
    shown = _varying(rows, describe_cols)
    groups: dict[tuple[str, str | None, str], list[tuple[tuple, str]]] = {}
    for _, g in bad.groupby("_config", sort=False):
        outcome = INFEASIBLE if (g["_status"] == INFEASIBLE).any() else FAILED
        first = g.iloc[0]
        model = None if "model" not in g or pd.isna(first["model"]) else str(first["model"])
        error = _one_line(
            g.loc[g["_status"] == outcome, "error"] if "error" in g else pd.Series(dtype=object)
        )
        cols = shown.get(model, [])
        settings = ", ".join(f"{c}={fmt(first[c])}" for c in cols)
        order = tuple(sort_key(first[c]) for c in cols)  # steps=5 before steps=10
        groups.setdefault((outcome, model, error), []).append((order, settings))
    ordered = sorted(
        groups.items(), key=lambda kv: (kv[0][0] != FAILED, str(kv[0][1]), -len(kv[1]), kv[0][2])
    )
    return Failures(
        tuple(
            FailureGroup(s, m, e, tuple(settings for _, settings in sorted(c))) for (s, m, e), c in ordered
        ),
        int(config.max()) + 1 if len(config) else 0,
    )


def _varying(rows: pd.DataFrame, describe_cols: Sequence[str]) -> dict[str | None, list[str]]:
    """Per model, the describing columns whose value differs between its configurations."""
    cols = [c for c in describe_cols if c in rows.columns and c not in _NOT_SHOWN]
    if "model" not in rows.columns:
        return {None: [c for c in cols if rows[c].nunique(dropna=False) > 1]}
    if not cols:
        return {}
    distinct = rows.groupby("model", dropna=False)[cols].nunique(dropna=False)
    return {(None if pd.isna(m) else str(m)): [c for c in cols if n[c] > 1] for m, n in distinct.iterrows()}


def _one_line(errors: pd.Series) -> str:
    """The configuration's error: its windows' most common, first line, cut to `ERROR_CHARS`."""
    errors = errors.dropna().astype(str)
    errors = errors[errors.str.strip() != ""]
    if errors.empty:
        return NO_ERROR
    line = errors.mode().iloc[0].strip().splitlines()[0]
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"
