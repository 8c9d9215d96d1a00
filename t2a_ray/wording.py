"""How numbers are said to a user: counts, energies, durations (the progress line, status, the CLI)."""

from __future__ import annotations

from t2a_ray.units import J_PER_KWH


def plural(n: int, noun: str) -> str:
    """ "1 trial", "2 trials"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def format_energy(joules: float | None) -> str:
    if joules is None:
        return "n/a"
    if joules >= J_PER_KWH:
        return f"{joules / J_PER_KWH:.2f} kWh"
    if joules >= 1e3:
        return f"{joules / 1e3:.1f} kJ"
    return f"{joules:.1f} J"


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
