"""BigVGAN, the vocoder of Make-An-Audio 1 and 2, re-implemented in its inference form.

Faithful to NVIDIA/BigVGAN ``models.py`` (``BigVGAN``, ``AMPBlock1``), ``activations.py`` (``SnakeBeta``) and
``alias_free_torch`` (``Activation1d``: ×2 upsampling, activation, ×2 downsampling with Kaiser-windowed sinc
filters of 12 taps), which Make-An-Audio ships as ``vocoder/bigvgan``. Weight norm is folded in, as
``VocoderBigVGAN`` does after loading (``remove_weight_norm``), so the convolutions are plain; untrained
weights are drawn so the output is audible noise (``_components.init_audible``).
Configuration: Make-An-Audio ``configs/text_to_audio/bigvgan_args.yaml`` (80 mels, upsample [4,4,2,2,2,2]
with kernels [8,8,4,4,4,4], 1536 initial channels, resblock kernels [3,7,11] with dilations [1,3,5],
snake-beta with log-scale parameters): hop 256 at 16 kHz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from t2a_ray.adapters._components import init_audible


@dataclass(frozen=True)
class BigVGANConfig:
    num_mels: int = 80
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)


# Same hop (256) in four ×4 stages, 16 channels (test_adapters_tiny.py bounds the tiny models' time).
TINY_BIGVGAN = BigVGANConfig(
    num_mels=16,
    upsample_rates=(4, 4, 4, 4),
    upsample_kernel_sizes=(8, 8, 8, 8),
    upsample_initial_channel=16,
    resblock_kernel_sizes=(3,),
    resblock_dilation_sizes=((1,),),
)


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """alias_free_torch/filter.py: a Kaiser-windowed sinc low-pass filter, shape (1, 1, kernel_size)."""
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    a = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    beta = (
        0.1102 * (a - 8.7)
        if a > 50.0
        else (0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0) if a >= 21.0 else 0.0)
    )
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False, dtype=torch.float32, device="cpu")
    cpu = dict(
        dtype=torch.float32, device="cpu"
    )  # a constant: computed on the host, whatever device is current
    time = (
        (torch.arange(-half_size, half_size, **cpu) + 0.5)
        if even
        else (torch.arange(kernel_size, **cpu) - half_size)
    )
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filt = filt / filt.sum()
    return filt.view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio, self.stride, self.kernel_size = ratio, ratio, kernel_size
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * self.stride + (kernel_size - self.stride) // 2
        self.pad_right = self.pad * self.stride + (kernel_size - self.stride + 1) // 2
        self.register_buffer(
            "filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size), persistent=False
        )

    def forward(self, x):
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.to(x.dtype).expand(channels, -1, -1), stride=self.stride, groups=channels
        )
        return x[..., self.pad_left : -self.pad_right]


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.stride = ratio
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer(
            "filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size), persistent=False
        )

    def forward(self, x):
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(
            x, self.filter.to(x.dtype).expand(channels, -1, -1), stride=self.stride, groups=channels
        )


class SnakeBeta(nn.Module):
    """x + 1/β · sin²(αx), α and β per channel, stored as logarithms (snake_logscale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        alpha = self.alpha.exp()[None, :, None]
        beta = self.beta.exp()[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    """Anti-aliased activation: upsample ×2, snake-beta, downsample ×2."""

    def __init__(self, channels: int):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x):
        return self.downsample(self.act(self.upsample(x)))


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class AMPBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size, 1))
            for _ in dilation
        )
        self.activations = nn.ModuleList(Activation1d(channels) for _ in range(2 * len(dilation)))

    def forward(self, x):
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2, strict=True):
            x = c2(a2(c1(a1(x)))) + x
        return x


class BigVGAN(nn.Module):
    """Mel spectrogram (B, num_mels, frames) → waveform (B, frames × hop) in [-1, 1]."""

    def __init__(self, config: BigVGANConfig = BigVGANConfig()):
        super().__init__()
        self.config = config
        ch = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.num_mels, ch, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True))
        )
        self.resblocks = nn.ModuleList(
            AMPBlock1(ch // 2 ** (i + 1), k, d)
            for i in range(len(config.upsample_rates))
            for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True)
        )
        last = ch // 2 ** len(config.upsample_rates)
        self.activation_post = Activation1d(last)
        self.conv_post = nn.Conv1d(last, 1, 7, 1, padding=3)
        init_audible(self, gain=1.0)  # snake-beta is x plus a bounded term: about the identity's gain

    def forward(self, mel):
        x = self.conv_pre(mel)
        kernels = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(x)
            x = sum(self.resblocks[i * kernels + j](x) for j in range(kernels)) / kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x).squeeze(1)
