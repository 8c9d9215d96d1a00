"""The one small interface every model sits behind.

An adapter is two things:

* a :class:`ModelCard` — pure data (id, hub repo, sample rate, parameters with defaults and limits).
  The sweep file is validated against cards before anything heavy is imported or loaded.
* an :class:`Adapter` subclass — ``load`` builds a resident model on a device in one of three weight
  modes, ``generate`` turns prompts into waveforms and marks the phases of the work for the meter.

The orchestrator never knows which model it drives: it calls ``check``, ``load`` and ``generate``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from t2a_ray.errors import ParameterError, did_you_mean
from t2a_ray.schema import PHASES

WEIGHT_MODES = ("pretrained", "random", "tiny")
#: The weight modes that were trained. Tiny and random weights make noise, and score it by noise.
TRAINED_WEIGHT_MODES = ("pretrained",)
DTYPES = ("float16", "bfloat16", "float32")
TINY_TEXT_TOKENS = 32  # model_max_length of every tiny tokenizer (the `tiny` text encoders read this many)


def quality_from_trained_weights(audio_weights: str | None, scorer_weights: str | None) -> bool:
    """Whether a quality score can mean anything: the audio and the model that scored it (CLAP, the FAD
    embedding) both came from trained weights. quality.parquet's `trained_weights` is this."""
    return audio_weights in TRAINED_WEIGHT_MODES and scorer_weights in TRAINED_WEIGHT_MODES


@dataclass(frozen=True)
class ParamSpec:
    """One generation parameter: its type, default and limits (inclusive)."""

    name: str
    kind: type  # int, float or str
    default: Any
    help: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def allowed(self) -> str:
        """What is allowed, in words, for error messages and `t2a-ray models`."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[self.kind]
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {_num(self.minimum)} to {_num(self.maximum)}{unit}"
        if self.minimum is not None:
            return f"{noun} ≥ {_num(self.minimum)}{unit}"
        if self.maximum is not None:
            return f"{noun} ≤ {_num(self.maximum)}{unit}"
        return noun

    def coerce(self, value: Any, key_path: str) -> Any:
        """Return `value` as this parameter's type, or raise ParameterError naming `key_path`."""
        if value == "default" and (
            self.kind is not str or (self.choices is not None and "default" not in self.choices)
        ):
            return self.default
        given = value  # error messages show the value as the user wrote it (60, not 60.0)
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.minimum is not None:
            ok = value >= self.minimum
        if ok and self.maximum is not None:
            ok = value <= self.maximum
        if not ok:
            raise ParameterError(key_path, given, f"must be {self.allowed()}")
        return value


@dataclass(frozen=True)
class ModeLimits:
    """What one weight mode of a model runs, known from its configuration without loading it.

    `maximum` holds a parameter's largest value where the mode's own configuration is tighter than the
    card's range (tiny stable-audio-open's short window), `why` says what sets it.
    """

    maximum: Mapping[str, float] = field(default_factory=dict)
    why: str = ""
    text_max_tokens: int | None = None  # tokens the text encoder reads; longer prompts are cut


@dataclass(frozen=True)
class ModelCard:
    """What a model is and accepts; pure data, cheap to import."""

    id: str
    summary: str
    pipeline: str  # e.g. "diffusers.AudioLDMPipeline", or "t2a_ray re-implementation"
    repo: str | None  # default hub repo for `pretrained`
    revision: str | None
    sample_rate_hz: int
    channels: int
    params: tuple[ParamSpec, ...]
    weight_modes: tuple[str, ...] = WEIGHT_MODES
    phases: tuple[str, ...] = PHASES
    text_max_tokens: int | None = None  # longer prompts are truncated by the text encoder
    notes: str = ""
    # Extra keys a sweep file may give this model under `options:` (e.g. noop's fault injection).
    options: Mapping[str, str] = field(default_factory=dict)
    # Tighter limits of single weight modes, by mode (see `limits`).
    mode_limits: Mapping[str, ModeLimits] = field(default_factory=dict)

    def limits(self, weights: str) -> ModeLimits:
        """This model's limits in weight mode `weights`: each bounded parameter's maximum (the card's,
        or the mode's where tighter) and the text encoder's tokens. The tiny text encoders all read
        TINY_TEXT_TOKENS, whatever the full-size model reads."""
        own = self.mode_limits.get(weights, ModeLimits())
        maximum = {p.name: p.maximum for p in self.params if p.maximum is not None}
        for name, value in own.maximum.items():
            maximum[name] = min(value, maximum.get(name, value))
        tokens = own.text_max_tokens or self.text_max_tokens
        if weights == "tiny" and tokens is not None:
            tokens = min(tokens, TINY_TEXT_TOKENS)
        return ModeLimits(maximum, own.why, tokens)

    def check_limits(self, params: Mapping[str, Any], weights: str, key_prefix: str = "grid") -> None:
        """Raise ParameterError for a checked grid point that weight mode `weights` cannot run."""
        own = self.mode_limits.get(weights)
        if own is None:
            return
        for name, maximum in self.limits(weights).maximum.items():
            if name in own.maximum and params[name] > maximum:
                unit = f" {self.param(name).unit}" if self.param(name).unit else ""
                raise ParameterError(
                    f"{key_prefix}.{name}",
                    params[name],
                    f"{weights} {self.id} runs {name} up to {_num(round(maximum, 2))}{unit} ({own.why})",
                )

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def check(self, params: Mapping[str, Any], key_prefix: str = "grid") -> dict[str, Any]:
        """Validate and complete one grid point: every parameter gets a value (defaults filled in).

        Raises ParameterError naming the key, the value and what is allowed — before any GPU work,
        like diffusers' `check_inputs`.
        """
        resolved: dict[str, Any] = {}
        for name, value in params.items():
            if name not in self.param_names:
                raise ParameterError(
                    f"{key_prefix}.{name}",
                    value,
                    f"model {self.id!r} has no such parameter (it has: {', '.join(self.param_names)}){did_you_mean(name, self.param_names)}",
                )
            resolved[name] = self.param(name).coerce(value, f"{key_prefix}.{name}")
        for spec in self.params:
            resolved.setdefault(spec.name, spec.default)
        return resolved


class PhaseMarker(Protocol):
    """Called by an adapter at each phase boundary: "from now on, the work is `phase`".

    The meter synchronises the device at each mark, so a phase's energy is the energy of its own GPU
    work. The first phase begins at the start of the window; the last one ends with it.
    """

    def __call__(self, phase: str) -> None: ...


def no_phases(phase: str) -> None:
    """A PhaseMarker that marks nothing (generation outside a metered window)."""


@dataclass
class Generation:
    """What `generate` returns: float32 waveforms shaped (n_waveforms, channels, samples).

    n_waveforms = len(prompts) × batch_size, prompt-major; samples = round(duration_s × sample_rate_hz)
    (a model that computes on a coarser grid generates a little more and cuts it).
    """

    waveforms: np.ndarray
    sample_rate_hz: int
    prompts_truncated: int = 0  # how many prompts the text encoder cut short


class Adapter(abc.ABC):
    """A resident model. Subclasses set `card` and implement `load` and `generate`.

    Abstract hooks: ``load``, ``generate``. Optional: ``prefetch``, ``unload``. A class that sets `card`
    is a model one can load: defining it with a hook left abstract is a TypeError at once (see
    __init_subclass__).
    """

    card: ClassVar[ModelCard]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check a model's hooks when its class is defined, not at its first generation: abc alone
        checks at instantiation, which `load` reaches only after building or loading the weights."""
        super().__init_subclass__(**kwargs)
        if "card" in vars(cls):
            missing = [n for n in dir(cls) if getattr(getattr(cls, n, None), "__isabstractmethod__", False)]
            if missing:
                raise TypeError(f"{cls.__name__} ({cls.card.id}) leaves abstract: {', '.join(missing)}")

    def __init__(self, device: str, dtype: str, weights: str):
        self.device, self.dtype, self.weights = device, dtype, weights
        self.parameter_count: int = 0
        self.memory_bytes: int = 0  # GPU memory held by the loaded weights (0 on the CPU)
        self.revision: str | None = None  # what was actually loaded (hub revision, folder or mode)

    @classmethod
    def check(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        return cls.card.check(params)

    @classmethod
    @abc.abstractmethod
    def load(
        cls,
        *,
        device: str,
        dtype: str,
        weights: str,
        repo: str | None = None,
        revision: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Adapter:
        """Build the model on `device` ("cuda", "cuda:0", "cpu") in weight mode `weights`.

        `repo` is a hub id or a local folder (pretrained only; default: the card's repo).
        """

    @abc.abstractmethod
    def generate(
        self,
        prompts: Sequence[str],
        params: Mapping[str, Any],
        seed: int,
        phases: PhaseMarker = no_phases,
        negative_prompt: str | None = None,
    ) -> Generation:
        """Generate `params["batch_size"]` waveforms per prompt. `params` has passed `check`."""

    def generate_checked(
        self,
        prompts: Sequence[str],
        params: Mapping[str, Any],
        seed: int,
        phases: PhaseMarker = no_phases,
        negative_prompt: str | None = None,
    ) -> Generation:
        """`generate` for a trial's params, complete and checked once when its sweep was launched: what
        a metered window calls, so that no window spends its time checking. By default `generate`
        itself; an adapter whose `generate` checks its inputs overrides this with the generation alone."""
        return self.generate(prompts, params, seed, phases, negative_prompt)

    @classmethod  # noqa: B027 - optional hook, nothing to import by default
    def prefetch(cls) -> None:
        """Import the code `load` will need, touching no device and changing no process-wide state
        that a measurement relies on (it may draw from torch's global random generator).

        A worker calls it in a background thread while it measures its GPU's idle power, so that a
        model's first load is not mostly Python imports (benchmarks/results/prefetch_cpu.md). Errors
        are the caller's to log and ignore: `load` raises them properly.
        """

    def unload(self) -> None:  # noqa: B027 - optional hook, nothing to drop by default
        """Drop references to the model so its memory can be freed."""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
