"""`make-an-audio-2`: Make-An-Audio 2 (bytedance/Make-An-Audio-2), re-implemented on torch blocks.

Sources (bytedance/Make-An-Audio-2): ``configs/text2audio-ConcatDiT-ae1dnat_Skl20d2_struct2MLPanylen.yaml``
(denoiser, schedule, encoders), ``configs/autoencoder1d_kl20_natbig_r1_down2_disc2.yaml`` (VAE),
``ldm/modules/diffusionmodules/concatDiT.py`` (``ConcatDiT2MLP``), ``ldm/modules/new_attention.py``
(``Conv1dFeedForward``, ``PositionEmbedding``), ``ldm/models/autoencoder1d.py`` (``Encoder1D``,
``Decoder1D``), ``ldm/modules/encoders/modules.py`` (``FrozenCLAPFLANEmbedder``), ``scripts/gen_wav.py``.
The classes below keep the original module and parameter names. Attention runs through PyTorch's
``scaled_dot_product_attention`` (the same values as the original's explicit softmax(QKᵀ)V, as diffusers
computes attention for the other models).

* Denoiser: a concat-DiT — the timestep, the two conditioning sequences (CLAP on the caption, T5 on the
  structured caption, 77 tokens each, through separate MLPs) and the latent frames are one sequence with
  learned positions (1000); 4 blocks of hidden 576, 8 heads, each two self-attentions and a GEGLU
  feed-forward made of kernel-9 1-D convolutions.
* VAE: 1-D over 80 mel channels, ch 384 × [1, 2, 4], kernel 5 (decoder res-blocks kernel 3), 2 res-blocks,
  one ×2 time downsampling, attention only in the middle (``attn_layers: [3]`` names no level), 20 latents.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2a_ray.adapters import _bigvgan, _text
from t2a_ray.adapters import _components as C
from t2a_ray.adapters._maa import (
    TEXT_TOKENS,
    ClapTextEncoder,
    MakeAnAudioBase,
    OriginalCodeAdapter,
    bert_tokenizer,
    ldm_scheduler,
    parts,
)
from t2a_ray.adapters.cards import MAKE_AN_AUDIO_2

DIT_FULL = dict(in_channels=20, context_dim=1024, hidden_size=576, num_heads=8, depth=4, max_len=1000)
VAE_FULL = dict(
    in_channels=80,
    out_ch=80,
    z_channels=20,
    embed_dim=20,
    kernel_size=5,
    ch=384,
    ch_mult=(1, 2, 4),
    num_res_blocks=2,
    attn_layers=(3,),
    down_layers=(0,),
)


def _group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


# -- denoiser: ConcatDiT2MLP ---------------------------------------------------------------------------


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.frequency_embedding_size = frequency_embedding_size

    def forward(self, t):
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(embedding.to(self.mlp[0].weight.dtype))


class ConditionEmbedder(nn.Module):
    def __init__(self, hidden_size: int, context_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(context_dim, hidden_size),
            nn.GELU(approximate="tanh"),
            nn.Linear(hidden_size, hidden_size),
            nn.LayerNorm(hidden_size),
        )

    def forward(self, x):
        return self.mlp(x)


class SelfAttention(nn.Module):
    """new_attention.CrossAttention without a context (both of the DiT's attentions are self-attention)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Conv1dGEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 9):
        super().__init__()
        self.proj = nn.Conv1d(dim_in, dim_out * 2, kernel_size=kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=1)
        return x * F.gelu(gate)


class Conv1dFeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4, kernel_size: int = 9):
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(
            Conv1dGEGLU(dim, inner),
            nn.Dropout(0.0),
            nn.Conv1d(inner, dim, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x):  # (B, C, T)
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, d_head: int):
        super().__init__()
        self.attn1 = SelfAttention(dim, n_heads, d_head)
        self.ff = Conv1dFeedForward(dim)
        self.attn2 = SelfAttention(dim, n_heads, d_head)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x):  # (B, T, C)
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x)) + x
        return self.ff(self.norm3(x).permute(0, 2, 1)).permute(0, 2, 1) + x


class TemporalTransformer(nn.Module):
    def __init__(self, in_channels: int, n_heads: int, d_head: int, depth: int = 1):
        super().__init__()
        inner = n_heads * d_head
        self.norm = _group_norm(in_channels)
        self.proj_in = nn.Conv1d(in_channels, inner, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, n_heads, d_head) for _ in range(depth)
        )
        self.proj_out = nn.Conv1d(inner, in_channels, kernel_size=1)

    def forward(self, x):  # (B, C, T)
        h = self.proj_in(self.norm(x)).transpose(1, 2)
        for block in self.transformer_blocks:
            h = block(h)
        return self.proj_out(h.transpose(1, 2)) + x


class ConcatDiT2MLP(nn.Module):
    def __init__(
        self, in_channels: int, context_dim: int, hidden_size: int, num_heads: int, depth: int, max_len: int
    ):
        super().__init__()
        self.in_channels = self.out_channels = in_channels
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.c1_embedder = ConditionEmbedder(hidden_size, context_dim)
        self.c2_embedder = ConditionEmbedder(hidden_size, context_dim)
        self.proj_in = nn.Conv1d(in_channels, hidden_size, kernel_size=5, padding=2)
        self.pos_emb = nn.Module()
        self.pos_emb.weight = nn.Parameter(torch.empty(max_len, hidden_size))  # PositionEmbedding, MODE_ADD
        nn.init.xavier_normal_(self.pos_emb.weight)
        self.blocks = nn.ModuleList(
            TemporalTransformer(hidden_size, num_heads, hidden_size // num_heads) for _ in range(depth)
        )
        self.final_layer = nn.Module()
        self.final_layer.norm_final = _group_norm(hidden_size, 16)
        self.final_layer.conv1d = nn.Conv1d(hidden_size, self.out_channels, kernel_size=1)

    def forward(self, x, t, context):
        """x (N, C, T) latents, t (N,) timesteps, context (N, 2 × 77, context_dim) → (N, C, T)."""
        t = self.t_embedder(t).unsqueeze(1)
        c1, c2 = context.chunk(2, dim=1)
        c = torch.cat((self.c1_embedder(c1), self.c2_embedder(c2)), dim=1)
        extra_len = c.shape[1] + 1
        x = torch.cat([t, c, self.proj_in(x).transpose(1, 2)], dim=1)
        x = (x + self.pos_emb.weight[: x.shape[1]][None]).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = x[..., extra_len:]
        return self.final_layer.conv1d(self.final_layer.norm_final(x))


# -- VAE: AutoencoderKL over Encoder1D / Decoder1D ------------------------------------------------------


class ResnetBlock1D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm2 = _group_norm(out_channels)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv1d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if self.in_channels != self.out_channels else x) + h


class AttnBlock1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = _group_norm(channels)
        self.q, self.k, self.v = (nn.Conv1d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = (f(h).transpose(1, 2)[:, None] for f in (self.q, self.k, self.v))  # (B, 1, T, C)
        return x + self.proj_out(F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2))


class Upsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1)))


def _level(blocks: list[nn.Module], attn: list[nn.Module]) -> nn.Module:
    level = nn.Module()
    level.block, level.attn = nn.ModuleList(blocks), nn.ModuleList(attn)
    return level


def _middle(channels: int, kernel_size: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock1D(channels, channels, kernel_size)
    mid.attn_1 = AttnBlock1D(channels)
    mid.block_2 = ResnetBlock1D(channels, channels, kernel_size)
    return mid


class Encoder1D(nn.Module):
    def __init__(
        self,
        *,
        ch,
        ch_mult,
        num_res_blocks,
        attn_layers,
        down_layers,
        in_channels,
        z_channels,
        kernel_size,
        **_,
    ):
        super().__init__()
        self.num_res_blocks, self.down_layers = num_res_blocks, tuple(down_layers)
        self.conv_in = nn.Conv1d(in_channels, ch, kernel_size, padding=kernel_size // 2)
        in_mult = (1, *ch_mult)
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            block_in, block_out = ch * in_mult[i], ch * mult
            blocks = [
                ResnetBlock1D(block_in if j == 0 else block_out, block_out, kernel_size)
                for j in range(num_res_blocks)
            ]
            level = _level(
                blocks, [AttnBlock1D(block_out) for _ in range(num_res_blocks)] if i in attn_layers else []
            )
            if i in self.down_layers:
                level.downsample = Downsample1D(block_out)
            self.down.append(level)
        block_in = ch * ch_mult[-1]
        self.mid = _middle(block_in, kernel_size)
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv1d(block_in, 2 * z_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for j in range(self.num_res_blocks):
                h = level.block[j](h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if i in self.down_layers:
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder1D(nn.Module):
    def __init__(
        self, *, ch, out_ch, ch_mult, num_res_blocks, attn_layers, down_layers, z_channels, kernel_size, **_
    ):
        super().__init__()
        self.num_res_blocks = num_res_blocks
        self.up_layers = tuple(i + 1 for i in down_layers)  # "each downlayer add one"
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv1d(z_channels, block_in, kernel_size, padding=kernel_size // 2)
        self.mid = _middle(block_in, 3)  # the decoder's res-blocks keep the default kernel 3
        levels = []
        for i in reversed(range(len(ch_mult))):
            block_out = ch * ch_mult[i]
            blocks = [
                ResnetBlock1D(block_in if j == 0 else block_out, block_out) for j in range(num_res_blocks + 1)
            ]
            level = _level(
                blocks,
                [AttnBlock1D(block_out) for _ in range(num_res_blocks + 1)] if i in attn_layers else [],
            )
            if i in self.up_layers:
                level.upsample = Upsample1D(block_out)
            block_in = block_out
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv1d(block_in, out_ch, kernel_size, padding=kernel_size // 2)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for j in range(self.num_res_blocks + 1):
                h = level.block[j](h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if i in self.up_layers:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL1D(nn.Module):
    """ldm/models/autoencoder1d.py AutoencoderKL (inference parts): mel (B, 80, T) ↔ latents (B, 20, T/2)."""

    def __init__(self, embed_dim: int, scale_factor: float = 1.0, **ddconfig):
        super().__init__()
        self.encoder = Encoder1D(**ddconfig)
        self.decoder = Decoder1D(**ddconfig)
        self.quant_conv = nn.Conv1d(2 * ddconfig["z_channels"], 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv1d(embed_dim, ddconfig["z_channels"], 1)
        self.embed_dim, self.scale_factor = embed_dim, scale_factor
        self.downsampling = 2 ** len(ddconfig["down_layers"])

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


# -- the adapter --------------------------------------------------------------------------------------


def struct_caption(caption: str) -> str:
    """Make-An-Audio 2 rewrites captions as '<event& order>@…' with ChatGPT (preprocess/n2s_by_openai.py);
    without that service, the whole caption is one event spanning the clip."""
    return f"<{caption}& all>" if caption else ""


class MakeAnAudio2Original(OriginalCodeAdapter):
    """`pretrained`: the published checkpoint through the original code (``_maa.OriginalCodeAdapter``)."""

    card = MAKE_AN_AUDIO_2
    checkout_name = "github.com/bytedance/Make-An-Audio-2"
    vocoder_module = "bigvgan.models"
    default_ckpt = "maa2.ckpt"
    default_config = "configs/text2audio-ConcatDiT-ae1dnat_Skl20d2_struct2MLPanylen.yaml"

    def _original_condition(self, texts, empty=False):
        return {"ori_caption": texts, "struct_caption": ["" if empty else struct_caption(t) for t in texts]}

    def _original_shape(self, n_samples):
        """gen_wav.py: (embed_dim, latent_width), an even width of 2-mel-frame latents."""
        width = -(-n_samples // (256 * 2 * 2)) * 2
        return [self.model.ldm.first_stage_model.embed_dim, width]

    def _original_spec(self, mel):
        return mel.unsqueeze(0)


class MakeAnAudio2Adapter(MakeAnAudioBase):
    """`random`/`tiny`: the re-implementation; `pretrained` is :class:`MakeAnAudio2Original`."""

    card = MAKE_AN_AUDIO_2
    original_code = MakeAnAudio2Original

    @classmethod
    def _build(cls, size, options):
        full = size == "full"
        context = 1024 if full else C.t5_dim(size, "t5-v1_1-large")
        dit = (
            DIT_FULL
            if full
            else dict(in_channels=4, context_dim=context, hidden_size=32, num_heads=2, depth=1, max_len=1000)
        )
        vae = (
            VAE_FULL
            if full
            else dict(
                in_channels=16,
                out_ch=16,
                z_channels=4,
                embed_dim=4,
                kernel_size=5,
                ch=32,
                ch_mult=(1, 2),
                num_res_blocks=1,
                attn_layers=(3,),
                down_layers=(0,),
            )
        )
        bigvgan = _bigvgan.BigVGANConfig() if full else _bigvgan.TINY_BIGVGAN
        return parts(
            tokenizer=bert_tokenizer(size),
            text_encoder=ClapTextEncoder(size, context),
            tokenizer_2=_text.t5_tokenizer(TEXT_TOKENS if full else C.TINY_TEXT_TOKENS),
            text_encoder_2=C.t5_encoder(size, "t5-v1_1-large"),
            denoiser=ConcatDiT2MLP(**dit),
            vae=AutoencoderKL1D(**vae),
            vocoder=_bigvgan.BigVGAN(bigvgan),
            scheduler=ldm_scheduler(),
            hop_length=bigvgan.hop_length,
        )

    # -- the shared loop's parts (_loop.LoopAdapter._run) ------------------------------------------

    def _encode(self, texts, like=None):
        """FrozenCLAPFLANEmbedder.encode: CLAP on the caption and T5 on the structured caption, 77 tokens
        each (padded, no attention mask), concatenated along the sequence."""
        m = self.model
        tok1, tok2 = m.tokenizer, m.tokenizer_2
        ids1 = tok1(
            texts,
            truncation=True,
            max_length=tok1.model_max_length,
            padding="max_length",
            return_tensors="pt",
        ).input_ids
        ids2 = tok2(
            [struct_caption(t) for t in texts],
            truncation=True,
            max_length=tok2.model_max_length,
            padding="max_length",
            return_tensors="pt",
        ).input_ids
        z1 = m.text_encoder(ids1.to(self.torch_device))
        z2 = m.text_encoder_2(input_ids=ids2.to(self.torch_device)).last_hidden_state
        return torch.cat([z1, z2], dim=1)

    def _latent_shape(self, n_samples, batch):
        vae = self.model.vae
        frames = self._frames(n_samples, vae.downsampling)
        return (batch, vae.embed_dim, frames // vae.downsampling)

    def _denoise(self, latents, t, cond):
        return self.model.denoiser(latents, t.expand(latents.shape[0]), cond)

    def _decode(self, latents):
        return self.model.vae.decode(latents / self.model.vae.scale_factor)

    def _vocode(self, mel):
        return self.model.vocoder(mel)
