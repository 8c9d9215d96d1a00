"""Whether an analysis's quality can mean anything, and the one banner that says when it cannot.

Tiny and random weights make noise, and a tiny or random CLAP scores it at random: fronts, hypervolumes
and a knee drawn from such scores show the tool working, not a result. Each quality value of a run knows
whether its audio and its scorer came from trained weights (quality.parquet's `trained_weights`,
`adapters.base.quality_from_trained_weights`); an analysis with any value that did not carries
`UNTRAINED_BANNER` on the printout, the page and every plot, and recommends no knee.
"""

from __future__ import annotations

import pandas as pd

from t2a_ray.adapters.base import TRAINED_WEIGHT_MODES, WEIGHT_MODES

_UNTRAINED_MODES = [m for m in WEIGHT_MODES if m not in TRAINED_WEIGHT_MODES]

TRAINED_COL = "trained_weights"
UNTRAINED_BANNER = (
    "QUALITY MEANS NOTHING HERE: the audio or its scorer came from untrained (tiny or random) weights, "
    "so the quality scores are noise. The fronts show the tool working, not a result; no knee is "
    "recommended."
)


def quality_is_trained(rows: pd.DataFrame, quality: pd.DataFrame | None = None) -> bool:
    """False when some quality value of the analysis came from untrained weights.

    Read from `trained_weights` (the quality table's, else the rows'); where neither has a value, from
    the rows' `weights` naming an untrained weight mode (a run's results: its scorer follows the sweep's
    weight mode). A table that says neither — most external ones — is taken as meaningful.
    """
    for table in (quality, rows):
        if table is not None and TRAINED_COL in table.columns and table[TRAINED_COL].notna().any():
            return bool(table[TRAINED_COL].dropna().astype(bool).all())
    if "weights" in rows.columns:
        return not rows["weights"].astype("string").isin(_UNTRAINED_MODES).any()
    return True
