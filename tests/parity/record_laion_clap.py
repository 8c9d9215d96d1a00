"""Record what LAION-CLAP's own code (laion_clap 1.1.7, `CLAP_Module`) computes, for
`test_laion_clap_parity.py` to compare our transformers path against.

laion_clap cannot be a test dependency (it pulls librosa, numba, torchvision, wandb, h5py, …), and its
weights are a download, so: a full-size transformers `ClapModel` with seeded random weights (as
`t2a_ray.adapters.clap.clap_model` builds it after ``torch.manual_seed(SEED)``) is copied into a
`CLAP_Module` through the key mapping of transformers' ``convert_clap_original_pytorch_to_hf.py``
(`to_transformers` below; every weight the embeddings use must map, or this script stops), and
LAION-CLAP embeds the test's texts and clips the way stable-audio-metrics calls it (each clip alone,
int16 round trip first, ``use_tensor=True``). Only embeddings are recorded (and a checksum of the
weights, so the test can tell a changed initialisation from a changed result).

Its imports that embedding never uses (training data, loss metrics, hub downloads) are stubbed; roberta-
base's tokenizer is the product's locally trained one, its model the roberta-base architecture with the
copied weights. Re-record with:

    python -m pip install --no-deps --target /tmp/lc laion_clap==1.1.7 torchlibrosa==0.1.0 \\
        librosa==0.11.0 lazy_loader decorator torchaudio==2.11.1 torchvision==0.28.0
    rm /tmp/lc/torchaudio/lib/*.so   # built for another torch; its mel transform is plain torch
    PYTHONPATH=/tmp/lc HF_HUB_OFFLINE=1 python tests/parity/record_laion_clap.py

(torchvision 0.28.0 is the release for torch 2.13; its compiled ops do not load beside a CPU torch,
and `Resize` does not need them: see `_import_torchvision`.)
"""

from __future__ import annotations

import importlib.machinery
import re
import sys
import types
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("laion_clap_1.1.7.npz")
SEED = 0
TEXTS = ["a dog barks while cars pass by", "rain on a tin roof, thunder far away"]
# Up to 10 s, the study's length.
CLIP_S = {True: (3.0, 10.0), False: (3.0, 10.0)}
# The fused model at the edge of its window (10 s at 48 kHz, 480-sample hop): exactly the window, one
# sample past it, one hop minus a sample past it (still one window of mel frames: no fusion), one hop past
# it (one frame more: the fusion branch, its crops drawn from numpy's global RNG, seeded alike on both
# sides, and its shrunk whole mel).
EDGE_SAMPLES = (480_000, 480_001, 480_479, 480_480)


def _prepared(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    from t2a_ray.analysis.quality import peak_normalise, quantise_int16

    return quantise_int16(peak_normalise(rng.standard_normal((1, n_samples))))[0]


def clips(fusion: bool) -> list[np.ndarray]:
    """Mono 48-kHz clips after the int16 round trip (what stable-audio-metrics hands LAION-CLAP)."""
    rng = np.random.default_rng(5 if fusion else 6)
    return [_prepared(rng, int(s * 48_000)) for s in CLIP_S[fusion]]


def edge_clips() -> list[np.ndarray]:
    """Clips of `EDGE_SAMPLES` samples, prepared as `clips`."""
    rng = np.random.default_rng(7)
    return [_prepared(rng, n) for n in EDGE_SAMPLES]


def weights_checksum(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


RENAMES = {  # transformers' convert_clap_original_pytorch_to_hf.py KEYS_TO_MODIFY_MAPPING
    "text_branch": "text_model",
    "audio_branch": "audio_model.audio_encoder",
    "attn": "attention.self",
    "self.proj": "output.dense",
    "attention.self_mask": "attn_mask",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "bn0": "batch_norm",
}


def to_transformers(key: str) -> str:
    """A LAION-CLAP key's name in transformers (a qkv key names its query/key/value split with 'qkv')."""
    for old, new in RENAMES.items():
        key = key.replace(old, new)
    m = re.match(r".*_projection\.(\d+)\..*", key)
    if m:
        n = int(m.group(1))
        key = key.replace(f"_projection.{n}.", f"_projection.linear{1 if n == 0 else 2}.")
    return key


# Not used by the embeddings: the STFT/mel front end (fixed, transformers computes it in its feature
# extractor), the classification head, attention-mask buffers and the training-only MLP transforms.
UNUSED = re.compile(r"spectrogram_extractor|logmel_extractor|\.head\.|tscam_conv|attn_mask|_transform\.")


def _stub_unused_imports() -> None:
    import transformers  # noqa: F401 — before the stubs: transformers probes for torchvision once

    class Anything:
        def __call__(self, *a, **k):
            return self

        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return self

        def __getitem__(self, key):
            return self

        def __setitem__(self, key, value):
            pass

    def stub(name: str, **attrs) -> None:
        module = types.ModuleType(name)
        module.__path__ = []
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

        def anything(attr: str):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return Anything()

        module.__getattr__ = anything
        for k, v in attrs.items():
            setattr(module, k, v)
        sys.modules[name] = module

    class Memory:  # librosa's cache, off
        location = None

        def __init__(self, *a, **k):
            pass

    def no_jit(*a, **k):
        return a[0] if len(a) == 1 and callable(a[0]) and not k else (lambda f: f)

    stub("joblib", Memory=Memory)
    stub("numba", jit=no_jit, njit=no_jit, stencil=no_jit, guvectorize=no_jit, vectorize=no_jit)
    for name in (
        "h5py braceexpand webdataset wget ftfy progressbar soundfile audioread soxr pooch wandb sklearn "
        "sklearn.metrics timm timm.models timm.models.layers timm.layers"
    ).split():
        try:
            __import__(name)
        except ImportError:
            stub(name)


def _import_torchvision() -> None:
    """LAION-CLAP shrinks the fusion input with torchvision's `Resize`, plain torch code; torchvision's
    compiled detection ops are built against torch's CUDA build and do not load beside the CPU one, and
    its import then registers fake kernels for two of them, which needs their schemas: define those (the
    ops are never called)."""
    import torch

    for op in ("nms", "qnms"):
        torch.library.define(
            f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        )
    import torchvision.transforms  # noqa: F401


def embed(module, clip: np.ndarray) -> np.ndarray:
    """One clip through `CLAP_Module`, numpy's global RNG seeded as `Clap` seeds it (fusion crops)."""
    import torch

    np.random.seed(SEED)
    x = torch.from_numpy(clip).float()[None]
    return module.get_audio_embedding_from_data(x=x, use_tensor=True).double().numpy()[0]


def main() -> None:
    _import_torchvision()
    _stub_unused_imports()
    import torch
    from transformers import ClapTextConfig, RobertaConfig, RobertaModel, RobertaTokenizer

    from t2a_ray.adapters.clap import clap_model, clap_tokenizer

    roberta_base = {k: v for k, v in ClapTextConfig().to_dict().items() if k in RobertaConfig().to_dict()}
    RobertaTokenizer.from_pretrained = classmethod(lambda cls, *a, **k: clap_tokenizer("full"))
    RobertaModel.from_pretrained = classmethod(
        lambda cls, *a, **k: RobertaModel(RobertaConfig(**roberta_base))
    )
    import laion_clap

    out: dict[str, np.ndarray] = {}
    for fusion in (True, False):
        torch.manual_seed(SEED)
        ours = clap_model("full", fusion=fusion)
        theirs = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu")
        source = ours.state_dict()
        state = theirs.model.state_dict()
        for key in state:
            name = to_transformers(key)
            if "qkv" in name:
                state[key] = torch.cat([source[name.replace("qkv", p)] for p in ("query", "key", "value")])
            elif name in source:
                state[key] = source[name]
            elif not UNUSED.search(key):
                raise SystemExit(f"{key} ({name}) has no counterpart in transformers' ClapModel")
        theirs.model.load_state_dict(state)
        theirs.eval()
        tag = "fused" if fusion else "unfused"
        out[f"{tag}_weights_checksum"] = np.array(weights_checksum(ours))
        with torch.no_grad():
            out[f"{tag}_text"] = theirs.get_text_embedding(TEXTS, use_tensor=True).double().numpy()
            out[f"{tag}_audio"] = np.stack([embed(theirs, clip) for clip in clips(fusion)])
            if fusion:
                out["fused_edge_audio"] = np.stack([embed(theirs, clip) for clip in edge_clips()])
    np.savez(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
