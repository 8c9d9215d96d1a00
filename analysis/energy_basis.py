"""What an energy column holds: measured or a CPU estimate, gross or net of idle.

Read from a results table's `energy_method` and the column's name; shared by the analysis
(`pipeline`), its runtime tables (`runtime_tables`) and the report's words (`render`).
"""

from __future__ import annotations

import pandas as pd

from t2a_ray.schema import PHASE_COLUMNS

# Energy columns derived from the window's device energy (the GPU's, else the CPU's).
PER_WAVEFORM_COLUMNS = ("energy_per_waveform_j", "energy_per_audio_s_j")


def estimate_label(rows: pd.DataFrame, energy_col: str) -> str:
    """ "CPU estimate" when every row's energy in `energy_col` is estimated, "k of n … " when some are."""
    if "energy_method" not in rows.columns:
        return ""
    flags = rows["energy_method"].map(lambda m: isinstance(m, str) and is_estimate(m, energy_col))
    k = int(flags.astype(bool).sum())  # an empty object column would sum to ""
    if k == 0:
        return ""
    return "CPU estimate" if k == len(rows) else f"CPU estimate in {k} of {len(rows)} rows"


def is_estimate(method: str, energy_col: str) -> bool:
    """Whether `energy_method` (``gpu:…;cpu:…;dram:…;phases:…``) says `energy_col` is an estimate.

    A per-waveform column holds the energy of the device the model ran on: the GPU's, else the CPU's.
    """
    parts = dict(p.split(":", 1) for p in method.split(";") if ":" in p)
    if not parts:
        return "estimate" in method
    device = energy_col.split("_", 1)[0]
    if energy_col in PHASE_COLUMNS:
        device = "phases"
    elif device not in parts:
        device = "gpu" if parts.get("gpu", "none") != "none" else "cpu"
    return "estimate" in parts.get(device, "")


# Which energy a column holds: the device's whole energy over the window, or that above its idle power.
GROSS = "gross (idle power included)"
NET = "net of idle (idle power × window subtracted)"
_GROSS_COLUMNS = ("gpu_energy_j", "cpu_energy_j", *PER_WAVEFORM_COLUMNS)


def energy_basis(rows: pd.DataFrame, energy_col: str) -> str:
    """`GROSS`, `NET`, or "" where neither is known: a column of another tool, or a CPU-time estimate
    (the process's own share of the CPU, neither the package's whole energy nor that above its idle)."""
    if "net" in energy_col.lower().split("_"):
        return NET
    if energy_col not in _GROSS_COLUMNS or estimate_label(rows, energy_col):
        return ""
    return GROSS
