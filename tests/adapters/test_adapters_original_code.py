"""Make-An-Audio's `pretrained` mode runs the original project's code from a user's checkout.

That code is not installable here, so this test writes a stand-in checkout with the same import paths and
interfaces (``ldm.util.instantiate_from_config``, ``ldm.models.diffusion.ddim.DDIMSampler``, an LDM with
``get_learned_conditioning`` / ``decode_first_stage``, ``VocoderBigVGAN.vocode``, ``omegaconf``) and checks
t2a-ray's glue: what it imports, what it calls with which shapes, and the phases it marks.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
import torch

from t2a_ray.adapters import adapter_class
from t2a_ray.errors import ConfigError

FAKE_LDM = """
import torch
from torch import nn


class _Cond(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(1, 8)

    def encode(self, texts):
        if isinstance(texts, dict):  # Make-An-Audio 2: {"ori_caption": [...], "struct_caption": [...]}
            assert len(texts["ori_caption"]) == len(texts["struct_caption"])
            texts = texts["ori_caption"]
        return self.proj(torch.tensor([[float(len(t))] for t in texts], device=self.proj.weight.device))


class _FirstStage(nn.Module):
    embed_dim = 4

    def __init__(self, two_d):
        super().__init__()
        self.two_d = two_d
        self.post_quant_conv = nn.Identity()
        self.decoder = nn.Identity()

    def decode(self, z):
        z = self.decoder(self.post_quant_conv(z))
        if self.two_d:  # (B, 4, 10, W) latents -> (B, 1, 80, 8W) mels
            return z.mean(1, keepdim=True).repeat_interleave(8, 2).repeat_interleave(8, 3)
        return z.mean(1, keepdim=True).repeat(1, 80, 1).repeat_interleave(2, 2)  # (B, 20, W) -> (B, 80, 2W)


class FakeLDM(nn.Module):
    def __init__(self, two_d=True):
        super().__init__()
        self.model = nn.Identity()  # the DiffusionWrapper
        self.first_stage_model = _FirstStage(two_d)
        self.cond_stage_model = _Cond()
        self.cond_stage_model.tokenizer = None
        self.calls = []

    def get_learned_conditioning(self, c):
        self.calls.append(("cond", c))
        return self.cond_stage_model.encode(c)

    def decode_first_stage(self, z):
        return self.first_stage_model.decode(z)
"""

FAKE_DDIM = """
class DDIMSampler:
    def __init__(self, model):
        self.model = model

    def sample(self, S, conditioning, batch_size, shape, verbose, unconditional_guidance_scale, unconditional_conditioning, x_T):
        assert tuple(x_T.shape) == (batch_size, *shape) and conditioning.shape[0] == batch_size
        assert (unconditional_conditioning is None) == (unconditional_guidance_scale == 1.0)
        x = x_T
        for _ in range(S):
            x = self.model.model(x)
        self.model.calls.append(("sample", S, tuple(shape)))
        return x, None
"""

FAKE_UTIL = """
import importlib
import sys

sys.path.append("added-by-the-checkout")  # research code often does this; t2a-ray must undo it


def instantiate_from_config(config):
    module, cls = config["target"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**config.get("params", {}))
"""

FAKE_VOCODER = """
import numpy as np
import torch
from torch import nn


class VocoderBigVGAN:
    def __init__(self, ckpt_vocoder, device="cuda"):
        self.generator = nn.Identity()
        self.device = device

    def vocode(self, spec):
        assert spec.dim() == 3 and spec.shape[:2] == (1, 80), spec.shape  # one (1, 80, frames) spectrogram
        wav = self.generator(spec).mean(1).repeat_interleave(256, -1)
        return wav.squeeze().cpu().numpy().astype(np.float32)
"""

FAKE_OMEGACONF = """
import json


class OmegaConf:
    @staticmethod
    def load(path):
        class Config(dict):
            __getattr__ = dict.__getitem__
        return Config(json.loads(open(path).read()))
"""


@pytest.fixture(autouse=True)
def forget_fake_modules():
    """The stand-ins must not outlive their test (a real omegaconf may be imported later)."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("omegaconf", "ldm", "vocoder", "bigvgan"):
            del sys.modules[name]


def _checkout(root, vocoder_package: str, two_d: bool):
    files = {
        "omegaconf.py": FAKE_OMEGACONF,
        "ldm/__init__.py": "",
        "ldm/util.py": FAKE_UTIL,
        "ldm/fake.py": FAKE_LDM,
        "ldm/models/__init__.py": "",
        "ldm/models/diffusion/__init__.py": "",
        "ldm/models/diffusion/ddim.py": FAKE_DDIM,
        f"{vocoder_package}/__init__.py": "",
        f"{vocoder_package}/models.py": FAKE_VOCODER,
        "model.yaml": json.dumps({"model": {"target": "ldm.fake.FakeLDM", "params": {"two_d": two_d}}}),
    }
    if "/" in vocoder_package:
        files[f"{vocoder_package.split('/')[0]}/__init__.py"] = ""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (root / "useful_ckpts").mkdir()
    torch.save({"state_dict": {}}, root / "useful_ckpts" / "model.ckpt")
    return root


@pytest.mark.parametrize(
    "model_id,vocoder_package,two_d",
    [("make-an-audio", "vocoder/bigvgan", True), ("make-an-audio-2", "bigvgan", False)],
)
def test_pretrained_runs_the_original_code_from_a_checkout(model_id, vocoder_package, two_d, tmp_path):
    checkout = _checkout(tmp_path / "checkout", vocoder_package, two_d)
    options = {"config": str(checkout / "model.yaml"), "ckpt": str(checkout / "useful_ckpts" / "model.ckpt")}
    cwd, path = os.getcwd(), list(sys.path)
    adapter = adapter_class(model_id).load(
        device="cpu", dtype="float32", weights="pretrained", repo=str(checkout), options=options
    )
    assert (os.getcwd(), sys.path) == (cwd, path)  # the checkout's folder and imports were confined
    assert type(adapter) is adapter_class(model_id).original_code
    assert adapter.revision == f"{checkout}:model.ckpt"
    marks: list[str] = []
    gen = adapter.generate(
        ["a dog barks", "rain"],
        {"steps": 3, "duration_s": 1.0, "batch_size": 2},
        seed=0,
        phases=marks.append,
        negative_prompt="noise",
    )
    assert gen.waveforms.shape == (4, 1, 16000)
    assert marks == ["text_encoder", "denoise", "decode", "vocoder"]
    calls = adapter.model.ldm.calls
    conds = [c for kind, c, *_ in calls if kind == "cond"]
    uncond, cond = conds
    if model_id == "make-an-audio-2":
        assert cond["struct_caption"] == ["<a dog barks& all>"] * 2 + ["<rain& all>"] * 2
        assert uncond["ori_caption"] == ["noise"] * 4
    else:
        assert cond == ["a dog barks", "a dog barks", "rain", "rain"] and uncond == ["noise"] * 4
    assert calls[-1][:2] == ("sample", 3)
    with pytest.raises(Exception, match="samples with its own DDIM only"):
        adapter.generate(["x"], {"scheduler": "pndm", "duration_s": 0.5}, seed=0)


def test_pretrained_original_code_is_float32_only(tmp_path):
    checkout = _checkout(tmp_path / "checkout", "vocoder/bigvgan", True)
    with pytest.raises(Exception, match="runs in float32 only"):
        adapter_class("make-an-audio").load(
            device="cpu", dtype="bfloat16", weights="pretrained", repo=str(checkout)
        )


def test_the_original_code_class_takes_published_weights_only():
    original = adapter_class("make-an-audio").original_code
    with pytest.raises(
        ConfigError, match="weights = 'tiny': make-an-audio's original code runs its published"
    ):
        original.load(device="cpu", dtype="float32", weights="tiny")


def test_two_checkouts_in_one_process_each_run_their_own_ldm_package(tmp_path):
    """Make-An-Audio 1 and 2 both name their package `ldm`: the second must not get the first's."""
    import inspect

    loaded = []
    for model_id, vocoder_package, two_d in (
        ("make-an-audio", "vocoder/bigvgan", True),
        ("make-an-audio-2", "bigvgan", False),
    ):
        checkout = _checkout(tmp_path / model_id, vocoder_package, two_d)
        options = {
            "config": str(checkout / "model.yaml"),
            "ckpt": str(checkout / "useful_ckpts" / "model.ckpt"),
        }
        adapter = adapter_class(model_id).load(
            device="cpu", dtype="float32", weights="pretrained", repo=str(checkout), options=options
        )
        loaded.append((checkout, adapter))
    for checkout, adapter in loaded:
        assert inspect.getfile(type(adapter.model.ldm)).startswith(str(checkout))
        assert adapter.generate(["rain"], {"steps": 2, "duration_s": 0.5}, seed=0).waveforms.shape == (
            1,
            1,
            8000,
        )
