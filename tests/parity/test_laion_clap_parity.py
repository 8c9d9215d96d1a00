"""Our CLAP path (transformers' port, `t2a_ray.adapters.clap`) against LAION-CLAP's own `CLAP_Module`
with the same random weights, recorded by `record_laion_clap.py` (its docstring says how and why)."""

import numpy as np
import pytest
import torch
from record_laion_clap import CLIP_S, EDGE_SAMPLES, OUT, SEED, TEXTS, clips, edge_clips, weights_checksum

from t2a_ray.adapters.clap import Clap, clap_feature_extractor, clap_model, clap_tokenizer

pytestmark = pytest.mark.slow  # two full-size CLAPs (about 150 M parameters each) on the CPU


@pytest.fixture(scope="module")
def recorded():
    with np.load(OUT) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("fusion", [True, False], ids=["fused", "unfused"])
def test_text_and_audio_embeddings_equal_laion_claps(recorded, fusion):
    tag = "fused" if fusion else "unfused"
    torch.manual_seed(SEED)
    model = clap_model("full", fusion=fusion)
    assert weights_checksum(model) == pytest.approx(float(recorded[f"{tag}_weights_checksum"]), rel=1e-9), (
        "torch initialises CLAP differently from the recording: re-record with record_laion_clap.py"
    )
    clap = Clap(model, clap_feature_extractor(fusion), clap_tokenizer("full"), name=tag, seed=SEED)
    np.testing.assert_allclose(clap.embed_text(TEXTS), recorded[f"{tag}_text"], atol=1e-5)
    audio = clap.embed_audio(clips(fusion))
    assert audio.shape == (len(CLIP_S[fusion]), 512)
    np.testing.assert_allclose(audio, recorded[f"{tag}_audio"], atol=1e-4)


def test_clips_at_the_windows_edge_take_laion_claps_branch(recorded):
    # 480,000 and 480,001–480,479 samples: one window of mel frames, no fusion; 480,480: fusion
    torch.manual_seed(SEED)
    clap = Clap(clap_model("full", fusion=True), clap_feature_extractor(True), None, name="edge", seed=SEED)
    assert [clap.is_longer(n) for n in EDGE_SAMPLES] == [False, False, False, True]
    audio = clap.embed_audio(edge_clips())
    np.testing.assert_allclose(audio, recorded["fused_edge_audio"], atol=1e-4)
