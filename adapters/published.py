"""Published parameter counts of the full-size models, with their sources (pure data, no torch).

`random` weights are only as good as the architecture they fill: the full-size configs must give the
published counts. tests/adapters/test_adapters_fullsize.py builds each on the `meta` device and compares;
benchmarks/adapters_fullsize.py prints the same comparison for the models built on a GPU.

Each entry: (component, published count, relative tolerance, source). Component "total" is the sum of all
modules the adapter loads; other names are attributes of the loaded model (pipeline components).
Tolerances are 3 % unless the published figure is rounded to two significant digits.
"""

from __future__ import annotations

PUBLISHED: dict[str, list[tuple[str, float, float, str]]] = {
    "audioldm": [
        ("total", 421e6, 0.03, "cvssp/audioldm-s-full-v2 model card, Table 1 (421M)"),
        (
            "unet",
            181e6,
            0.03,
            "cvssp/audioldm-l-full model card (first revision), AudioLDM table: AudioLDM-S 181M",
        ),
    ],
    "audioldm2": [
        ("total", 1.1e9, 0.05, "cvssp/audioldm2 model card: total 1.1B (rounded)"),
        ("unet", 350e6, 0.03, "cvssp/audioldm2 model card: UNet 350M"),
    ],
    "audioldm2-large": [
        ("total", 1.5e9, 0.05, "cvssp/audioldm2 model card: total 1.5B (rounded)"),
        ("unet", 750e6, 0.05, "cvssp/audioldm2 model card: UNet 750M (rounded)"),
        (
            "unet",
            717.5e6,
            0.01,
            "cvssp/audioldm2-large unet/diffusion_pytorch_model.safetensors: 2.87 GB fp32 / 4 B",
        ),
    ],
    "audioldm2-music": [
        ("total", 1.1e9, 0.05, "cvssp/audioldm2 model card: total 1.1B (rounded)"),
        ("unet", 350e6, 0.03, "cvssp/audioldm2 model card: UNet 350M"),
    ],
    "stable-audio-open": [
        ("transformer", 1057e6, 0.01, "Stable Audio Open paper (arXiv:2407.14358), §3: DiT 1057M"),
        ("vae", 156e6, 0.01, "Stable Audio Open paper, §3: autoencoder 156M"),
        ("text_encoder", 109e6, 0.01, "Stable Audio Open paper, §3: T5-base 109M"),
    ],
    "tango": [("unet", 866e6, 0.01, "Tango paper (arXiv:2304.13731), Table 1: 866M (the diffusion model)")],
    "tango2": [("unet", 866e6, 0.01, "Tango 2 fine-tunes Tango (DPO); same architecture: 866M")],
    "musicldm": [
        (
            "unet",
            181e6,
            0.03,
            "MusicLDM uses AudioLDM-S's UNet (convert_original_musicldm_to_diffusers.py): "
            "181M as AudioLDM-S. No total is published.",
        ),
    ],
    "make-an-audio": [
        ("total", 453e6, 0.01, "Make-An-Audio 2 paper (arXiv:2305.18474), Table 1: Make-An-Audio 453M"),
        ("vocoder", 112e6, 0.01, "BigVGAN paper (arXiv:2206.04658), Table 1: BigVGAN 112M"),
    ],
    "make-an-audio-2": [
        ("total", 937e6, 0.01, "Make-An-Audio 2 paper (arXiv:2305.18474), Table 1: Make-An-Audio 2 937M"),
    ],
}
