"""Shared plumbing for the torch/diffusers adapters: weight modes, phase marks, OOM, output shape.

Every model adapter subclasses :class:`PipelineAdapter` (a diffusers pipeline drives the loop: AudioLDM,
AudioLDM 2, MusicLDM, Stable Audio) or ``_loop.LoopAdapter`` (t2a-ray's one loop, for the models without a
pipeline: Tango, Make-An-Audio 1/2); both are :class:`TorchAdapter`. What they share lives here, once:

* ``load``: the three weight modes. `random` and `tiny` build the same classes from a config
  (``_build(size)``) directly on the target device in the target dtype (``building``); `pretrained`
  loads published weights (``_load_pretrained``).
* phase marks: forward pre-hooks on the modules that start each phase (:class:`PhaseHooks`); no
  pipeline here offers ``callback_on_step_end``, and hooks need no copy of its loop.
* the one place where a CUDA out-of-memory error becomes an :class:`~t2a_ray.errors.InfeasibleError`.
* the output rule: every adapter returns exactly ``round(duration_s × sample_rate_hz)`` samples per
  waveform. The model computes that length rounded *up* to its own granularity (a mel hop times the
  latent downsampling, or a fixed window for Stable Audio) and the surplus is cut off.
"""

from __future__ import annotations

import abc
import contextlib
import gc
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from t2a_ray.adapters import _text
from t2a_ray.adapters._modules import named_modules_of
from t2a_ray.adapters._runtime_variants import Variants
from t2a_ray.adapters.base import DTYPES, PHASES, Adapter, Generation, PhaseMarker, no_phases
from t2a_ray.adapters.runtime_axes import is_eager
from t2a_ray.errors import ConfigError, InfeasibleError, ParameterError

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

# Scheduler names a card may offer (`scheduler` parameter) → diffusers class and config overrides. Each
# is built `from_config` of the model's own scheduler, so betas and prediction type stay the model's.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
}


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------


def torch_dtype(name: str) -> torch.dtype:
    return TORCH_DTYPES[name]


@contextlib.contextmanager
def building(device: torch.device | str, dtype: torch.dtype) -> Iterator[None]:
    """Construct modules directly on `device` in `dtype`, with a fixed seed (reproducible random weights).

    Parameters are allocated where they will live (no CPU copy, no fp32 detour): a full-size model in
    `random` mode costs what the real one costs to hold.
    """
    device = torch.device(device)
    previous = torch.get_default_dtype()
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(0)
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                yield
        finally:
            torch.set_default_dtype(previous)


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """Inside ``building``: make host-side objects (schedulers) the usual way, on the CPU in float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.device("cpu"):
            yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def oom_as_infeasible(what: str) -> Iterator[None]:
    """Translate the vendor's out-of-memory error into InfeasibleError (the trial is `infeasible`)."""
    try:
        yield
    except torch.OutOfMemoryError as e:  # torch.cuda.OutOfMemoryError is this class
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else "out of memory"
        raise InfeasibleError(f"out of GPU memory {what}: {first_line}") from e


def allocated_bytes(device: torch.device) -> int:
    """GPU memory held by tensors on `device` (0 off CUDA)."""
    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


def count_parameters(modules: Iterable[torch.nn.Module]) -> int:
    """Parameters of all `modules`, each tensor once (tied embeddings and shared modules count once)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def output_samples(duration_s: float, sample_rate_hz: int) -> int:
    """The length every adapter returns: ``round(duration_s × sample_rate_hz)`` samples."""
    return max(1, round(duration_s * sample_rate_hz))


def fit_length(audio: Any, n_samples: int, channels: int) -> np.ndarray:
    """(N, S) or (N, C, S) audio, torch or numpy, → float32 numpy (N, C, n_samples).

    The model generated at least `n_samples` (see the module docstring); the surplus is cut off.
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio[:, None, :]
    if audio.shape[1] != channels or audio.shape[2] < n_samples:
        raise RuntimeError(
            f"model produced audio of shape {audio.shape}; expected {channels} channel(s) of ≥ {n_samples} samples"
        )
    return np.ascontiguousarray(audio[:, :, :n_samples])


def resolve_module(root: Any, dotted: str) -> torch.nn.Module | None:
    obj = root
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, torch.nn.Module) else None


class PhaseHooks:
    """Mark phases from forward pre-hooks on the modules that start them.

    Entering marks ``text_encoder`` (tokenising and encoding come first). A module's first forward call
    marks its phase, once, and only moving forward through PHASES: a later call of an earlier module (a
    scheduler step calling nothing, a CLAP re-ranking after the vocoder) does not move the mark back.
    """

    def __init__(self, marker: PhaseMarker, modules: Mapping[str, Sequence[torch.nn.Module]]):
        self.marker = marker
        self.modules = modules
        self.current = -1
        self.handles: list[Any] = []

    def mark(self, phase: str) -> None:
        index = PHASES.index(phase)
        if index > self.current:
            self.current = index
            self.marker(phase)

    def __enter__(self) -> PhaseHooks:
        self.mark("text_encoder")
        for phase, modules in self.modules.items():
            for module in modules:
                self.handles.append(
                    module.register_forward_pre_hook(lambda _m, _a, phase=phase: self.mark(phase))
                )
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def make_scheduler(name: str, base_config: Mapping[str, Any]):
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(dict(base_config), **overrides)


def local_folder(repo: str, revision: str | None, download=None) -> tuple[Path, str]:
    """A hub repo (downloaded, or found in the cache offline) or a local folder → (folder, what was loaded).

    `download(repo, revision)` fetches a hub repo and returns its snapshot folder (default: the whole
    snapshot). What was loaded is ``repo@commit`` for the hub, or the folder's absolute path.
    """
    path = Path(repo).expanduser()
    if path.is_dir():
        return path.resolve(), str(path.resolve())
    if download is None:
        from huggingface_hub import snapshot_download

        def download(repo, revision):
            return snapshot_download(repo, revision=revision)

    folder = Path(download(repo, revision))
    return folder, f"{repo}@{folder.name}"


# ----------------------------------------------------------------------------------------------------
# The adapter base classes
# ----------------------------------------------------------------------------------------------------


def present(holder: Any, names: Sequence[str]) -> list[Any]:
    """The attributes `names` of `holder` that it has (not None), in that order."""
    return [a for a in (getattr(holder, n, None) for n in names) if a is not None]


class TorchAdapter(Adapter):
    """A model made of torch modules, in one of the three weight modes.

    Abstract hooks: ``_build`` (random/tiny), ``_load_pretrained``, ``_use_scheduler``, ``_run``.
    Optional: ``phase_modules`` (or ``_phase_modules``) for phase marks, ``_tokenizers`` to count
    truncated prompts, ``_finish`` after building or loading.
    """

    #: modules (attribute paths on ``self.model``) whose first forward call starts each phase
    phase_modules: ClassVar[Mapping[str, Sequence[str]]] = {}

    def __init__(self, device: str, dtype: str, weights: str, model: Any, revision: str | None):
        super().__init__(device, dtype, weights)
        self.model = model
        self.revision = revision
        self.torch_device = torch.device(device)
        self.torch_dtype = torch_dtype(dtype)
        self.sample_rate_hz = self.card.sample_rate_hz
        self._variants: Variants | None = None  # compiled denoisers, made when a runtime first asks

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, *, device, dtype, weights, repo=None, revision=None, options=None):
        options = dict(options or {})
        cls._check_load(device, dtype, weights, options)
        dev, dt = torch.device(device), torch_dtype(dtype)
        before = allocated_bytes(dev)
        with oom_as_infeasible(f"loading {cls.card.id} ({weights}, {dtype})"):
            if weights == "pretrained":
                model, loaded = cls._load_pretrained(
                    repo or cls.card.repo, revision or cls.card.revision, dev, dt, options
                )
            else:
                size = "full" if weights == "random" else "tiny"
                with building(dev, dt):
                    model = cls._build(size, options)
                for module in _modules_of(model):
                    _place(module, dev, dt)
                model = cls._finish(model, dev, dt)
                loaded = weights
        adapter = cls(device, dtype, weights, model, loaded)
        adapter.parameter_count = count_parameters(adapter.modules())
        adapter.memory_bytes = max(0, allocated_bytes(dev) - before)
        return adapter

    @classmethod
    def prefetch(cls) -> None:
        """Build the tiny model on the CPU and drop it: the tiny build makes the classes the full one
        makes, so it imports their modules (diffusers', transformers', what they import) without a
        list to keep in sync. Not inside ``building``, which sets torch's default dtype for the whole
        process: the tiny build runs in the default float32 (``plain`` sets that same value) and draws
        its random weights from torch's global generator, which no measurement relies on (``building``
        seeds its own).
        """
        cls._build("tiny", {})

    @classmethod
    def _check_load(cls, device: str, dtype: str, weights: str, options: Mapping[str, Any]) -> None:
        if weights not in cls.card.weight_modes:
            raise ConfigError(
                "weights", weights, f"model {cls.card.id!r} supports {', '.join(cls.card.weight_modes)}"
            )
        if dtype not in DTYPES:
            raise ConfigError("dtype", dtype, f"must be one of {', '.join(DTYPES)}")
        unknown = set(options) - set(cls.card.options)
        if unknown:
            allowed = ", ".join(cls.card.options) or "none"
            raise ConfigError(
                f"options.{sorted(unknown)[0]}",
                options[sorted(unknown)[0]],
                f"model {cls.card.id!r} takes options: {allowed}",
            )
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "device", device, "no NVIDIA GPU visible; run with --gpus 0 to measure on the CPU"
            )

    @classmethod
    @abc.abstractmethod
    def _build(cls, size: str, options: Mapping[str, Any]) -> Any:
        """Build the model from its full-size or tiny config (called inside ``building``)."""

    @classmethod
    def _finish(cls, model: Any, device: torch.device, dtype: torch.dtype) -> Any:
        """After building or loading: every module in eval mode, without gradients."""
        for module in _modules_of(model):
            module.eval().requires_grad_(False)
        return model

    @classmethod
    @abc.abstractmethod
    def _load_pretrained(
        cls, repo: str | None, revision: str | None, device, dtype, options
    ) -> tuple[Any, str]:
        """Load published weights from a hub id or a local folder → (model, what was loaded)."""

    def modules(self) -> list[torch.nn.Module]:
        return _modules_of(self.model)

    def unload(self) -> None:
        self.model = self._variants = None
        gc.collect()
        if self.torch_device.type == "cuda":
            torch.cuda.empty_cache()

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        params: Mapping[str, Any],
        seed: int,
        phases: PhaseMarker = no_phases,
        negative_prompt: str | None = None,
    ) -> Generation:
        """Check the inputs, before any GPU work, then generate (`generate_checked`)."""
        params = self.check(params)
        prompts = list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ParameterError("prompts", prompts, "must be a non-empty list of strings")
        if negative_prompt is not None and not isinstance(negative_prompt, str):
            raise ParameterError("negative_prompt", negative_prompt, "must be a string")
        return self.generate_checked(prompts, params, seed, phases, negative_prompt)

    def generate_checked(
        self,
        prompts: Sequence[str],
        params: Mapping[str, Any],
        seed: int,
        phases: PhaseMarker = no_phases,
        negative_prompt: str | None = None,
    ) -> Generation:
        # 1. The inputs were checked once: a trial's when its sweep was launched, else by `generate`
        if self.model is None:
            raise RuntimeError(f"{self.card.id} was unloaded")
        n_samples = output_samples(params["duration_s"], self.sample_rate_hz)
        # 2. Scheduler and seeded noise
        if "scheduler" in params:
            self._use_scheduler(params["scheduler"])
        generator = torch.Generator(device=self.torch_device).manual_seed(seed)
        # 3. Generate, marking phases
        what = f"generating with {self.card.id} (batch {len(prompts)}×{params['batch_size']}, {params['duration_s']} s)"
        with (
            oom_as_infeasible(what),
            torch.inference_mode(),
            self._runtime(params),
            PhaseHooks(phases, self._phase_modules()) as hooks,
        ):
            audio = self._run(prompts, params, generator, negative_prompt, n_samples, hooks)
        # 4. Float32 (N, C, S), N = prompts × batch_size
        waveforms = fit_length(audio, n_samples, self.card.channels)
        return Generation(waveforms, self.sample_rate_hz, _text.count_truncated(self._tokenizers(), prompts))

    def _runtime(self, params: Mapping[str, Any]) -> contextlib.AbstractContextManager[None]:
        """The runtime axes (compile mode, attention backend) around one generation; nothing is
        touched for the eager runtime until another one has been asked for."""
        if self._variants is None:
            if is_eager(params):
                return contextlib.nullcontext()
            denoiser = self._phase_modules().get("denoise")
            if not denoiser:
                raise InfeasibleError(f"{self.card.id} names no denoiser module: nothing to compile")
            self._variants = Variants(self.model, denoiser[0], self.torch_device)
        return self._variants.use(params)

    def _phase_modules(self) -> dict[str, list[torch.nn.Module]]:
        found: dict[str, list[torch.nn.Module]] = {}
        for phase, paths in self.phase_modules.items():
            found[phase] = [m for m in (resolve_module(self.model, p) for p in paths) if m is not None]
        return found

    @abc.abstractmethod
    def _use_scheduler(self, name: str) -> None:
        """Sample with scheduler `name` (a card's `scheduler` choice) from now on."""

    def _tokenizers(self) -> list[Any]:
        """The tokenizers whose `model_max_length` cuts prompts short: ``self.model``'s `tokenizer` and
        `tokenizer_2`, where it has them."""
        return present(self.model, ("tokenizer", "tokenizer_2"))

    @abc.abstractmethod
    def _run(self, prompts, params, generator, negative_prompt, n_samples, hooks) -> Any:
        """Generate ``len(prompts) × batch_size`` waveforms of at least `n_samples` samples."""


def _place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Move a freshly built module to `device`/`dtype` only where a part was made elsewhere (a module that
    creates its own fp32 tensors); a no-op for the usual case of everything built in place."""
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.device != device and t.device.type != device.type for t in tensors) or any(
        t.is_floating_point() and t.dtype != dtype for t in tensors
    ):
        module.to(device=device, dtype=dtype)


def _modules_of(model: Any) -> list[torch.nn.Module]:
    return list(named_modules_of(model).values())


class PipelineAdapter(TorchAdapter):
    """A model driven by a diffusers pipeline (``pipeline_class``), which owns the denoising loop.

    Abstract hooks: ``_components`` (the pipeline's parts, full-size or tiny) and ``_run``.
    """

    pipeline_class: ClassVar[str]  # name in the `diffusers` namespace

    @classmethod
    def pipeline(cls):
        import diffusers

        return getattr(diffusers, cls.pipeline_class)

    @classmethod
    def _build(cls, size, options):
        pipe = cls.pipeline()(**cls._components(size, options))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @classmethod
    @abc.abstractmethod
    def _components(cls, size: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline's constructor arguments (called inside ``building``)."""

    @classmethod
    def _finish(cls, model, device, dtype):
        model = super()._finish(model, device, dtype)
        model._t2a_scheduler_config = dict(model.scheduler.config)
        return model

    @classmethod
    def _load_pretrained(cls, repo, revision, device, dtype, options):
        """As a user would: ``Pipeline.from_pretrained(repo)`` (safetensors preferred, no remote code)."""
        if repo is None:
            raise ConfigError(
                "repo", repo, f"model {cls.card.id!r} has no default repo; give a hub id or folder"
            )
        # DiffusionPipeline.download fetches what the pipeline needs (safetensors where published, not both)
        folder, loaded = local_folder(repo, revision, lambda r, rev: cls.pipeline().download(r, revision=rev))
        pipe = cls.pipeline().from_pretrained(
            folder, torch_dtype=dtype, **cls._pretrained_overrides(folder, dtype)
        )
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        return cls._finish(pipe, device, dtype), loaded

    @classmethod
    def _pretrained_overrides(cls, folder: Path, dtype: torch.dtype) -> dict[str, Any]:
        """Components to load differently from what `model_index.json` names (none by default)."""
        return {}

    def _use_scheduler(self, name: str) -> None:
        scheduler = make_scheduler(name, self.model._t2a_scheduler_config)
        if type(scheduler) is not type(self.model.scheduler) or dict(scheduler.config) != dict(
            self.model.scheduler.config
        ):
            self.model.scheduler = scheduler

    @staticmethod
    def _negative(prompts: list[str], negative_prompt: str | None) -> list[str] | None:
        return None if negative_prompt is None else [negative_prompt] * len(prompts)


class MelPipelineAdapter(PipelineAdapter):
    """AudioLDM-family pipelines: text → mel latents (UNet) → mel (VAE) → waveform (HiFi-GAN vocoder).

    AudioLDM 2 and MusicLDM re-rank a batch with CLAP after the vocoder where librosa is installed; that
    is post-processing whose presence would depend on the environment, so it is off unless the option
    ``rank_waveforms`` is true (its work then counts in the `vocoder` phase).

    Abstract hook: ``_components`` (``_run`` is here). Optional: ``_call_kwargs``, more pipeline arguments.
    """

    phase_modules = {
        "denoise": ("unet",),
        "decode": ("vae.post_quant_conv", "vae.decoder"),
        "vocoder": ("vocoder",),
    }

    @classmethod
    def load(cls, *, device, dtype, weights, repo=None, revision=None, options=None):
        adapter = super().load(
            device=device, dtype=dtype, weights=weights, repo=repo, revision=revision, options=options
        )
        if hasattr(adapter.model, "score_waveforms") and not (options or {}).get("rank_waveforms", False):
            adapter.model.score_waveforms = _keep_order
        adapter.sample_rate_hz = int(adapter.model.vocoder.config.sampling_rate)
        return adapter

    def _call_kwargs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def _run(self, prompts, params, generator, negative_prompt, n_samples, hooks):
        pipe = self.model
        hop = math.prod(pipe.vocoder.config.upsample_rates)
        out = pipe(
            prompt=prompts,
            audio_length_in_s=mel_length_s(n_samples, hop, pipe.vae_scale_factor, self.sample_rate_hz),
            num_inference_steps=params["steps"],
            guidance_scale=params["guidance_scale"],
            negative_prompt=self._negative(prompts, negative_prompt),
            num_waveforms_per_prompt=params["batch_size"],
            generator=generator,
            output_type="pt",
            **self._call_kwargs(params),
        )
        return out.audios


def _keep_order(text, audio, *args, **kwargs):
    """Stand-in for the pipelines' CLAP re-ranking: the waveforms in the order they were generated."""
    return audio


def mel_length_s(n_samples: int, hop: int, frame_multiple: int, sample_rate_hz: int) -> float:
    """The `audio_length_in_s` to ask a mel-spectrogram pipeline for, so it yields ≥ `n_samples`.

    The pipelines turn seconds into mel frames (``hop`` samples each), round the frames up to a multiple
    of the VAE's downsampling and cut the audio to ``int(s × rate)``; half a sample of margin keeps float
    rounding from cutting one sample short.
    """
    frames = math.ceil(n_samples / hop)
    frames = math.ceil(frames / frame_multiple) * frame_multiple
    return (frames * hop + 0.5) / sample_rate_hz


__all__ = [
    "PipelineAdapter",
    "TorchAdapter",
    "PhaseHooks",
    "building",
    "count_parameters",
    "fit_length",
    "make_scheduler",
    "mel_length_s",
    "oom_as_infeasible",
    "output_samples",
]
