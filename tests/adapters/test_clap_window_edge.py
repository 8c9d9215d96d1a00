"""The fusion branch's edge: LAION-CLAP fuses a clip only when its mel has more frames than one 10-s
window's, i.e. from one hop past the window, not from one sample past it. The recording of LAION-CLAP
itself at these lengths is `tests/parity/test_laion_clap_parity.py`; these run without it."""

import numpy as np
import torch

from t2a_ray.adapters.clap import CLAP_SAMPLE_RATE_HZ, Clap, clap_feature_extractor, load_clap


def _edge_lengths(fe) -> list[int]:
    window, hop = int(fe.nb_max_samples), int(fe.hop_length)
    return [window - 1, window, window + 1, window + hop - 1, window + hop, window + hop + 1]


def test_is_longer_is_true_from_one_hop_past_the_window_as_the_extractor_decides():
    # the tiny extractor (40-ms hop) keeps this fast; the full one (10-ms hop) is in the parity test
    fe = clap_feature_extractor(fusion=True, tiny=True)
    clap = Clap(load_clap("tiny").model, fe, None, name="edge")
    window, hop = int(fe.nb_max_samples), int(fe.hop_length)
    assert window == 10 * CLAP_SAMPLE_RATE_HZ
    # beside a clip that is certainly longer, the extractor draws no random "longer": its flag for the
    # first clip is its own decision, from the frames of that clip's mel
    certainly_longer = np.zeros(window + 4 * hop)
    rng = np.random.default_rng(3)
    for n in _edge_lengths(fe):
        f = fe(
            [rng.standard_normal(n), certainly_longer],
            sampling_rate=CLAP_SAMPLE_RATE_HZ,
            truncation="fusion",
            padding="repeatpad",
            return_tensors="np",
        )
        assert clap.is_longer(n) == bool(f["is_longer"][0, 0]), n
        assert clap.is_longer(n) == (n >= window + hop), n


def test_a_clip_less_than_a_hop_past_the_window_embeds_its_whole_mel_unfused():
    clap = load_clap("tiny", seed=0)
    fe = clap.feature_extractor
    window, hop = int(fe.nb_max_samples), int(fe.hop_length)
    rng = np.random.default_rng(4)
    for n in (window + 1, window + hop - 1):
        clip = rng.standard_normal(n).astype(np.float32)
        features = fe([clip.astype(np.float64)], sampling_rate=CLAP_SAMPLE_RATE_HZ, return_tensors="pt")
        mel = features["input_features"][0]
        assert all(torch.equal(mel[0], mel[k]) for k in (1, 2, 3))  # the whole mel, four times
        assert bool(features["is_longer"].item())  # transformers' random pick for a lone clip
        with torch.inference_mode():
            as_if = {
                longer: clap.model.get_audio_features(
                    input_features=features["input_features"], is_longer=torch.tensor([[longer]])
                )
                .pooler_output.double()[0]
                .numpy()
                for longer in (False, True)
            }
        ours = clap.embed_audio([clip])[0]
        np.testing.assert_allclose(ours, as_if[False], atol=1e-6)
        assert not np.allclose(ours, as_if[True], atol=1e-3)
