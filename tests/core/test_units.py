"""Energy units and carbon: the one conversion and the one formula the trial rows and the analysis use."""

import pytest

from t2a_ray.units import JOULES_PER, carbon_g, unit_from_suffix


@pytest.mark.parametrize(
    "column, unit",
    [
        ("gpu_energy_j", "j"),
        ("energy_WH", "wh"),
        ("gpu_energy_kwh", "kwh"),
        ("gpu_energy", None),
        ("fad", None),
    ],
)
def test_unit_from_suffix_prefers_the_longest(column, unit):
    assert unit_from_suffix(column) == unit


def test_carbon_of_one_kwh_is_the_intensity():
    assert JOULES_PER["kwh"] == 3.6e6 and JOULES_PER["wh"] * 1000 == JOULES_PER["kwh"]
    assert carbon_g(3.6e6, 330.7) == pytest.approx(330.7)
    assert carbon_g(1800.0, 300.0) == pytest.approx(0.15)
