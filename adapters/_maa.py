"""What Make-An-Audio 1 and 2 share: the CLAP text encoder, the sampler and the `pretrained` path.

Neither model has pip-installable code, so each is two adapters. In `random`/`tiny`,
:class:`MakeAnAudioBase`: re-implementations on diffusers/torch blocks (sources in each module). In
`pretrained`, :class:`OriginalCodeAdapter`: the published checkpoints loaded and run **through the original
project's own code**, from a local checkout the user gives as `repo` (``ldm.util.instantiate_from_config``,
``ldm.models.diffusion.ddim.DDIMSampler``, ``VocoderBigVGAN``), as its ``gen_wav.py`` does; t2a-ray only
marks the phases and returns the waveforms. ``MakeAnAudioBase.load`` chooses between them.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch import nn

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text
from t2a_ray.adapters._diffusers import TorchAdapter, plain, present
from t2a_ray.adapters._loop import LoopAdapter
from t2a_ray.errors import ConfigError, ParameterError

TEXT_TOKENS = 77  # FrozenCLAPEmbedder / FrozenCLAPFLANEmbedder max_length
ORIGINAL_TOKENIZERS = ("tokenizer", "clap_tokenizer", "t5_tokenizer")  # of the original code's text encoders


class Projection(nn.Module):
    """CLAP's projection head (microsoft/CLAP ``clap.py`` ``Projection``): linear → GELU → linear, residual,
    LayerNorm; both linears without bias."""

    def __init__(self, d_in: int, d_out: int, p: float = 0.5):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.drop(self.linear2(nn.functional.gelu(embed1))))


class ClapTextEncoder(nn.Module):
    """Make-An-Audio's text encoder: CLAP 2022's caption encoder (BERT-base-uncased, ``base``) with its
    1024-d projection applied to every token (``FrozenCLAPEmbedder.encode``). Like the original, no
    attention mask is passed: the padding of the 77 tokens is attended to."""

    def __init__(self, size: str, d_proj: int):
        super().__init__()
        from transformers import BertConfig, BertModel

        config = (
            BertConfig()
            if size == "full"
            else BertConfig(
                vocab_size=C.TINY_VOCAB,
                hidden_size=16,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=32,
                max_position_embeddings=TEXT_TOKENS + 8,
            )
        )
        self.base = BertModel(config)  # bert-base-uncased (AutoModel keeps the pooler)
        self.projection = Projection(config.hidden_size, d_proj)

    def forward(self, input_ids):
        return self.projection(self.base(input_ids=input_ids).last_hidden_state)


def ldm_scheduler():
    """LDM's DDIM sampler over Make-An-Audio's schedule: 1000 steps, linear_start 0.00085, linear_end 0.012
    (LDM's "linear" is diffusers' scaled_linear), ε-prediction; uniform DDIM timesteps c·k + 1."""
    return C.ldm_ddim_scheduler(0.00085, 0.012)


def parts(**kw) -> SimpleNamespace:
    model = SimpleNamespace(**kw)
    if "scheduler" in kw:
        model.scheduler_config = dict(kw["scheduler"].config)
    return model


class MakeAnAudioBase(LoopAdapter):
    """Make-An-Audio 1 or 2 in `random`/`tiny`: the re-implementation, run by the shared loop.

    `load` gives `pretrained` to ``original_code``, the class that runs the original project's code.
    Abstract hooks: those of ``LoopAdapter``.
    """

    original_code: ClassVar[type[OriginalCodeAdapter]]
    phase_modules = {
        "denoise": ("denoiser",),
        "decode": ("vae.post_quant_conv", "vae.decoder"),
        "vocoder": ("vocoder",),
    }

    @classmethod
    def load(cls, *, device, dtype, weights, repo=None, revision=None, options=None):
        chosen = cls.original_code if weights == "pretrained" else super()
        return chosen.load(
            device=device, dtype=dtype, weights=weights, repo=repo, revision=revision, options=options
        )

    @classmethod
    def _load_pretrained(cls, repo, revision, device, dtype, options):
        """Only reached by calling it directly: `load` gives `pretrained` to ``original_code``."""
        return cls.original_code._load_pretrained(repo, revision, device, dtype, options)

    def _frames(self, n_samples: int, multiple: int) -> int:
        hop = self.model.hop_length
        return math.ceil(math.ceil(n_samples / hop) / multiple) * multiple


class OriginalCodeAdapter(TorchAdapter):
    """Make-An-Audio 1 or 2 in `pretrained`: the published checkpoint run by the original project's code.

    Abstract hooks: ``_original_shape`` (the latent shape ``gen_wav.py`` asks the sampler for).
    Optional: ``_original_condition`` (what ``get_learned_conditioning`` takes), ``_original_spec``
    (a decoded mel as the vocoder takes it).

    Trust: this runs Python code from the checkout the user names (as its ``gen_wav.py`` would) and
    unpickles its diffusion checkpoint, a PyTorch Lightning ``.ckpt``, the only format these projects
    publish: ``torch.load(weights_only=False)``, t2a-ray's one unpickling of weights. Both come only
    from local paths the user gives (`repo`, or the `ckpt`/`config`/`vocoder` options); nothing is
    downloaded. The working directory and ``sys.path`` are changed only while loading and restored.
    """

    checkout_name: ClassVar[str]  # e.g. "github.com/Text-to-Audio/Make-An-Audio"
    vocoder_module: ClassVar[str]  # where the original code keeps VocoderBigVGAN
    default_ckpt: ClassVar[str]
    default_config: ClassVar[str]
    # decode_first_stage calls first_stage_model.decode (a method): hook the modules it runs first
    phase_modules = {
        "denoise": ("ldm.model",),
        "decode": ("ldm.first_stage_model.post_quant_conv", "ldm.first_stage_model.decoder"),
        "vocoder": ("vocoder.generator",),
    }

    @classmethod
    def _build(cls, size, options):
        raise ConfigError(
            "weights",
            "random" if size == "full" else size,
            f"{cls.card.id}'s original code runs its published weights (pretrained) only; random and tiny "
            f"are the re-implementation: load them with adapter_class({cls.card.id!r})",
        )

    @classmethod
    def _load_pretrained(cls, repo, revision, device, dtype, options):
        if repo is None or not Path(repo).expanduser().is_dir():
            raise ConfigError(
                "repo",
                repo,
                f"{cls.card.id}'s published weights run through its original code, which is not on PyPI: give "
                f"the path of a local checkout of {cls.checkout_name} (with `pip install -r requirements.txt` "
                f"done and the checkpoints in useful_ckpts/), or use weights: random",
            )
        if dtype != torch.float32:
            raise ConfigError(
                "dtype",
                str(dtype).removeprefix("torch."),
                f"{cls.card.id}'s original code runs in float32 only",
            )
        checkout = Path(repo).expanduser().resolve()
        config_path = Path(options.get("config") or checkout / cls.default_config)
        ckpt = Path(options.get("ckpt") or checkout / "useful_ckpts" / cls.default_ckpt)
        vocoder_dir = Path(options.get("vocoder") or checkout / "useful_ckpts" / "bigvgan")
        with _original_code(checkout):
            try:
                from ldm.models.diffusion.ddim import DDIMSampler
                from ldm.util import instantiate_from_config
                from omegaconf import OmegaConf

                VocoderBigVGAN = __import__(cls.vocoder_module, fromlist=["VocoderBigVGAN"]).VocoderBigVGAN
            except ImportError as e:
                raise ImportError(
                    f"cannot import {cls.card.id}'s original code from {checkout} ({e}); install its "
                    f"requirements: pip install -r {checkout / 'requirements.txt'}"
                ) from e
            config = OmegaConf.load(config_path)
            ldm = instantiate_from_config(config.model)
            # A Lightning checkpoint from the user's own folder (see the class docstring).
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            ldm.load_state_dict(state["state_dict"], strict=False)
            ldm = ldm.to(device).eval()
            ldm.cond_stage_model.to(device)
            ldm.cond_stage_model.device = device
            vocoder = VocoderBigVGAN(str(vocoder_dir), device=device)
        for tok in present(ldm.cond_stage_model, ORIGINAL_TOKENIZERS):
            tok.model_max_length = (
                TEXT_TOKENS  # the original passes max_length=77 at each call: counts truncations
            )
        model = SimpleNamespace(ldm=ldm, sampler=DDIMSampler(ldm), vocoder=vocoder)
        return model, f"{checkout}:{ckpt.name}"

    def modules(self):
        return [
            m
            for m in (self.model.ldm, getattr(self.model.vocoder, "generator", None))
            if isinstance(m, nn.Module)
        ]

    def _tokenizers(self):
        return present(self.model.ldm.cond_stage_model, ORIGINAL_TOKENIZERS)

    def _use_scheduler(self, name):
        if name != "ddim":
            raise ParameterError(
                "grid.scheduler", name, f"pretrained {self.card.id} samples with its own DDIM only"
            )

    def _run(self, prompts, params, generator, negative_prompt, n_samples, hooks):
        # As gen_wav.py: learned conditioning, DDIMSampler.sample from seeded noise, decode_first_stage, vocode.
        ldm, n = self.model.ldm, len(prompts) * params["batch_size"]
        texts = [p for p in prompts for _ in range(params["batch_size"])]
        uc = None
        if params["guidance_scale"] != 1.0:
            uc = ldm.get_learned_conditioning(
                self._original_condition([negative_prompt or ""] * n, empty=negative_prompt is None)
            )
        c = ldm.get_learned_conditioning(self._original_condition(texts))
        shape = self._original_shape(n_samples)
        start_code = torch.randn(
            (n, *shape), generator=generator, device=self.torch_device, dtype=torch.float32
        )
        samples, _ = self.model.sampler.sample(
            S=params["steps"],
            conditioning=c,
            batch_size=n,
            shape=shape,
            verbose=False,
            unconditional_guidance_scale=params["guidance_scale"],
            unconditional_conditioning=uc,
            x_T=start_code,
        )
        mels = ldm.decode_first_stage(samples)
        waves = [torch.as_tensor(self.model.vocoder.vocode(self._original_spec(mel))) for mel in mels]
        length = min(w.shape[-1] for w in waves)
        return torch.stack([w[..., :length] for w in waves])

    @abc.abstractmethod
    def _original_shape(self, n_samples: int) -> list[int]:
        """The latent shape (without the batch) for at least `n_samples` samples, as gen_wav.py asks."""

    def _original_condition(self, texts: list[str], empty: bool = False) -> Any:
        return texts

    def _original_spec(self, mel: torch.Tensor) -> torch.Tensor:
        return mel


@contextlib.contextmanager
def _original_code(checkout: Path) -> Iterator[None]:
    """Import from, and run inside, the user's checkout (its configs name files relative to it); then
    put the working directory and ``sys.path`` back as they were, whatever the checkout's code did.

    Both projects call their package ``ldm``: modules another checkout imported under a name this one
    provides are forgotten first, so each model runs its own project's code (a model already loaded
    keeps the modules it was built from).
    """
    provided = {p.stem for p in checkout.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.partition(".")[0] in provided and not (
            file and Path(file).resolve().is_relative_to(checkout)
        ):
            del sys.modules[name]
    previous_cwd, previous_path = os.getcwd(), list(sys.path)
    sys.path.insert(0, str(checkout))
    try:
        os.chdir(checkout)
        with plain():
            yield
    finally:
        os.chdir(previous_cwd)
        sys.path[:] = previous_path


def bert_tokenizer(size: str):
    return _text.bert_tokenizer(TEXT_TOKENS if size == "full" else C.TINY_TEXT_TOKENS)
