"""HiFi-GAN generator (Kong et al. 2020), VISinger's waveform decoder: latent frames -> samples.

Transposed convolutions upsample `[B, C, T]` by `prod(upsample_rates)`, which must equal the hop
size so that one latent frame becomes exactly one hop of audio. Multi-receptive-field fusion
(`ResBlock1`/`ResBlock2` with several kernels, averaged) follows each upsampling.

Unlike the original, the generator takes an optional frame mask and zeroes padded positions before
every convolution: a padded batch then decodes each item's valid samples exactly as the item alone.

With `harmonic_source=True` it is a source-excited (NSF-)HiFi-GAN: `forward` also takes the frame F0,
a `HarmonicNoiseSynth` turns it and per-frame harmonic amplitudes (predicted from the features after
`conv_pre`) into a harmonic-plus-noise excitation at the sample rate, and a strided conv per stage
brings that excitation down to the stage's rate and adds it after the stage's upsampling. The
network then refines a periodic signal at the given pitch instead of inventing one (see
`modules/harmonic_source.py`). `decode` also returns the excitation, which the task trains with its
own mel loss.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, parametrize

from modules.harmonic_source import HarmonicNoiseSynth
from modules.waveform_decoder import DecoderOutput, WaveformDecoder

LRELU_SLOPE = 0.1


def check_upsampling(upsample_rates: Sequence[int], hop_size: int, upsample_kernel_sizes: Sequence[int] | None = None) -> None:
    """Raise `ValueError` unless the upsampling turns one frame into exactly `hop_size` samples.

    With kernels given, also checks that each (kernel, rate) pair can yield exactly `rate` times the
    input length (see `_upsample_padding`): `kernel >= rate`, and an odd `kernel - rate` needs `rate >= 2`.
    """
    rates = list(upsample_rates)
    if not rates or any(int(r) <= 0 for r in rates):
        raise ValueError(f"upsample_rates must be positive integers, got {rates}")
    product = math.prod(rates)
    if product != hop_size:
        raise ValueError(
            f"upsample_rates {rates} multiply to {product} but hop_size is {hop_size}; "
            "choose rates whose product equals the hop size"
        )
    if upsample_kernel_sizes is not None:
        kernels = list(upsample_kernel_sizes)
        if len(kernels) != len(rates):
            raise ValueError(f"upsample_kernel_sizes {kernels} must have one kernel per rate in {rates}")
        for rate, kernel in zip(rates, kernels):
            if kernel < rate or (rate == 1 and kernel % 2 == 0):
                raise ValueError(f"upsample kernel {kernel} for rate {rate} must be >= the rate (e.g. 2 * rate; odd when the rate is 1)")


def _upsample_padding(kernel_size: int, rate: int) -> tuple[int, int]:
    """(padding, output_padding) that make `ConvTranspose1d(kernel, stride=rate)` output exactly `rate * L`.

    Output length is `(L - 1) * rate - 2 * padding + kernel + output_padding`; HiFi-GAN's
    `padding = (kernel - rate) // 2` is exact only for an even difference, so odd rates with
    `kernel = 2 * rate` (e.g. hop 300 = 5 * 5 * 4 * 3) take one more padding and one output padding.
    """
    difference = kernel_size - rate
    return (difference + 1) // 2, difference % 2


def _init_conv(module: nn.Module) -> None:
    """HiFi-GAN's initialisation: N(0, 0.01) for conv weights."""
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        module.weight.data.normal_(0.0, 0.01)


def _same_padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ResBlock1(nn.Module):
    """Three residual pairs: a dilated conv then an undilated one (HiFi-GAN V1/V2)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilations: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            parametrizations.weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            parametrizations.weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=_same_padding(kernel_size, 1)))
            for _ in dilations
        )
        self.apply(_init_conv)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x [B, C, S]`, optional `mask [B, 1, S]` -> `[B, C, S]`."""
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = conv1(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
            xt = conv2(_masked(F.leaky_relu(xt, LRELU_SLOPE), mask))
            x = x + xt
        return _masked(x, mask)

    def remove_weight_norm(self) -> None:
        for conv in [*self.convs1, *self.convs2]:
            parametrize.remove_parametrizations(conv, "weight")


class ResBlock2(nn.Module):
    """Lighter residual block: one dilated conv per residual step (HiFi-GAN V3)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilations: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            parametrizations.weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d)))
            for d in dilations
        )
        self.apply(_init_conv)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x [B, C, S]`, optional `mask [B, 1, S]` -> `[B, C, S]`."""
        for conv in self.convs:
            x = x + conv(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
        return _masked(x, mask)

    def remove_weight_norm(self) -> None:
        for conv in self.convs:
            parametrize.remove_parametrizations(conv, "weight")


class HiFiGANGenerator(WaveformDecoder):
    """Latent `[B, C_in, T]` -> waveform `[B, 1, T * hop_size]` in [-1, 1].

    Args:
        in_channels: latent width (inter channels).
        hop_size: samples per frame; must equal `prod(upsample_rates)`.
        upsample_initial_channel: channels after `conv_pre`, halved at every upsampling.
        upsample_rates: per-stage upsampling factors.
        upsample_kernel_sizes: per-stage transposed-conv kernels (usually 2 * rate).
        resblock_type: "1" (`ResBlock1`) or "2" (`ResBlock2`).
        resblock_kernel_sizes: kernels of the parallel residual blocks of each stage.
        resblock_dilation_sizes: dilations of each of those blocks.
        gin_channels: speaker condition width, 0 for none.
        harmonic_source: add a learnt harmonic-plus-noise excitation at every stage; `forward` then needs `f0`.
        sample_rate: output rate in Hz (the harmonics' frequencies); used only with `harmonic_source`.
        n_harmonics: harmonics of the source, the fundamental included.
    """

    def __init__(
        self,
        in_channels: int = 192,
        hop_size: int = 300,
        upsample_initial_channel: int = 512,
        upsample_rates: Sequence[int] = (5, 5, 4, 3),
        upsample_kernel_sizes: Sequence[int] = (10, 10, 8, 6),
        resblock_type: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        gin_channels: int = 0,
        harmonic_source: bool = False,
        sample_rate: int = 24000,
        n_harmonics: int = 48,
    ) -> None:
        super().__init__()
        check_upsampling(upsample_rates, hop_size, upsample_kernel_sizes)
        if resblock_type not in ("1", "2"):
            raise ValueError(f"resblock_type must be '1' or '2', got {resblock_type!r}")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
        if upsample_initial_channel % (2 ** len(upsample_rates)) != 0:
            raise ValueError(
                f"upsample_initial_channel ({upsample_initial_channel}) must be divisible by 2**{len(upsample_rates)} (halved per stage)"
            )
        self.upsample_rates = [int(r) for r in upsample_rates]
        self.num_kernels = len(resblock_kernel_sizes)
        resblock_class = ResBlock1 if resblock_type == "1" else ResBlock2
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels > 0 else None
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            padding, output_padding = _upsample_padding(kernel, rate)
            self.ups.append(
                parametrizations.weight_norm(
                    nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=padding, output_padding=output_padding)
                )
            )
            channels //= 2
            for res_kernel, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(resblock_class(channels, res_kernel, tuple(dilations)))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3, bias=False)
        self.ups.apply(_init_conv)
        self.upsample_initial_channel = upsample_initial_channel
        self.hop_size = hop_size
        self.source: nn.Module | None = None
        self.source_convs = nn.ModuleList()
        if harmonic_source:
            self.attach_source(HarmonicNoiseSynth(upsample_initial_channel, sample_rate, hop_size, n_harmonics))

    def attach_source(self, source: nn.Module) -> None:
        """Excite the generator with `source(x [B, C0, T], f0 [B, T], mask) -> [B, 1, T * hop]` (C0 =
        `upsample_initial_channel`, the features after `conv_pre`): one strided conv per stage adds it."""
        self.source = source
        self.uses_f0 = True
        self.uses_noise = bool(getattr(source, "uses_noise", True))
        self.source_convs = nn.ModuleList()
        channels = self.upsample_initial_channel
        for i in range(len(self.upsample_rates)):
            channels //= 2
            # Samples -> this stage's rate: stride = the upsampling still to come after stage i.
            stride = math.prod(self.upsample_rates[i + 1 :])
            if stride == 1:
                self.source_convs.append(nn.Conv1d(1, channels, 1))
            else:
                # kernel 2 * stride with padding ceil(stride / 2) gives exactly S / stride outputs.
                self.source_convs.append(nn.Conv1d(1, channels, 2 * stride, stride, padding=(stride + 1) // 2))

    def decode(
        self,
        z: torch.Tensor,
        mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
    ) -> DecoderOutput:
        """`z [B, C_in, T]`, optional frame `mask [B, 1, T]`, `g [B, gin, 1]` -> `DecoderOutput(wav [B, 1, T * hop], source_wav)`
        (zero past the mask). `f0 [B, T]` (Hz, 0 = unvoiced) is required with a source and ignored
        without; `source_wav` is the source's own waveform (for its loss), None without one.
        `source_noise [B, 1, T * hop]` and `start_phase [B]` (cycles, float64) go to the source
        (modules/waveform_decoder.py); None: its drawn noise and phase 0."""
        self.check_f0(z, f0)
        x = self.conv_pre(_masked(z, mask))  # [B, C0, T]
        if self.cond is not None and g is not None:
            x = x + self.cond(g)
        excitation = None
        if self.source is not None:
            excitation = self.source(x, f0, mask, noise=source_noise, start_phase=start_phase)  # [B, 1, S]
        for i, (up, rate) in enumerate(zip(self.ups, self.upsample_rates)):
            x = up(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))  # [B, C_i / 2, T_i * rate]
            if mask is not None:
                mask = torch.repeat_interleave(mask, rate, dim=2)  # frame mask at the new rate
            if excitation is not None:
                x = x + self.source_convs[i](excitation)  # [B, 1, S] -> [B, C_i / 2, T_i * rate]
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x, mask) for block in blocks) / self.num_kernels
        # The original uses leaky_relu's default slope (0.01) here, not LRELU_SLOPE.
        x = self.conv_post(_masked(F.leaky_relu(x), mask))  # [B, 1, S]
        return DecoderOutput(_masked(torch.tanh(x), mask), excitation)

    def context_frames(self) -> int:
        """Latent frames on each side of an output frame that can change it (a bound on the receptive field's radius).

        Summed stage by stage, each convolution's reach converted to frames at its rate, plus the
        source's (its control projection, the interpolation to samples, its own filters' samples
        and the strided source convs) and one frame of margin.
        """

        def reach(conv: nn.Module) -> int:
            return (conv.kernel_size[0] - 1) * conv.dilation[0] // 2

        radius = float(reach(self.conv_pre))
        if self.source is not None:
            source_samples = self.source.context_samples() + max(conv.kernel_size[0] for conv in self.source_convs)
            radius += reach(self.source.controls_projection) + 1 + source_samples / self.hop_size
        rate = 1
        for i, (up, factor) in enumerate(zip(self.ups, self.upsample_rates)):
            radius += math.ceil(up.kernel_size[0] / factor) / rate  # a transposed conv's output reads ceil(K / stride) inputs
            rate *= factor
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            radius += max(sum(reach(m) for m in block.modules() if isinstance(m, nn.Conv1d)) for block in blocks) / rate
        radius += reach(self.conv_post) / rate
        return math.ceil(radius) + 1

    def remove_weight_norm(self) -> None:
        for up in self.ups:
            parametrize.remove_parametrizations(up, "weight")
        for block in self.resblocks:
            block.remove_weight_norm()


@dataclass(frozen=True)
class HiFiGANVocoderConfig:
    """`HiFiGANGenerator`'s arguments for a mel vocoder, one to one (single speaker: no `gin_channels`).

    Defaults are HiFi-GAN V1 at hop 300 (24 kHz CSD), the upsampling VISinger's decoder uses.
    """

    in_channels: int = 128
    hop_size: int = 300
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (5, 5, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 10, 8, 6)
    resblock_type: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    harmonic_source: bool = False  # NSF-style: a learnt harmonic-plus-noise source at the F0 excites the generator
    sample_rate: int = 24000
    n_harmonics: int = 48

    def __post_init__(self) -> None:
        # ValueError: config_section turns it into a one-line UserInputError naming the section.
        check_upsampling(self.upsample_rates, self.hop_size, self.upsample_kernel_sizes)

    def build(self) -> HiFiGANGenerator:
        return HiFiGANGenerator(**dataclasses.asdict(self))
