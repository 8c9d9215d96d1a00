"""The report's flag for windows the GPU throttled (power cap, thermal or hardware slowdown).

A throttled window is kept: its energy was really spent. But energy depends on clocks and temperature,
so a reader comparing configurations should know which windows ran on a slowed card.
"""

from __future__ import annotations

import pandas as pd

from t2a_ray.metering.gpu import throttling


def throttle_note(rows: pd.DataFrame) -> str | None:
    """One line naming how many windows were throttled and why; None when none was (or no column)."""
    if "throttled" not in rows.columns:
        return None
    flagged = rows[rows["throttled"].fillna(False).astype(bool)]
    if flagged.empty:
        return None
    seen = {
        r for text in flagged.get("throttle_reasons", pd.Series(dtype=str)).dropna() for r in text.split(",")
    }
    reasons = sorted(throttling(sorted(seen - {""})))
    return (
        f"Throttled windows: {len(flagged)} of {len(rows)} ({', '.join(reasons) or 'reason not named'}): "
        "the GPU slowed its clocks during them, so their energy and time are not those of an unthrottled "
        "card (column `throttled`); set metering.cooldown_c or check the card's cooling and power."
    )
