"""Energy units and carbon: the one conversion to joules and the one carbon formula.

Results carry energy in joules (`_j` columns); tables from elsewhere may carry Wh or kWh (CodeCarbon
writes kWh). They are converted here, once, at the boundary; carbon is computed from joules and an
intensity in g CO2e per kWh, the unit grid operators publish.
"""

from __future__ import annotations

J_PER_KWH = 3.6e6
#: Joules per unit, by the unit's name as `--energy-unit` and column suffixes write it.
JOULES_PER = {"j": 1.0, "wh": 3600.0, "kwh": J_PER_KWH}


def unit_from_suffix(column: str) -> str | None:
    """The energy unit a column name ends with (``gpu_energy_kwh`` → ``kwh``), or None."""
    name = column.lower()
    # Longest suffix first: `_kwh` also ends with `_wh`.
    for unit in sorted(JOULES_PER, key=len, reverse=True):
        if name.endswith(f"_{unit}"):
            return unit
    return None


def carbon_g(energy_j, intensity_g_per_kwh):
    """Grams CO2e of `energy_j` joules drawn at `intensity_g_per_kwh` (numbers, or arrays/Series alike)."""
    return energy_j / J_PER_KWH * intensity_g_per_kwh
