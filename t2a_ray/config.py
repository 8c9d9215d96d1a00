"""The sweep file: YAML in, frozen typed objects out, expanded into trials.

Every bad value is caught here, before any model loads, as one `ConfigError` line naming the key path,
the value and what is allowed. Model-specific limits come from the adapters' cards (pure data).

A trial is one configuration (model × weights × dtype × one grid point); its repeats and prompts run
inside it. `trial_id` is a hash of the configuration's canonical JSON, so the same configuration gets
the same id on any machine and in any order of keys.
"""

from __future__ import annotations

import copy
import enum
import functools
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

import t2a_ray.metering.gpu as _gpu
from t2a_ray.adapters import get_card
from t2a_ray.adapters.base import DTYPES, WEIGHT_MODES
from t2a_ray.adapters.runtime_axes import identity_params, refusal
from t2a_ray.captions import PROMPT_ID_RE, read_captions
from t2a_ray.errors import ConfigError, ParameterError, did_you_mean
from t2a_ray.metering.meter import MAX_SAMPLE_INTERVAL_S, MeterSettings
from t2a_ray.runfolder import safe_name
from t2a_ray.schema import GPU_ENERGY_SOURCES

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# The prompts are inlined in the frozen sweep.yaml, which every process of a run reads: a larger file
# is refused (split it), not read again and again.
MAX_PROMPT_FILE_BYTES = 8 * 2**20
# A hub repo id: NAME or ORG/NAME (local folders are told apart by existing).
HUB_ID_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|://")
# Folders of the operating system: never a run folder's parent or a model folder. The trees below
# `SYSTEM_TREES` are refused whole (virtual file systems, binaries, libraries, configuration); the
# folders of `SYSTEM_ROOTS` themselves only (a project under /usr/local/src or /home/me is fine).
SYSTEM_TREES = tuple(
    "/bin /boot /dev /etc /lib /lib32 /lib64 /proc /sbin /sys "
    "/usr/bin /usr/include /usr/lib /usr/lib32 /usr/lib64 /usr/libexec /usr/sbin /usr/share".split()
)
SYSTEM_ROOTS = ("/", "/home", "/opt", "/run", "/srv", "/usr", "/usr/local", "/var", *SYSTEM_TREES)
MAX_DEPTH = 16  # a sweep file nests 5 levels at most (models[0].options.fault_when.steps)
MAX_ALIAS_VALUES = 100_000  # values YAML aliases may add to a file beyond those written out
MAX_TRIALS = 100_000


class Placement(enum.StrEnum):
    """Where a configuration's repeats run: `spread` over different GPUs (one unit per repeat), `pack`
    on one (one unit per configuration); `auto` is spread with two workers or more, resolved and frozen
    at launch (`resolve`). A `str` enum: sweep.yaml, plan logs and tables hold the same strings."""

    AUTO = "auto"
    SPREAD = "spread"
    PACK = "pack"

    def resolve(self, n_workers: int) -> Placement:
        """`auto` is `spread` with two workers or more (GPU and configuration not confounded), else
        `pack`; the others as they are."""
        if self is Placement.AUTO:
            return Placement.SPREAD if n_workers >= 2 else Placement.PACK
        return self


FROZEN_PLACEMENTS = (Placement.SPREAD, Placement.PACK)  # the placements a launch resolves to


def bounded(default: float | None, low: float, high: float, kind: type | None = None) -> Any:
    """A number setting: its default and the range a sweep file may give, declared together (the
    parser reads the range: `_setting`). `kind` (int or float) is the default's type unless given."""
    return field(default=default, metadata={"range": (kind or type(default), low, high)})


def one_of(allowed: tuple[str, ...], default: str | None = None) -> Any:
    """A setting chosen from `allowed`, by default the first (or `default`), declared together."""
    return field(default=allowed[0] if default is None else default, metadata={"choices": tuple(allowed)})


@dataclass(frozen=True)
class ModelSpec:
    id: str
    repo: str | None = None  # hub id or local folder (pretrained); None: the card's default
    revision: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What identifies a loaded model on a worker (same key: reuse the resident model)."""
        return _canonical(
            {"id": self.id, "repo": self.repo, "revision": self.revision, "options": dict(self.options)}
        )


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@dataclass(frozen=True)
class MeteringConfig:
    # repeat a generation inside one window until it lasts this long...
    min_window_s: float = bounded(0.0, 0.0, 3600.0)
    # ...and until it holds this many waveforms (ceil(n / batch_size) generations): the paper's batch
    # experiment meters 10 waveforms as 10×1, 5×2, 2×5 and 1×10 generations
    min_waveforms_per_window: int = bounded(1, 1, 10_000)
    # idle power measured for this long on each GPU before the sweep
    idle_baseline_s: float = bounded(10.0, 0.0, 3600.0)
    sample_interval_s: float = bounded(MeterSettings.sample_interval_s, 0.001, MAX_SAMPLE_INTERVAL_S)
    # "power-integral" meters a card whose energy counter is absent or frozen
    gpu: str = one_of(GPU_ENERGY_SOURCES, "counter")
    # before each window, wait until the GPU is this cool (°C)...
    cooldown_c: float | None = bounded(None, 0.0, 150.0, float)
    cooldown_max_s: float = bounded(MeterSettings.cooldown_max_s, 0.0, 3600.0)  # ...for at most this long

    def min_generations(self, batch_size: int) -> int:
        """Generations a window holds at least: `min_waveforms_per_window` waveforms, rounded up."""
        return -(-self.min_waveforms_per_window // batch_size)


CLAP_PROTOCOLS = ("stable-audio-metrics",)  # how CLAP scores are computed (README: energy and quality)
FAD_EMBEDDINGS = ("fadtk",)  # how FAD embedding rows are made


@dataclass(frozen=True)
class QualityConfig:
    clap: bool | str = False  # True: the default CLAP checkpoint; a string: a hub id or folder
    clap_protocol: str = one_of(CLAP_PROTOCOLS)
    fad_reference: str | None = None  # folder of reference audio (absolute once loaded)
    fad_embedding: str = one_of(FAD_EMBEDDINGS)

    @property
    def clap_checkpoint(self) -> str | None:
        return self.clap if isinstance(self.clap, str) else None

    def to_doc(self) -> dict[str, Any]:
        """The `quality` section as `_quality` reads it back."""
        clap = {"protocol": self.clap_protocol, "checkpoint": self.clap_checkpoint} if self.clap else False
        fad = {"reference": self.fad_reference, "embedding": self.fad_embedding}
        return {"clap": clap, "fad": fad if self.fad_reference else None}


SEARCH_STRATEGIES = ("grid", "pareto")
# A search's budget: its kind and the range of its amount.
BUDGET_RANGES: Mapping[str, tuple[type, float, float]] = {
    "energy_fraction": (float, 0.001, 1.0),
    "trials": (int, 1, MAX_TRIALS),
    "energy_j": (float, 1e-9, 1e18),
}
BUDGET_KINDS = tuple(BUDGET_RANGES)
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SearchConfig:
    """`grid` runs every trial; `pareto` runs the trials an adaptive search chooses, within `budget`
    (kind in BUDGET_KINDS, value): see `t2a_ray.analysis.search`."""

    strategy: str = one_of(SEARCH_STRATEGIES)
    budget_kind: str = one_of(BUDGET_KINDS)
    budget: float = 0.3  # in BUDGET_RANGES[budget_kind]
    seed: int = bounded(0, 0, MAX_SEED)


@dataclass(frozen=True)
class Sweep:
    name: str
    models: tuple[ModelSpec, ...]
    weights: str
    dtype: str  # float16 | bfloat16 | float32 (`auto` is resolved when the file is loaded)
    grid: Mapping[str, tuple[Any, ...]]  # axis -> values (scalars become 1-tuples)
    prompts: tuple[Prompt, ...]
    negative_prompt: str | None = None
    repeats: int = bounded(1, 1, 10_000)
    warmup: int = bounded(1, 0, 100)
    seed: int = bounded(0, 0, MAX_SEED)
    metering: MeteringConfig = MeteringConfig()
    quality: QualityConfig = QualityConfig()
    # the file's `carbon: {intensity_g_per_kwh: …}`
    carbon_intensity_g_per_kwh: float | None = field(
        default=None, metadata={"key": "carbon", "range": (float, 0.0, 10_000.0)}
    )
    save_audio: bool = False
    # a trial whose worker process died is retried this often, then `failed`
    max_trial_retries: int = bounded(2, 0, 100)
    placement: Placement = one_of(tuple(p.value for p in Placement), Placement.AUTO)
    search: SearchConfig = SearchConfig()

    def trials(self) -> tuple[Trial, ...]:
        """Every configuration of the grid, expanded once (on first use) and kept — or, for a sweep
        read from a run folder, the trials frozen at launch (`with_trials`)."""
        return self._trials_by_id[1]

    def with_trials(self, trials: tuple[Trial, ...]) -> Sweep:
        """This sweep with `trials` as its trials, never expanded from the grid: a run's frozen list
        (`trials.jsonl`), so that what runs does not depend on what the cards say today."""
        sweep = replace(self)
        sweep.__dict__["_trials_by_id"] = ({t.trial_id: t for t in trials}, tuple(trials))
        return sweep

    def trial(self, trial_id: str) -> Trial:
        return self._trials_by_id[0][trial_id]

    @functools.cached_property  # writes the instance's __dict__, which a frozen dataclass allows
    def _trials_by_id(self) -> tuple[dict[str, Trial], tuple[Trial, ...]]:
        trials = tuple(expand(self))
        return {t.trial_id: t for t in trials}, trials

    def axes(self) -> dict[str, type]:
        """Every parameter of the sweep's models, with its type: the grid-axis columns of the results."""
        return {spec.name: spec.kind for m in self.models for spec in get_card(m.id).params}

    def to_yaml(self) -> str:
        """The resolved sweep, self-contained (prompts inlined): what `sweep.yaml` freezes."""
        doc = {
            "name": self.name,
            "models": [_model_doc(m) for m in self.models],
            "weights": self.weights,
            "dtype": self.dtype,
            "grid": {k: list(v) if len(v) != 1 else v[0] for k, v in self.grid.items()},
            "prompts": {"items": [{"id": p.id, "text": p.text} for p in self.prompts]},
            "negative_prompt": self.negative_prompt,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "seed": self.seed,
            "metering": {k: v for k, v in asdict(self.metering).items() if v is not None},  # None: unset
            "quality": self.quality.to_doc(),
            "carbon": {"intensity_g_per_kwh": self.carbon_intensity_g_per_kwh},
            "save_audio": self.save_audio,
            "max_trial_retries": self.max_trial_retries,
            "placement": str(self.placement),  # SafeDumper writes plain strings only
        }
        if self.search != SearchConfig():  # a grid sweep's frozen file stays as it always was
            doc["search"] = {
                "strategy": self.search.strategy,
                "budget": {self.search.budget_kind: self.search.budget},
                "seed": self.search.seed,
            }
        return yaml.dump(doc, Dumper=_FrozenDumper, sort_keys=False, allow_unicode=True, width=120)


class _FrozenDumper(yaml.SafeDumper):
    """A SafeDumper that writes any text so that it reads back identical.

    PyYAML writes U+0085 (NEL) raw inside a single-quoted or plain scalar, and reads it back folded
    into a space: a prompt holding one would change between the sweep file and the frozen sweep.yaml
    the workers read. Double quotes escape it (as `\\N`).
    """


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = '"' if any(c in text for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_FrozenDumper.add_representer(str, _represent_str)


@dataclass(frozen=True)
class Trial:
    trial_id: str
    model: ModelSpec
    weights: str
    dtype: str
    params: Mapping[str, Any]  # every parameter of the model, defaults resolved
    seed: int

    def to_record(self) -> dict[str, Any]:
        """The trial as one line of a run's `trials.jsonl` (params as resolved at launch)."""
        return {
            "trial_id": self.trial_id,
            "model": {
                "id": self.model.id,
                "repo": self.model.repo,
                "revision": self.model.revision,
                "options": dict(self.model.options),
            },
            "weights": self.weights,
            "dtype": self.dtype,
            "params": dict(self.params),
            "seed": self.seed,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any], models: Mapping[str, ModelSpec]) -> Trial:
        """A trial read back from `to_record`'s form, its model one of `models` (by `ModelSpec.key`):
        nothing is coerced or checked again, and its id is the one written at launch."""
        m = doc["model"]
        spec = ModelSpec(m["id"], m.get("repo"), m.get("revision"), dict(m.get("options") or {}))
        return cls(
            str(doc["trial_id"]),
            models.get(spec.key, spec),
            str(doc["weights"]),
            str(doc["dtype"]),
            dict(doc["params"]),
            int(doc["seed"]),
        )

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "repo": self.model.repo,
            "revision": self.model.revision,
            "options": dict(self.model.options),
            "weights": self.weights,
            "dtype": self.dtype,
            "params": identity_params(self.params),
            "seed": self.seed,
        }


# --------------------------------------------------------------------------------------------------
# Loading


TOP_KEYS = tuple(f.metadata.get("key", f.name) for f in fields(Sweep))  # the sweep file's keys


def load_sweep(
    path: str | Path,
    name: str | None = None,
    overrides: tuple[str, ...] = (),
    device: str | None = None,
    *,
    expand: bool = True,
) -> Sweep:
    """Read and validate a sweep file. Relative paths inside it are relative to its folder.

    `overrides` ("KEY.PATH=VALUE", the value in YAML) change the file's values before validation,
    e.g. `weights=random` or `grid.steps=[10,25]`: the paper's configs run as is on random weights.
    `device` ("cpu" or "cuda": where the sweep will run) resolves `dtype: auto`; see `parse_sweep`.
    """
    path = Path(path)
    source = str(path)
    try:
        if not path.is_file():
            raise ConfigError("--config", str(path), "no such file", None)
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError("--config", str(path), f"cannot be read ({e.strerror})", None) from None
    text = ""
    try:
        text = data.decode("utf-8")
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader that refuses duplicate keys
    except ConfigError as e:  # a duplicated key
        raise ConfigError(e.key_path, e.value, e.allowed, source) from None
    except UnicodeDecodeError:
        raise ConfigError("(file)", path.name, "not UTF-8 text", source) from None
    except yaml.YAMLError as e:
        where, problem = _yaml_problem(e, text)
        raise ConfigError("(yaml)", where, f"invalid YAML: {problem}", source) from None
    except (ValueError, OverflowError) as e:
        # A tagged or implicit value Python cannot build: a date that does not exist (2024-02-30), an
        # integer of more than 4300 digits.
        reason = str(e).split(";")[0]
        raise ConfigError("(yaml)", "a scalar", f"invalid YAML: {reason}", source) from None
    try:
        doc = apply_overrides(doc, overrides)
        return parse_sweep(
            doc,
            base_dir=path.parent.resolve(),
            default_name=path.stem,
            name=name,
            device=device,
            expand=expand,
        )
    except ConfigError as e:
        if e.source is None:
            raise ConfigError(e.key_path, e.value, e.allowed, source) from None
        raise


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key given twice in one mapping is a ConfigError naming the
    key's path and both lines (PyYAML keeps the last silently; YAML 1.2 says keys are unique), and that a
    node deeper than MAX_DEPTH stops the reading where it starts: PyYAML composes nodes by recursion, and
    a file of deep brackets would otherwise run it into Python's recursion limit, where a library's own
    hooks fail too, on stderr."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._path: list[str] = []  # the node being composed: "" (the document), "key" or "[i]" each

    def compose_node(self, parent, index):
        if len(self._path) > MAX_DEPTH:  # the document's node and MAX_DEPTH levels are on the path
            raise yaml.composer.ComposerError(
                problem=f"nested too deeply (at most {MAX_DEPTH} levels; a sweep file needs 5)",
                problem_mark=self.peek_event().start_mark,
            )
        if isinstance(index, yaml.ScalarNode):  # the value of a mapping key
            self._path.append(str(index.value))
        elif isinstance(index, int):  # an item of a sequence
            self._path.append(f"[{index}]")
        else:
            self._path.append("")
        try:
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        first: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            if key.value in first:
                parts = [p for p in (*self._path, str(key.value)) if p]
                path = "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(parts))
                raise ConfigError(
                    path,
                    value.value if isinstance(value, yaml.ScalarNode) else "…",
                    f"given twice (lines {first[key.value].start_mark.line + 1} and "
                    f"{key.start_mark.line + 1}): give each key once",
                )
            first[key.value] = key
        return node


def _yaml_problem(e: yaml.YAMLError, text: str) -> tuple[str, str]:
    """Where in `text` PyYAML's error `e` is ("line L, column C") and what it says."""
    mark = getattr(e, "problem_mark", None)
    # A ReaderError (a character YAML refuses) has a position but no mark: make one.
    if mark is None and isinstance(getattr(e, "position", None), int):
        line = text.count("\n", 0, e.position)
        mark = yaml.Mark("", e.position, line, e.position - (text.rfind("\n", 0, e.position) + 1), None, None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    problem = getattr(e, "problem", None) or (str(e).splitlines()[0] if mark else None) or "cannot be parsed"
    return where, problem


def apply_overrides(doc: Any, overrides: tuple[str, ...]) -> Any:
    """A copy of `doc` with each "a.b.c=VALUE" set (VALUE read as YAML; missing mappings created)."""
    if not overrides:
        return doc
    doc = copy.deepcopy(doc)
    for item in overrides:
        key_path, sep, text = item.partition("=")
        keys = key_path.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError("--set", item, "must be KEY=VALUE, e.g. weights=random or grid.steps=[10,25]")
        try:
            value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
        except yaml.YAMLError as e:
            where, problem = _yaml_problem(e, text)
            raise ConfigError("--set", item, f"the value is not valid YAML: {problem} ({where})") from None
        except ConfigError as e:  # a key given twice inside the value
            raise ConfigError("--set", item, f"the value gives {e.key_path} twice") from None
        if not isinstance(doc, Mapping):
            raise ConfigError("--set", item, "the sweep file must be a mapping of keys")
        node = doc
        for k in keys[:-1]:
            if node.get(k) is None:
                node[k] = {}
            node = node[k]
            if not isinstance(node, dict):
                raise ConfigError("--set", item, f"{k!r} holds a value, not a mapping of keys")
        node[keys[-1]] = value
    return doc


def parse_sweep(
    doc: Any,
    base_dir: Path,
    default_name: str = "sweep",
    name: str | None = None,
    device: str | None = None,
    *,
    expand: bool = True,
) -> Sweep:
    """Validate a sweep document into a `Sweep` whose trials are expanded (and checked) once.
    `expand=False`: not expanded here — a run folder's frozen sweep, whose trials come from its
    `trials.jsonl` (`t2a_ray.frozen`).

    `dtype: auto` becomes float32 when `device` is "cpu" and float16 when it is "cuda"; with no
    `device`, on whether this machine has a visible GPU. The sweep returned never says `auto`, so its
    frozen `sweep.yaml` records the dtype that runs.
    """
    if not isinstance(doc, Mapping):
        raise ConfigError("(top level)", doc, "must be a mapping of keys (name, models, grid, prompts, …)")
    _check_shape(doc)
    _reject_unknown(doc, TOP_KEYS, "")

    name = name if name is not None else doc.get("name", default_name)
    name_key = "--name" if "name" not in doc or name != doc.get("name") else "name"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            name_key, name, "must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )

    models = _models(doc.get("models"), base_dir)
    weights = _choice(doc, "weights", WEIGHT_MODES, "pretrained")
    dtype = _choice(doc, "dtype", (*DTYPES, "auto"), "auto")
    if dtype == "auto":
        dtype = "float32" if _device(device) == "cpu" else "float16"
    for i, m in enumerate(models):
        card = get_card(m.id)
        if weights not in card.weight_modes:
            raise ConfigError(
                "weights", weights, f"model {m.id!r} supports only {', '.join(card.weight_modes)}"
            )
        for key in m.options:
            if key not in card.options:
                raise ConfigError(
                    f"models[{i}].options.{key}",
                    m.options[key],
                    f"model {m.id!r} takes options: {', '.join(card.options) or 'none'}",
                )
    grid = _grid(doc.get("grid", {}), models)
    prompts = _prompts(doc.get("prompts"), base_dir)
    negative = doc.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise ConfigError("negative_prompt", negative, "must be a string or null")
    metering = _section(doc, "metering", MeteringConfig)
    quality = _quality(doc.get("quality"), base_dir)
    carbon = doc.get("carbon")
    carbon = {} if carbon is None else carbon
    if not isinstance(carbon, Mapping):
        raise ConfigError("carbon", carbon, "must be a mapping like {intensity_g_per_kwh: 300}")
    _reject_unknown(carbon, ("intensity_g_per_kwh",), "carbon.")
    intensity = carbon.get("intensity_g_per_kwh")
    if intensity is not None:
        intensity = _setting(carbon, Sweep, "carbon_intensity_g_per_kwh", "intensity_g_per_kwh", "carbon.")
    save_audio = doc.get("save_audio", False)
    if not isinstance(save_audio, bool):
        raise ConfigError("save_audio", save_audio, "must be true or false")

    sweep = Sweep(
        name=name,
        models=models,
        weights=weights,
        dtype=dtype,
        grid=grid,
        prompts=prompts,
        negative_prompt=negative,
        repeats=_setting(doc, Sweep, "repeats"),
        warmup=_setting(doc, Sweep, "warmup"),
        seed=_setting(doc, Sweep, "seed"),
        metering=metering,
        quality=quality,
        carbon_intensity_g_per_kwh=intensity,
        save_audio=save_audio,
        max_trial_retries=_setting(doc, Sweep, "max_trial_retries"),
        placement=Placement(_setting(doc, Sweep, "placement")),
        search=_search(doc.get("search"), quality),
    )
    if expand:
        sweep.trials()  # validates every grid point against every model's card and weight mode
    if device is not None:
        check_device(sweep, device)
    return sweep


def check_device(sweep: Sweep, device: str) -> None:
    """Refuse what cannot run on `device` ("cpu" or "cuda") before anything loads: a runtime that
    `runtime_axes.refusal` names (CUDA graphs or fp8 on the CPU, a precision without torchao)."""
    for t in sweep.trials():
        refused = refusal(t.params, device)
        if refused is not None:
            axis, value, why = refused
            raise ConfigError(f"grid.{axis}", value, f"{why} (model {t.model.id!r})")


def prompt_notes(sweep: Sweep, truncated: Mapping[str, set[str]] | None = None) -> list[str]:
    """One note per model whose text encoder cuts prompts short, naming them and its token limit.

    `truncated` (model id -> prompt ids) is what a run recorded (`prompt_truncated`); without it, the
    prompts certain to be cut: more words than the encoder reads tokens (every tokenizer these models
    use makes at least one token of a word), found before anything loads. Longer words can make a
    shorter prompt too long: the run records those.
    """
    notes = []
    for m in sweep.models:
        limit = get_card(m.id).limits(sweep.weights).text_max_tokens
        if limit is None:
            continue
        if truncated is None:
            ids = [p.id for p in sweep.prompts if len(p.text.split()) > limit]
        else:
            ids = sorted(truncated.get(m.id, ()))
        if ids:
            shown = ", ".join(repr(i) for i in ids[:5]) + (
                f" and {len(ids) - 5} more" if len(ids) > 5 else ""
            )
            one = len(ids) == 1
            verb = ("is" if one else "are") if truncated is None else ("was" if one else "were")
            notes.append(
                f"prompt{'' if one else 's'} {shown} {verb} cut short: "
                f"{m.id} ({sweep.weights}) reads {limit} tokens of a prompt."
            )
    return notes


def _device(device: str | None) -> str:
    if device is None:
        return "cuda" if _gpu.visible_gpu_count() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device = {device!r}: must be 'cpu' or 'cuda'")
    return device


def _models(value: Any, base_dir: Path) -> tuple[ModelSpec, ...]:
    if value is None or value == []:
        raise ConfigError("models", value, "must be a non-empty list of model ids (see `t2a-ray models`)")
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(
            "models", value, "must be a list of model ids or {id, repo, revision, options} mappings"
        )
    specs = []
    for i, entry in enumerate(value):
        key = f"models[{i}]"
        if isinstance(entry, str):
            get_card(entry, key)
            specs.append(ModelSpec(entry))
            continue
        if not isinstance(entry, Mapping):
            raise ConfigError(key, entry, "must be a model id or a mapping {id, repo, revision, options}")
        _reject_unknown(entry, ("id", "repo", "revision", "options"), f"{key}.")
        get_card(entry.get("id"), f"{key}.id")
        for opt in ("repo", "revision"):
            if entry.get(opt) is not None and not isinstance(entry[opt], str):
                raise ConfigError(f"{key}.{opt}", entry[opt], "must be a string")
        options = entry.get("options")
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ConfigError(f"{key}.options", options, "must be a mapping")
        repo = entry.get("repo")
        if repo is not None:
            repo = _repo(f"{key}.repo", repo, base_dir)
        spec = ModelSpec(entry["id"], repo, entry.get("revision"), dict(options))
        try:
            spec.key  # noqa: B018 — the identity must hash: mapping keys of one type
        except TypeError:
            raise ConfigError(
                f"{key}.options", options, "must map option names to values (every mapping key a string)"
            ) from None
        specs.append(spec)
    keys: set[str] = set()
    for i, s in enumerate(specs):
        if s.key in keys:
            raise ConfigError(f"models[{i}]", s.id, "is listed twice")
        keys.add(s.key)
    return tuple(specs)


def _repo(key: str, repo: str, base_dir: Path) -> str:
    """A hub id as given, or an existing model folder as an absolute path (relative to the sweep file)."""
    allowed = "must be a hub id (NAME or ORG/NAME) or an existing local folder"
    if URL_RE.search(repo):
        raise ConfigError(key, repo, f"{allowed}, not a URL")
    try:
        path = (base_dir / Path(repo).expanduser()).resolve()
        if path.is_dir():
            if is_system_path(path):
                raise ConfigError(key, repo, f"{allowed}; {path} is a folder of the operating system")
            return str(path)
        if path.exists():
            raise ConfigError(key, repo, f"{allowed}; {path} is a file")
    except OSError as e:
        raise ConfigError(key, repo, f"{allowed} (cannot be read: {e.strerror})") from None
    if not HUB_ID_RE.match(repo):
        raise ConfigError(key, repo, f"{allowed}; no such folder ({path})")
    return repo


def is_system_path(path: str | Path) -> bool:
    """True for a folder of the operating system (SYSTEM_ROOTS) or one inside SYSTEM_TREES, after
    following links."""
    resolved = Path(path).resolve()
    return str(resolved) in SYSTEM_ROOTS or any(resolved.is_relative_to(t) for t in SYSTEM_TREES)


def _grid(value: Any, models: tuple[ModelSpec, ...]) -> dict[str, tuple[Any, ...]]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError("grid", value, "must be a mapping of parameter: value or [values]")
    known = sorted({p for m in models for p in get_card(m.id).param_names})
    grid: dict[str, tuple[Any, ...]] = {}
    for axis, values in value.items():
        if not isinstance(axis, str) or axis not in known:
            raise ConfigError(
                f"grid.{axis}",
                values,
                f"unknown parameter (known: {', '.join(known)}){did_you_mean(axis, known)}",
            )
        if isinstance(values, list):
            if not values:
                raise ConfigError(
                    f"grid.{axis}", values, "an empty list expands to zero trials; give at least one value"
                )
            seen: set[str] = set()
            for v in values:
                if _canonical(v) in seen:
                    raise ConfigError(f"grid.{axis}", values, f"{v!r} given twice")
                seen.add(_canonical(v))
            grid[axis] = tuple(values)
        elif isinstance(values, (Mapping, set, tuple)):
            raise ConfigError(f"grid.{axis}", values, "must be a value or a list of values")
        else:
            grid[axis] = (values,)
    return grid


def _prompts(value: Any, base_dir: Path) -> tuple[Prompt, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            "prompts", value, "must be a mapping: {text: [...]} or {file: captions.csv|prompts.txt}"
        )
    _reject_unknown(value, ("text", "file", "items", "id_col", "caption_col"), "prompts.")
    if sum(k in value for k in ("text", "file", "items")) != 1:
        raise ConfigError("prompts", dict(value), "give exactly one of text, file or items")
    for col in ("id_col", "caption_col"):
        if col in value and ("file" not in value or not isinstance(value[col], str) or not value[col]):
            raise ConfigError(
                f"prompts.{col}", value[col], "must be a column name of the CSV given as prompts.file"
            )
    if "text" in value:
        texts = value["text"]
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts:
            raise ConfigError("prompts.text", texts, "must be a non-empty list of strings")
        prompts = [Prompt(f"p{i}", _prompt_text(f"prompts.text[{i}]", t)) for i, t in enumerate(texts)]
    elif "items" in value:
        items = value["items"]
        if not isinstance(items, list) or not items:
            raise ConfigError("prompts.items", items, "must be a non-empty list of {id, text}")
        prompts = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or set(item) != {"id", "text"}:
                raise ConfigError(f"prompts.items[{i}]", item, "must be a mapping {id, text}")
            prompts.append(
                Prompt(
                    _prompt_id(f"prompts.items[{i}].id", item["id"]),
                    _prompt_text(f"prompts.items[{i}].text", item["text"]),
                )
            )
    else:
        prompts = _prompt_file(value["file"], base_dir, value.get("id_col"), value.get("caption_col"))
    names: dict[str, str] = {}  # each id's audio file name (runfolder.safe_name) -> the id
    for p in prompts:
        if safe_name(p.id) in names:
            other = names[safe_name(p.id)]
            raise ConfigError(
                "prompts.file" if "file" in value else "prompts",
                p.id,
                "prompt ids must be unique"
                + (
                    "" if other == p.id else f" as file names ({other!r} and it are both {safe_name(p.id)!r})"
                ),
            )
        names[safe_name(p.id)] = p.id
    return tuple(prompts)


def _prompt_file(value: Any, base_dir: Path, id_col: str | None, caption_col: str | None) -> list[Prompt]:
    key = "prompts.file"
    if not isinstance(value, str) or not value:
        raise ConfigError(
            key, value, "must be the path of a .csv (id, caption) or .txt (one prompt a line) file"
        )
    try:
        path = (base_dir / value).resolve()
        if not path.is_file():
            raise ConfigError(key, value, f"no such file ({path})")
        if path.suffix.lower() not in (".csv", ".txt"):
            raise ConfigError(
                key, value, "must end in .csv (columns: id, caption) or .txt (one prompt a line)"
            )
        size = path.stat().st_size
        if size > MAX_PROMPT_FILE_BYTES:
            raise ConfigError(
                key,
                value,
                f"is {size / 2**20:.1f} MiB; a prompts file may hold {MAX_PROMPT_FILE_BYTES // 2**20} MiB at most "
                "(its prompts are copied into sweep.yaml, which every process reads): split it",
            )
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(key, value, f"cannot be read ({e.strerror})") from None
    if b"\x00" in data:
        raise ConfigError(key, value, "holds NUL bytes: not a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(key, value, f"is not UTF-8 text (bad byte at offset {e.start})") from None
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in text.splitlines()]
        texts = [line for line in lines if line]
        if not texts:
            raise ConfigError(key, value, "holds no prompts (one prompt a line)")
        return [Prompt(f"p{i}", _prompt_text(f"{key} line {i + 1}", t)) for i, t in enumerate(texts)]
    return [
        Prompt(pid, _prompt_text(where, caption))
        for pid, caption, where in read_captions(text, key, value, id_col, caption_col, _prompt_id)
    ]


def _prompt_text(key: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, text, "must be a non-empty string")
    if "\x00" in text:
        raise ConfigError(key, text, "must not hold NUL characters")
    return text


def _prompt_id(key: str, pid: Any) -> str:
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid)
    if not isinstance(pid, str) or not PROMPT_ID_RE.match(pid):
        raise ConfigError(
            key, pid, "must be 1–100 letters, digits, '.', '_', '#' or '-', starting with a letter or digit"
        )
    return pid


def _quality(value: Any, base_dir: Path) -> QualityConfig:
    if value is None:
        return QualityConfig()
    if not isinstance(value, Mapping):
        raise ConfigError("quality", value, "must be a mapping like {clap: true, fad: {reference: DIR}}")
    _reject_unknown(value, ("clap", "fad"), "quality.")

    def choose(key_path: str, value: Any, name: str) -> str:  # absent or null: the field's default
        return _setting({} if value is None else {key_path: value}, QualityConfig, name, key_path)

    clap, protocol = value.get("clap", False), QualityConfig.clap_protocol
    if isinstance(clap, Mapping):  # {protocol: ..., checkpoint: ...}
        _reject_unknown(clap, ("protocol", "checkpoint"), "quality.clap.")
        protocol = choose("quality.clap.protocol", clap.get("protocol"), "clap_protocol")
        clap = clap.get("checkpoint") or True
    if not isinstance(clap, (bool, str)) or clap == "":
        raise ConfigError(
            "quality.clap",
            clap,
            "must be true, false, a CLAP checkpoint (hub id or folder), or "
            "{protocol: stable-audio-metrics, checkpoint: ID_OR_DIR}",
        )
    fad = value.get("fad")
    if fad is None:
        return QualityConfig(clap=clap, clap_protocol=protocol)
    if not isinstance(fad, Mapping) or not isinstance(fad.get("reference"), str):
        raise ConfigError("quality.fad", fad, "must be null or {reference: DIR_OF_AUDIO, embedding: fadtk}")
    _reject_unknown(fad, ("reference", "embedding"), "quality.fad.")
    try:
        ref = (base_dir / fad["reference"]).resolve()
        if not ref.is_dir():
            raise ConfigError("quality.fad.reference", fad["reference"], f"no such folder ({ref})")
    except OSError as e:
        raise ConfigError(
            "quality.fad.reference", fad["reference"], f"cannot be read ({e.strerror})"
        ) from None
    return QualityConfig(
        clap=clap,
        clap_protocol=protocol,
        fad_reference=str(ref),
        fad_embedding=choose("quality.fad.embedding", fad.get("embedding"), "fad_embedding"),
    )


def _search(value: Any, quality: QualityConfig) -> SearchConfig:
    if value is None:
        return SearchConfig()
    if not isinstance(value, Mapping):
        raise ConfigError(
            "search", value, "must be a mapping like {strategy: pareto, budget: {energy_fraction: 0.3}}"
        )
    _reject_unknown(value, ("strategy", "budget", "seed"), "search.")
    strategy = _setting(value, SearchConfig, "strategy", prefix="search.")
    seed = _setting(value, SearchConfig, "seed", prefix="search.")
    budget = value.get("budget")
    if strategy == "grid":
        if budget is not None:
            raise ConfigError(
                "search.budget", budget, "applies to strategy pareto only (grid runs every trial)"
            )
        return SearchConfig()  # a grid has no use for a seed: its frozen file stays as it always was
    if budget is None:
        budget = {"energy_fraction": SearchConfig.budget}
    if not isinstance(budget, Mapping) or len(budget) != 1:
        raise ConfigError(
            "search.budget", budget, "must be one of {energy_fraction: F}, {trials: N}, {energy_j: E}"
        )
    _reject_unknown(budget, BUDGET_KINDS, "search.budget.")
    ((kind, amount),) = budget.items()
    amount = _number(f"search.budget.{kind}", amount, *BUDGET_RANGES[kind])
    if not quality.clap and not quality.fad_reference:
        raise ConfigError(
            "search.strategy", strategy, "needs a quality to search for: set quality.clap or quality.fad"
        )
    return SearchConfig(strategy, kind, amount, seed)


def _section(doc: Mapping, key: str, cls: type):
    """A mapping of `cls`'s settings (numbers, then choices, as their fields declare them)."""
    numbers = [f.name for f in fields(cls) if "range" in f.metadata]
    choices = [f.name for f in fields(cls) if "choices" in f.metadata]
    value = doc.get(key)
    value = {} if value is None else value
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, f"must be a mapping with keys {', '.join([*numbers, *choices])}")
    _reject_unknown(value, (*numbers, *choices), f"{key}.")
    return cls(**{k: _setting(value, cls, k, prefix=f"{key}.") for k in value})


def _field(cls: type, name: str) -> Field:
    return cls.__dataclass_fields__[name]


def _default(cls: type, name: str) -> Any:
    return _field(cls, name).default


def _setting(doc: Mapping, cls: type, name: str, key: str | None = None, prefix: str = "") -> Any:
    """`doc[key]` (by default the field's name), or the field's default where absent, checked against
    what the field of `cls` declares: a range (`bounded`) or choices (`one_of`)."""
    key = name if key is None else key
    meta = _field(cls, name).metadata
    if "choices" in meta:
        return _choice(doc, key, meta["choices"], _default(cls, name), prefix)
    return _number(f"{prefix}{key}", doc.get(key, _default(cls, name)), *meta["range"])


def _choice(doc: Mapping, key: str, allowed: tuple[str, ...], default: str, prefix: str = "") -> str:
    value = doc.get(key, default)
    if value not in allowed:
        raise ConfigError(
            f"{prefix}{key}", value, f"must be one of {', '.join(allowed)}{did_you_mean(value, allowed)}"
        )
    return value


def _number(key: str, value: Any, kind: type, low: float, high: float):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    if ok and not (low <= value <= high):  # NaN fails this too
        ok = False
    if not ok:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(key, value, f"must be {noun} from {_fmt(low)} to {_fmt(high)}")
    return kind(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _reject_unknown(mapping: Mapping, allowed: tuple[str, ...], prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(
                f"{prefix}{key}",
                mapping[key],
                f"unknown key (allowed: {', '.join(allowed)}){did_you_mean(key, allowed)}",
            )


def _check_shape(doc: Any) -> None:
    """Refuse what YAML can say but a sweep never needs, before anything else walks the document.

    Each of these would otherwise crash or hang a later step (a repr in an error message, the hash of
    a model's options, a file path): nesting deeper than MAX_DEPTH (Python's recursion limit), an
    alias inside the value it names (a cycle), text with NUL characters or lone surrogates (no path,
    encoder or Parquet file takes them), and aliases that blow a small file up into a huge document
    ("billion laughs"). Containers an alias shares are walked once, so the check is linear in the file.
    """
    # id of a list/mapping -> (values in it, aliases expanded; its height)
    seen: dict[int, tuple[int, int]] = {}
    open_ids: set[int] = set()
    written = 0

    def text_ok(path: str, text: str) -> None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                path, text, "must be text without lone surrogates (\\ud800-\\udfff escapes)"
            ) from None
        if "\x00" in text:
            raise ConfigError(path, text, "must not hold NUL characters")

    def walk(node: Any, path: str, depth: int) -> tuple[int, int]:
        nonlocal written
        if not isinstance(node, (list, Mapping)):
            written += 1
            if isinstance(node, str):
                text_ok(path, node)
            return 1, 0
        if id(node) in open_ids:
            raise ConfigError(path, "*alias", "a YAML alias may not point into the value that holds it")
        if id(node) in seen:  # an alias to a value already walked
            size, height = seen[id(node)]
        else:
            if depth >= MAX_DEPTH:
                raise ConfigError(
                    path, "[…]", f"nested more than {MAX_DEPTH} levels deep (a sweep file needs 5)"
                )
            open_ids.add(id(node))
            written += 1
            size, height = 1, 0
            if isinstance(node, Mapping):
                children = []
                for k, v in node.items():
                    if isinstance(k, str):
                        text_ok(path or "(top level)", k)
                    written += 1
                    children.append((v, f"{path}.{k}" if path else str(k)))
            else:
                children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
            for child, child_path in children:
                s, h = walk(child, child_path, depth + 1)
                size, height = size + s, max(height, h + 1)
            open_ids.discard(id(node))
            seen[id(node)] = (size, height)
        if depth + height > MAX_DEPTH:
            raise ConfigError(path, "[…]", f"nested more than {MAX_DEPTH} levels deep (a sweep file needs 5)")
        return size, height

    total, _ = walk(doc, "", 0)
    if total - written > MAX_ALIAS_VALUES:
        raise ConfigError(
            "(yaml)",
            f"{total} values from {written} written",
            f"YAML aliases may repeat at most {MAX_ALIAS_VALUES} values; write the values out",
        )


def _model_doc(m: ModelSpec) -> str | dict[str, Any]:
    if m.repo is None and m.revision is None and not m.options:
        return m.id
    doc: dict[str, Any] = {"id": m.id}
    for k in ("repo", "revision"):
        if getattr(m, k) is not None:
            doc[k] = getattr(m, k)
    if m.options:
        doc["options"] = dict(m.options)
    return doc


# --------------------------------------------------------------------------------------------------
# Expansion


def expand(sweep: Sweep) -> list[Trial]:
    """Every (model, grid point) as a Trial, models in file order, grid axes in sorted order."""
    trials: list[Trial] = []
    axes = sorted(sweep.grid)
    n_trials = len(sweep.models) * math.prod(len(sweep.grid[a]) for a in axes)
    if n_trials > MAX_TRIALS:
        sizes = " × ".join([f"{len(sweep.models)} models", *(f"{len(sweep.grid[a])} {a}" for a in axes)])
        raise ConfigError(
            "grid", sizes, f"expands to {n_trials} trials; at most {MAX_TRIALS} (sweep fewer values)"
        )
    for mi, model in enumerate(sweep.models):
        card = get_card(model.id)
        for axis in axes:
            if axis not in card.param_names:
                raise ConfigError(
                    f"grid.{axis}",
                    list(sweep.grid[axis]),
                    f"model {model.id!r} (models[{mi}]) has no such parameter (it has: {', '.join(card.param_names)})",
                )
        for point in itertools.product(*(sweep.grid[a] for a in axes)):
            raw = dict(zip(axes, point, strict=True))
            params = {}
            for axis, value in raw.items():
                values = sweep.grid[axis]
                key = f"grid.{axis}" + (f"[{values.index(value)}]" if len(values) > 1 else "")
                try:
                    params[axis] = card.param(axis).coerce(value, key)
                except OverflowError:  # an integer too large to be a float
                    raise ParameterError(key, value, f"must be {card.param(axis).allowed()}") from None
            params = card.check(params)
            try:
                card.check_limits(params, sweep.weights)
            except ParameterError as e:
                axis = e.key_path.removeprefix("grid.")
                if axis in sweep.grid:
                    raise
                raise ParameterError(
                    e.key_path, e.value, f"{e.allowed}; it is {model.id}'s default: set {e.key_path}"
                ) from None
            ident = Trial("", model, sweep.weights, sweep.dtype, params, sweep.seed)
            trials.append(replace(ident, trial_id=trial_id(ident)))
    ids: set[str] = set()
    for t in trials:
        if t.trial_id in ids:
            raise ConfigError(
                "grid",
                dict(t.params),
                "two grid points resolve to the same configuration (a value given twice, or equal to the default?)",
            )
        ids.add(t.trial_id)
    if not trials:
        raise ConfigError("grid", dict(sweep.grid), "expands to zero trials")
    return trials


def trial_id(trial: Trial) -> str:
    """A stable 16-hex-digit hash of the configuration (same on any machine, in any key order)."""
    return hashlib.sha256(_canonical(trial.identity()).encode()).hexdigest()[:16]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
