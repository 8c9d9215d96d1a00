"""Full-size architectures, built on the `meta` device (no memory, no compute): parameter counts against
the published ones (adapters/published.py). This is how `random` mode is verified without a GPU; the
GPU benchmark (benchmarks/adapters_fullsize.py) then builds the same configs for real."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from t2a_ray.adapters import adapter_class, get_card, model_ids
from t2a_ray.adapters._diffusers import building, count_parameters
from t2a_ray.adapters._modules import named_modules_of
from t2a_ray.adapters.published import PUBLISHED

MODELS = [m for m in model_ids() if m != "noop"]


@pytest.fixture(scope="module")
def full_size():
    cache: dict[str, dict[str, torch.nn.Module]] = {}

    def get(model_id: str) -> dict[str, torch.nn.Module]:
        if model_id not in cache:
            with building("meta", torch.float16):
                model = adapter_class(model_id)._build("full", {})
            cache[model_id] = named_modules_of(model)
        return cache[model_id]

    return get


def test_every_model_has_published_figures():
    assert set(PUBLISHED) == set(MODELS)


@pytest.mark.parametrize(
    "model_id,component,published,tolerance,source",
    [(m, *entry) for m in MODELS for entry in PUBLISHED[m]],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "",
)
def test_full_size_parameter_count_matches_the_published_one(
    model_id, component, published, tolerance, source, full_size
):
    modules = full_size(model_id)
    ours = (
        count_parameters(modules.values()) if component == "total" else count_parameters([modules[component]])
    )
    assert abs(ours - published) / published <= tolerance, (
        f"{model_id} {component}: {ours / 1e6:.1f} M built, {published / 1e6:.1f} M published ({source})"
    )


@pytest.mark.parametrize("model_id", MODELS)
def test_full_size_builds_in_the_requested_dtype_on_the_requested_device(model_id, full_size):
    for name, module in full_size(model_id).items():
        tensors = list(module.parameters())
        assert tensors, name
        assert {t.device.type for t in tensors} == {"meta"}, name
        assert {t.dtype for t in tensors} == {torch.float16}, name


def test_cards_and_registry_import_without_torch():
    code = (
        "import sys; import t2a_ray.adapters as a; "
        "[a.get_card(m).check({}) for m in a.model_ids()]; "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model_id", MODELS)
def test_cards_are_consistent(model_id):
    card = get_card(model_id)
    assert adapter_class(model_id).card is card
    defaults = card.check({})
    assert set(defaults) >= {"steps", "guidance_scale", "duration_s", "batch_size"}
    assert card.param("duration_s").maximum < 60 or model_id == "noop"
    assert card.sample_rate_hz in (16_000, 44_100) and card.channels in (1, 2)
    assert card.text_max_tokens and card.notes
