"""Each setting's default and allowed values are declared once, beside each other, in the config
dataclasses: the parser reads them, and the sweep file's top-level keys are the `Sweep`'s fields."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from t2a_ray.config import TOP_KEYS, MeteringConfig, SearchConfig, Sweep, parse_sweep
from t2a_ray.errors import ConfigError
from t2a_ray.metering import MeterSettings

DOC = {"name": "t", "models": ["noop"], "weights": "tiny", "prompts": {"text": ["rain"]}}
# (dataclass, where its settings sit in the sweep file)
SECTIONS = [(Sweep, ()), (MeteringConfig, ("metering",)), (SearchConfig, ("search",))]
BOUNDED = [
    (cls, where, f)
    for cls, where in SECTIONS
    for f in dataclasses.fields(cls)
    if "range" in f.metadata and f.metadata.get("key") is None
]


def _doc_with(where: tuple[str, ...], name: str, value) -> dict:
    doc = {**DOC, "quality": {"clap": True}} if where == ("search",) else dict(DOC)
    node = doc
    for k in where:
        node = node.setdefault(k, {"strategy": "pareto"} if k == "search" else {})
    node[name] = value
    return doc


def _read(parsed: Sweep, where: tuple[str, ...], name: str):
    node = parsed
    for k in where:
        node = getattr(node, k)
    return getattr(node, name)


@pytest.mark.parametrize(("cls", "where", "f"), BOUNDED, ids=lambda x: getattr(x, "name", ""))
def test_a_bounded_setting_takes_its_ends_and_refuses_a_value_past_them(cls, where, f, tmp_path):
    kind, low, high = f.metadata["range"]
    assert f.default is None or low <= f.default <= high
    for end in (low, high):
        assert _read(parse_sweep(_doc_with(where, f.name, kind(end)), tmp_path), where, f.name) == end
    key = ".".join([*where, f.name])
    past = kind(high) + 1 if kind is int else high * 2 + 1
    with pytest.raises(ConfigError, match=rf"^{key} = .*: must be (an integer|a number) from "):
        parse_sweep(_doc_with(where, f.name, past), tmp_path)


def test_an_absent_setting_takes_the_default_its_field_declares(tmp_path):
    sweep = parse_sweep(DOC, tmp_path)
    for _, where, f in BOUNDED:
        if where != ("search",):  # a grid sweep keeps the SearchConfig() it always had
            assert _read(sweep, where, f.name) == f.default


def test_the_top_level_keys_are_the_sweeps_fields_and_the_frozen_file_writes_them_in_order(tmp_path):
    assert "carbon" in TOP_KEYS and "carbon_intensity_g_per_kwh" not in TOP_KEYS
    assert len(TOP_KEYS) == len(dataclasses.fields(Sweep))
    frozen = list(yaml.safe_load(parse_sweep(DOC, tmp_path).to_yaml()))
    assert frozen == [k for k in TOP_KEYS if k != "search"]  # a grid sweep writes no search section
    with pytest.raises(
        ConfigError, match=r"^nmae = .*unknown key \(allowed: name, models,.*did you mean 'name'"
    ):
        parse_sweep({**DOC, "nmae": "x"}, tmp_path)


def test_every_metering_value_the_sweep_file_takes_is_one_the_meter_takes():
    meter_knobs = {f.name for f in dataclasses.fields(MeterSettings)}
    shared = [f for _, where, f in BOUNDED if where == ("metering",) and f.name in meter_knobs]
    assert {f.name for f in shared} >= {"sample_interval_s", "cooldown_max_s"}
    for f in shared:
        kind, low, high = f.metadata["range"]
        assert f.default == getattr(MeterSettings(), f.name), f.name
        for end in (low, high):  # the worker builds its meter's settings from the sweep's
            assert getattr(MeterSettings(**{f.name: kind(end)}), f.name) == end
