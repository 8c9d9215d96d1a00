"""Models resident on one worker's device, least recently used evicted when memory runs short."""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from t2a_ray.adapters import Adapter, adapter_class
from t2a_ray.config import ModelSpec, Trial
from t2a_ray.errors import InfeasibleError

log = logging.getLogger(__name__)


class ModelCache:
    """Keeps loaded adapters by `ModelSpec.key`. `loads` counts every load, per key: on a sweep with
    enough memory each (worker, model) is loaded once."""

    def __init__(
        self,
        device: str,
        free_memory: Callable[[], None],
        is_out_of_memory: Callable[[BaseException], bool],
        find_adapter: Callable[[str], type[Adapter]] = adapter_class,
    ):
        self.device = device
        self._find_adapter = find_adapter
        self._free_memory = free_memory
        self._is_oom = is_out_of_memory
        self._resident: OrderedDict[str, Adapter] = OrderedDict()
        self.loads: Counter[str] = Counter()
        self.load_s: dict[str, float] = {}

    def has(self, model: ModelSpec, weights: str, dtype: str) -> bool:
        return self.key(model, weights, dtype) in self._resident

    def get(self, model: ModelSpec, weights: str, dtype: str) -> Adapter:
        key = self.key(model, weights, dtype)
        if key in self._resident:
            self._resident.move_to_end(key)
            return self._resident[key]
        while True:
            try:
                t0 = time.perf_counter()
                adapter = self._find_adapter(model.id).load(
                    device=self.device,
                    dtype=dtype,
                    weights=weights,
                    repo=model.repo,
                    revision=model.revision,
                    options=model.options,
                )
                self.load_s[key] = time.perf_counter() - t0
                break
            except Exception as e:
                if not (isinstance(e, InfeasibleError) or self._is_oom(e)):
                    raise
                if not self._resident:  # nothing left to evict: this model does not fit
                    if isinstance(e, InfeasibleError):
                        raise
                    raise InfeasibleError(f"out of memory loading {model.id}: {e}") from e
                self.evict_lru()
        self.loads[key] += 1
        self._resident[key] = adapter
        return adapter

    def evict_lru(self) -> None:
        key, adapter = self._resident.popitem(last=False)
        log.info("evicting %s to make room", key)
        adapter.unload()
        del adapter
        self._free_memory()

    @staticmethod
    def key(model: ModelSpec, weights: str, dtype: str) -> str:
        return f"{model.key}|{weights}|{dtype}"

    @staticmethod
    def key_of(trial: Trial) -> str:
        """The key of the model a trial runs."""
        return ModelCache.key(trial.model, trial.weights, trial.dtype)
