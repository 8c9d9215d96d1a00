"""The placement is one enum whose values are the strings the sweep file, plan logs and tables hold."""

from __future__ import annotations

import json

import yaml

from t2a_ray.config import Placement, parse_sweep

DOC = {"name": "t", "models": ["noop"], "weights": "tiny", "prompts": {"text": ["rain"]}}


def test_auto_resolves_to_spread_with_two_workers_or_more_and_an_explicit_placement_stays():
    assert Placement.AUTO.resolve(1) is Placement.PACK
    assert Placement.AUTO.resolve(2) is Placement.SPREAD
    assert Placement.PACK.resolve(8) is Placement.PACK
    assert Placement.SPREAD.resolve(1) is Placement.SPREAD


def test_a_parsed_placement_is_the_enum_and_is_written_as_its_plain_string(tmp_path):
    sweep = parse_sweep({**DOC, "placement": "pack"}, base_dir=tmp_path)
    assert sweep.placement is Placement.PACK
    frozen = yaml.safe_load(sweep.to_yaml())["placement"]
    assert type(frozen) is str and frozen == "pack"
    assert json.loads(json.dumps({"placement": sweep.placement})) == {"placement": "pack"}
    assert f"{sweep.placement}" == "pack"
