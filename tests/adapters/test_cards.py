"""The model cards: the parameters every diffusion model shares are declared once and listed in one order."""

from __future__ import annotations

import pytest

from t2a_ray.adapters import get_card, model_ids
from t2a_ray.adapters.runtime_axes import RUNTIME_PARAMS

SHARED = ("steps", "guidance_scale", "duration_s", "batch_size")


@pytest.mark.parametrize("model_id", [m for m in model_ids() if m != "noop"])
def test_a_diffusion_card_lists_the_shared_parameters_first_and_its_runtime_axes_last(model_id):
    card = get_card(model_id)
    names = [p.name for p in card.params]
    runtime = [p.name for p in RUNTIME_PARAMS]
    assert tuple(names[: len(SHARED)]) == SHARED
    assert names[-len(runtime) :] == runtime
    assert set(names) - set(SHARED) - set(runtime) <= {"scheduler"}


def test_the_shared_parameters_differ_between_cards_only_in_their_defaults_and_longest_duration():
    diffusion = [get_card(m) for m in model_ids() if m != "noop"]
    for name in SHARED:
        specs = {card.param(name) for card in diffusion}
        kinds = {(s.kind, s.help, s.unit, s.minimum, s.choices) for s in specs}
        assert len(kinds) == 1, name
        if name not in ("duration_s",):
            assert len({s.maximum for s in specs}) == 1, name
