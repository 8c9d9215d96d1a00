"""`pretrained` loads through the same code path a user with internet takes, here from saved tiny folders.

For the diffusers-native models the tiny pipeline is `save_pretrained` to a folder and loaded back with
``weights="pretrained", repo=<folder>``, offline (tests/conftest.py sets HF_HUB_OFFLINE=1 before any
import). Tango's checkpoints are not diffusers pipelines: the test writes a tiny model in Tango's own
layout (AudioLDM key names for the VAE and vocoder) and loads it through the mapping.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from t2a_ray.adapters import adapter_class

PARAMS = {"steps": 3, "duration_s": 0.5, "batch_size": 2}
PROMPTS = ["A dog barks while cars pass by", "Water running into a sink"]


def test_the_suite_runs_offline():
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE


def _roundtrip(model_id: str, folder, edit=None):
    cls = adapter_class(model_id)
    tiny = cls.load(device="cpu", dtype="float32", weights="tiny")
    tiny.model.save_pretrained(folder)
    if edit is not None:
        edit(tiny, folder)
    loaded = cls.load(device="cpu", dtype="float32", weights="pretrained", repo=str(folder))
    return tiny, loaded


@pytest.mark.parametrize("model_id", ["audioldm", "audioldm2", "stable-audio-open", "musicldm"])
def test_pretrained_loads_a_saved_pipeline_folder_offline(model_id, tmp_path):
    tiny, loaded = _roundtrip(model_id, tmp_path / model_id)
    assert loaded.revision == str((tmp_path / model_id).resolve())
    assert loaded.parameter_count == tiny.parameter_count
    marks: list[str] = []
    a = tiny.generate(PROMPTS, PARAMS, seed=3).waveforms
    b = loaded.generate(PROMPTS, PARAMS, seed=3, phases=marks.append).waveforms
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert marks == list(loaded.card.phases)


def test_audioldm2_repos_naming_gpt2model_get_the_lm_head_class(tmp_path):
    """cvssp/audioldm2's model_index names GPT2Model; the pipeline needs GPT2LMHeadModel's generation helpers."""

    def as_published(tiny, folder):
        tiny.model.language_model.transformer.save_pretrained(folder / "language_model")  # a bare GPT2Model
        index = json.loads((folder / "model_index.json").read_text())
        index["language_model"] = ["transformers", "GPT2Model"]
        (folder / "model_index.json").write_text(json.dumps(index))

    tiny, loaded = _roundtrip("audioldm2", tmp_path / "audioldm2", edit=as_published)
    assert type(loaded.model.language_model).__name__ == "GPT2LMHeadModel"
    a = tiny.generate(PROMPTS[:1], PARAMS, seed=1).waveforms
    b = loaded.generate(PROMPTS[:1], PARAMS, seed=1).waveforms
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_hub_ids_that_are_not_cached_fail_offline_with_the_hub_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(Exception, match="(?i)offline|cannot find|not.*found|connection"):
        adapter_class("audioldm").load(
            device="cpu", dtype="float32", weights="pretrained", repo="cvssp/no-such-repo-here"
        )


# -- Tango: the published layout, mapped onto diffusers components -------------------------------------


def _ldm_vae_state(vae) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL state dict in LDM/AudioLDM names (the inverse of diffusers' conversion;
    the map of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py)."""
    n = len(vae.config.block_out_channels)
    layers = vae.config.layers_per_block
    pairs = [
        ("nin_shortcut", "conv_shortcut"),
        ("norm_out", "conv_norm_out"),
        ("mid.attn_1.", "mid_block.attentions.0."),
    ]
    for i in range(n):
        pairs += [
            (f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}.") for j in range(layers)
        ]
        pairs += [
            (f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}.")
            for j in range(layers + 1)
        ]
        pairs += [
            (f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."),
            (f"up.{n - 1 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."),
        ]
    pairs += [(f"mid.block_{i + 1}.", f"mid_block.resnets.{i}.") for i in range(2)]
    attn = [
        ("norm.", "group_norm."),
        ("q.", "to_q."),
        ("k.", "to_k."),
        ("v.", "to_v."),
        ("proj_out.", "to_out.0."),
    ]
    out = {}
    for key, value in vae.state_dict().items():
        for ldm, diffusers in pairs:
            key = key.replace(diffusers, ldm)
        if "attn_1." in key:
            for ldm, diffusers in attn:
                key = key.replace("attn_1." + diffusers, "attn_1." + ldm)
            if value.ndim == 2:
                value = value[:, :, None, None]  # LDM's attention projections are 1×1 convolutions
        out[key] = value.clone()
    return out


def _write_tango_layout(tiny, folder):
    m = tiny.model
    folder.mkdir()
    (folder / "main_config.json").write_text(
        json.dumps(
            {
                "text_encoder_name": "google/flan-t5-large",
                "scheduler_name": "stabilityai/stable-diffusion-2-1",
                "unet_model_config_path": "configs/diffusion_model_config.json",
                "snr_gamma": 5.0,
            }
        )
    )
    main = {f"unet.{k}": v for k, v in m.unet.state_dict().items()}
    main.update({f"text_encoder.{k}": v for k, v in m.text_encoder.state_dict().items()})
    torch.save(main, folder / "pytorch_model_main.bin")
    vc = m.vae.config
    (folder / "vae_config.json").write_text(
        json.dumps(
            {
                "image_key": "fbank",
                "subband": 1,
                "embed_dim": vc.latent_channels,
                "time_shuffle": 1,
                "scale_factor": vc.scaling_factor,
                "ddconfig": {
                    "double_z": True,
                    "z_channels": vc.latent_channels,
                    "resolution": 256,
                    "in_channels": 1,
                    "out_ch": 1,
                    "ch": vc.block_out_channels[0],
                    "ch_mult": [c // vc.block_out_channels[0] for c in vc.block_out_channels],
                    "num_res_blocks": vc.layers_per_block,
                    "attn_resolutions": [],
                    "dropout": 0.0,
                    "norm_num_groups": vc.norm_num_groups,
                },  # tiny only: LDM's GroupNorm has 32
                "vocoder_config": {
                    k: getattr(m.vocoder.config, k)
                    for k in (
                        "model_in_dim",
                        "upsample_initial_channel",
                        "upsample_rates",
                        "upsample_kernel_sizes",
                        "resblock_kernel_sizes",
                        "resblock_dilation_sizes",
                    )
                },
            }
        )
    )
    vae = _ldm_vae_state(m.vae)
    voc = {
        k.replace("upsampler.", "ups."): v
        for k, v in m.vocoder.state_dict().items()
        if k not in ("mean", "scale")
    }
    vae.update({f"vocoder.{k}": v for k, v in voc.items()})
    torch.save(vae, folder / "pytorch_model_vae.bin")
    # The UNet/T5 configs and the tokenizer live in Tango's code repo and on the hub, not in its folder:
    m.unet.save_config(folder / "unet")
    m.text_encoder.config.save_pretrained(folder / "text_encoder")
    m.tokenizer.save_pretrained(folder / "tokenizer")


@pytest.mark.parametrize("model_id", ["tango", "tango2"])
def test_tango_published_layout_maps_onto_diffusers_components(model_id, tmp_path):
    cls = adapter_class(model_id)
    tiny = cls.load(device="cpu", dtype="float32", weights="tiny")
    _write_tango_layout(tiny, tmp_path / model_id)
    loaded = cls.load(device="cpu", dtype="float32", weights="pretrained", repo=str(tmp_path / model_id))
    for part in ("unet", "text_encoder", "vae", "vocoder"):
        want, got = getattr(tiny.model, part).state_dict(), getattr(loaded.model, part).state_dict()
        assert want.keys() == got.keys(), part
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=f"{part}.{key}")
    assert loaded.parameter_count == tiny.parameter_count
    a = tiny.generate(PROMPTS, PARAMS, seed=5).waveforms
    b = loaded.generate(PROMPTS, PARAMS, seed=5).waveforms
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
