"""The models t2a-ray can drive, behind one interface (`base.Adapter`).

Cards (pure data) are listed in `cards.py` with the dotted path of their implementation, which is imported
only when a model is loaded: validating a sweep file or listing models never imports torch/diffusers.
A new adapter is one module with an `Adapter` subclass, plus its card and a line in `cards.py`.
"""

from __future__ import annotations

import importlib

from t2a_ray.adapters.base import Adapter, ModelCard
from t2a_ray.adapters.cards import CARDS, IMPLEMENTATIONS
from t2a_ray.errors import ConfigError, did_you_mean

__all__ = ["Adapter", "ModelCard", "get_card", "adapter_class", "model_ids"]


def model_ids() -> tuple[str, ...]:
    return tuple(CARDS)


def get_card(model_id: str, key_path: str = "models") -> ModelCard:
    try:
        return CARDS[model_id]
    except (KeyError, TypeError):
        raise ConfigError(
            key_path, model_id, f"unknown model (known: {', '.join(CARDS)}){did_you_mean(model_id, CARDS)}"
        ) from None


def adapter_class(model_id: str) -> type[Adapter]:
    """Import and return the implementation of `model_id` (this is where torch gets imported)."""
    module_name, _, class_name = IMPLEMENTATIONS[model_id].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
