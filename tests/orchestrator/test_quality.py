"""The worker's quality scorer end to end on tiny, locally built CLAP models: CLAP score under the
stable-audio-metrics protocol, FAD / FAD∞ on fadtk's windows, the reference cache, quality.parquet."""

import struct

import numpy as np
import pandas as pd
import pytest

from t2a_ray.adapters.base import WEIGHT_MODES, quality_from_trained_weights
from t2a_ray.adapters.clap import QualityError, load_clap
from t2a_ray.analysis.audio import read_audio, read_wav, resample, write_wav
from t2a_ray.analysis.tables import QUALITY_COLUMNS, read_quality_table, write_quality_table
from t2a_ray.config import QualityConfig
from t2a_ray.orchestrator.scoring import (
    AudioEmbedder,
    FadtkEmbedder,
    QualityScorer,
    clap_scores,
    load_reference,
    score_configuration,
)


@pytest.fixture(scope="module")
def clap():
    return load_clap("tiny", seed=0)


@pytest.fixture(scope="module")
def fad_embedder():
    return FadtkEmbedder(load_clap("tiny", fusion=False, seed=1))


def _noise(n, seconds, rate, seed, channels=1, scale=0.1):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((n, channels, int(seconds * rate)))).astype(np.float32)


def test_clap_score_end_to_end(clap):
    texts = ["a dog barks", "rain on a tin roof", "a car engine idles"]
    wav = _noise(3, 2.0, 16_000, seed=0, channels=2)
    scores = clap_scores(clap, texts, wav, 16_000)
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert np.all(np.abs(scores) <= 1.0 + 1e-9)
    # One clip's score does not depend on the batch it came in, nor on the order.
    alone = clap_scores(clap, texts[1:2], wav[1:2], 16_000)
    assert alone[0] == pytest.approx(scores[1], abs=1e-5)
    flipped = clap_scores(clap, texts[::-1], wav[::-1], 16_000)
    np.testing.assert_allclose(flipped[::-1], scores, atol=1e-5)
    # Resampled to 48 kHz: the same audio given at 48 kHz scores (nearly) the same.
    up = resample(wav, 16_000, 48_000)
    np.testing.assert_allclose(clap_scores(clap, texts, up, 48_000), scores, atol=2e-3)


def test_clap_embeddings_are_unit_norm_and_long_clips_work(clap):
    clips = [c for c in _noise(2, 12.5, 48_000, seed=1)[:, 0]]  # longer than CLAP's 10 s
    emb = clap.embed_audio(clips)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    text = clap.embed_text(["é and ü — non-ASCII captions tokenize too"])
    assert text.shape == (1, emb.shape[1])


def test_clap_score_checks_inputs(clap):
    with pytest.raises(ValueError, match="2 texts for 3 waveforms"):
        clap_scores(clap, ["a", "b"], _noise(3, 1.0, 16_000, seed=2), 16_000)
    with pytest.raises(ValueError, match="shaped"):
        clap_scores(clap, ["a"], np.zeros((1, 1, 1, 10), np.float32), 16_000)
    with pytest.raises(ValueError, match="weights"):
        load_clap("huge")
    with pytest.raises(ValueError, match="only weights='pretrained'"):
        load_clap("tiny", source="laion/clap-htsat-fused")


def test_fad_inf_end_to_end_with_cached_reference(tmp_path, fad_embedder):
    ref_dir = tmp_path / "ref"
    (ref_dir / "sub").mkdir(parents=True)
    for i, clip in enumerate(_noise(6, 1.5, 16_000, seed=3)):
        write_wav(ref_dir / ("sub" if i % 2 else "") / f"clip{i}.wav", clip, 16_000)
    (ref_dir / "notes.txt").write_text("not audio")
    cache = tmp_path / "cache"

    ref = load_reference(ref_dir, fad_embedder, cache_dir=cache)
    # fadtk's windows start every second inside the clip: a 1.5-s clip gives 2 rows
    assert len(ref.files) == 6 and ref.cached == 0 and ref.embeddings.shape[0] == 12
    again = load_reference(ref_dir, fad_embedder, cache_dir=cache)
    assert again.cached == 6
    np.testing.assert_array_equal(again.embeddings, ref.embeddings)
    # Editing one file re-embeds that file only.
    write_wav(ref_dir / "clip0.wav", _noise(1, 1.5, 16_000, seed=99)[0], 16_000)
    assert load_reference(ref_dir, fad_embedder, cache_dir=cache).cached == 5

    generated = _noise(8, 2.5, 44_100, seed=4, channels=2)  # 3 windows each: 24 rows
    row = score_configuration("t1", None, generated, 44_100, fad_embedder=fad_embedder, reference=ref)
    assert row["fad"] >= 0 and row["fad_n_generated"] == 24 and row["fad_n_reference"] == 12
    assert row["fad_embedding"] == "fadtk" and row["fad_inf"] is None  # far below fadtk's 2 × 500 rows
    assert "needs ≥ 1000 embedding rows" in row["fad_inf_note"] and "got 24" in row["fad_inf_note"]
    row = score_configuration(
        "t1", None, generated, 44_100, fad_embedder=fad_embedder, reference=ref, fad_inf_min_n=12
    )
    assert np.isfinite(row["fad_inf"]) and np.isfinite(row["fad_inf_slope"]) and row["fad_inf_note"] is None
    assert row["fad_inf_sizes"] == [int(n) for n in np.linspace(12, 24, 25)] and row["fad_inf_r2"] <= 1


def test_reference_errors(tmp_path, fad_embedder):
    with pytest.raises(QualityError, match="not a folder"):
        load_reference(tmp_path / "missing", fad_embedder)
    (tmp_path / "one").mkdir()
    write_wav(tmp_path / "one" / "a.wav", np.zeros(100), 16_000)
    with pytest.raises(QualityError, match="at least 2 audio files"):
        load_reference(tmp_path / "one", fad_embedder)


def test_score_configuration_and_quality_table(tmp_path, clap, fad_embedder):
    wav = _noise(4, 1.0, 16_000, seed=5)
    row = score_configuration("abc", ["birds"] * 4, wav, 16_000, clap=clap)
    assert row["clap_model"] == clap.name and row["n_generations"] == 4
    assert -1 <= row["clap_mean"] <= 1 and row["clap_ci95"] > 0
    row["scoring_energy_j"] = 12.5
    path = tmp_path / "quality.parquet"
    written = write_quality_table([row, {"trial_id": "def", "fad": 3.0, "prompt_set": "clotho"}], path)
    assert list(written.columns)[: len(QUALITY_COLUMNS)] == list(QUALITY_COLUMNS)
    back = read_quality_table(path)
    assert back.loc[0, "scoring_energy_j"] == 12.5 and pd.isna(back.loc[1, "clap_mean"])
    assert back.loc[1, "prompt_set"] == "clotho"
    with pytest.raises(ValueError, match="trial_id repeated"):
        write_quality_table([{"trial_id": "a"}, {"trial_id": "a"}], path)


def test_a_quality_row_knows_whether_its_audio_and_scorer_came_from_trained_weights(tmp_path):
    trained = {(a, s) for a in WEIGHT_MODES for s in WEIGHT_MODES if quality_from_trained_weights(a, s)}
    assert trained == {("pretrained", "pretrained")}  # tiny or random on either side: noise
    scorer = QualityScorer(QualityConfig(clap=True), "tiny", "cpu", tmp_path / "cache")
    row = scorer.score("abc", ["birds"] * 2, _noise(2, 1.0, 16_000, seed=3), 16_000)
    assert row["trained_weights"] is False and row["clap_mean"] is not None
    back = write_quality_table([row], tmp_path / "quality.parquet")
    assert back.loc[0, "trained_weights"] == False  # noqa: E712 — pandas' nullable boolean
    assert read_quality_table(tmp_path / "quality.parquet")["trained_weights"].dtype == "boolean"


class _MeanEmbedder(AudioEmbedder):
    """Any model fits behind the interface: here, per-clip mean and std of the samples."""

    name = "mean-std"
    cache_key = "mean-std-v1"

    def embed(self, waveforms, sample_rate_hz):
        x = np.asarray(waveforms, np.float64)
        return [np.array([[clip.mean(), clip.std()]]) for clip in x]


def test_another_embedder_behind_the_interface(tmp_path):
    for i, clip in enumerate(_noise(5, 0.5, 8_000, seed=6)):
        write_wav(tmp_path / f"{i}.wav", clip, 8_000)
    ref = load_reference(tmp_path, _MeanEmbedder())
    row = score_configuration(
        "x",
        None,
        _noise(5, 0.5, 8_000, seed=7, scale=0.5),
        8_000,
        fad_embedder=_MeanEmbedder(),
        reference=ref,
    )
    assert row["fad"] > 0.1  # louder generations: a clear distance in the std dimension


def _riff(fmt_code, channels, rate, bits, payload, extensible=False):
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt_code) + b"\x00" * 14
    else:
        fmt = struct.pack("<HHIIHH", fmt_code, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip (padded)
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("extensible", [False, True])
def test_wav_reader_formats(tmp_path, extensible):
    x = np.array([[0.0, 0.5, -0.5, 0.25], [0.1, -0.1, 0.2, -1.0]], dtype=np.float32)  # (ch, n)
    inter = x.T.reshape(-1)
    cases = {
        "f32": (3, 32, inter.astype("<f4").tobytes(), 1e-7),
        "f64": (3, 64, inter.astype("<f8").tobytes(), 1e-7),
        "i16": (1, 16, np.round(inter * 32767).astype("<i2").tobytes(), 1e-4),
        "i32": (1, 32, np.round(inter * 2147483647).astype("<i4").tobytes(), 1e-6),
        "u8": (1, 8, (np.round(inter * 127) + 128).astype(np.uint8).tobytes(), 1e-2),
    }
    i24 = np.round(inter * 8388607).astype(np.int32)
    cases["i24"] = (1, 24, b"".join(int(v & 0xFFFFFF).to_bytes(3, "little") for v in i24), 1e-6)
    for name, (code, bits, payload, tol) in cases.items():
        p = tmp_path / f"{name}.wav"
        p.write_bytes(_riff(code, 2, 22_050, bits, payload, extensible))
        y, rate = read_wav(p)
        assert rate == 22_050 and y.shape == (2, 4) and y.dtype == np.float32, name
        np.testing.assert_allclose(y, x, atol=tol, err_msg=name)


def test_wav_round_trip_and_errors(tmp_path):
    x = np.sin(np.linspace(0, 20, 1000)).astype(np.float32) * 0.5
    write_wav(tmp_path / "a.wav", np.stack([x, -x]), 16_000)
    y, rate = read_audio(tmp_path / "a.wav")
    assert rate == 16_000 and y.shape == (2, 1000)
    np.testing.assert_allclose(y[0], x, atol=1e-4)
    (tmp_path / "bad.wav").write_bytes(b"not a wav file")
    with pytest.raises(ValueError, match="not a RIFF"):
        read_wav(tmp_path / "bad.wav")


class _NanEmbedder(_MeanEmbedder):
    """An embedder that goes wrong on some clips once `poison` is set (as a float16 overflow would)."""

    poison = False

    def embed(self, waveforms, sample_rate_hz):
        rows = super().embed(waveforms, sample_rate_hz)
        return [r * np.nan if self.poison and i in (1, 3) else r for i, r in enumerate(rows)]


def test_a_failing_metric_never_costs_the_other(tmp_path, clap):
    for i, clip in enumerate(_noise(4, 0.5, 8_000, seed=8)):
        write_wav(tmp_path / f"{i}.wav", clip, 8_000)
    wav = _noise(5, 0.5, 8_000, seed=9)
    embedder = _NanEmbedder()
    ref = load_reference(tmp_path, embedder)
    embedder.poison = True
    row = score_configuration("x", ["a"] * 5, wav, 8_000, clap=clap, fad_embedder=embedder, reference=ref)
    assert -1 <= row["clap_mean"] <= 1 and row["clap_protocol"] == "stable-audio-metrics"
    assert row.get("fad") is None and row.get("fad_inf") is None
    assert row["fad_error"] == "ValueError: FAD generated embeddings: 2 row(s) hold NaN or inf (rows 1, 3)"
    with pytest.raises(
        ValueError, match=r"FAD reference .* embeddings: 2 row\(s\) hold NaN or inf \(rows 1, 3\)"
    ):
        load_reference(tmp_path, embedder)
    embedder.poison = False
    row = score_configuration("x", None, wav, 8_000, clap=clap, fad_embedder=embedder, reference=ref)
    assert "needs the texts" in row["clap_error"] and row.get("clap_mean") is None
    assert row["fad"] > 0 and "fad_error" not in row


def test_short_clips_never_go_through_the_fusion_branch(clap):
    import torch

    # stable-audio-metrics' LAION-CLAP in eval mode fuses only clips longer than 10 s; transformers'
    # feature extractor marks a lone short clip "longer" at random — the difference this guards.
    clip = _noise(1, 3.0, 48_000, seed=10)[0, 0]
    features = clap.feature_extractor([clip.astype(np.float64)], sampling_rate=48_000, return_tensors="pt")
    assert bool(features["is_longer"].item())
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
