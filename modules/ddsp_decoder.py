"""VISinger 2's decoder (Zhang et al. 2022): a DDSP synthesiser at the F0, refined by a small HiFi-GAN.

    z [B, C, T] ─ conv_pre ─▶ x [B, C0, T] ─ Conv1d ─▶ controls {name: [B, C_k, T]}
                                                         │
    f0 [B, T] ───────────────────────────────────────────┴─▶ SignalChain (harmonic + filtered noise [+ reverb])
                                                                   │ dsp_wav [B, 1, T * hop]
    x ─ HiFi-GAN upsampling stages (each adds a strided conv of dsp_wav) ─ conv_post ─ tanh ─▶ wav [B, 1, T * hop]

The synthesiser is the shared DDSP chain (`modules/ddsp/`), assembled from the `chain` list exactly as
in YAML (default: `harmonic_plus_noise_chain`, DDSP's amplitude x normalised harmonic distribution and
noise through a learnt per-frame spectral envelope); its output is `DecoderOutput.source_wav`, which the
task trains with its own mel loss (VISinger 2's DSP loss), so that it is a rough voice at the right
pitch from the first updates and the neural refiner only has to add detail. Compared with the
source-excited HiFi-GAN (`nsf_hifigan`), the excitation has VISinger 2's shaped noise and optional room
instead of one white-noise gain, and the refiner is meant to be narrower (VISinger 2 halves it).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from modules.ddsp.chain import SignalChain
from modules.hifigan import HiFiGANGenerator


class DDSPSource(nn.Module):
    """Features `x [B, C, T]` + `f0 [B, T]` + `mask [B, 1, T]` -> the chain's waveform `[B, 1, T * hop]`.

    Args:
        in_channels: width of the features the controls are predicted from.
        chain: the signal chain's components (see `modules.ddsp.chain`).
        sample_rate, hop_size: the chain's audio settings.
        kernel_size: frames seen by the control projection (odd).
    """

    def __init__(self, in_channels: int, chain: Sequence[Mapping[str, Any]], sample_rate: int, hop_size: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.chain = SignalChain(chain, sample_rate, hop_size)
        self.control_sizes = self.chain.control_channels()
        self.controls_projection = nn.Conv1d(in_channels, sum(self.control_sizes.values()), kernel_size, padding=kernel_size // 2)

    @property
    def uses_noise(self) -> bool:
        return self.chain.uses_noise()

    def context_samples(self) -> int:
        """Samples on each side of an output sample that the chain's filters can reach (`SignalChain.context_samples`)."""
        return self.chain.context_samples()

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None, start_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`noise [B, 1, T * hop]` / `start_phase [B]`: the chain's noise and harmonic phase (`SignalChain.forward`)."""
        raw = self.controls_projection(x if mask is None else x * mask)  # [B, sum C_k, T]
        controls = dict(zip(self.control_sizes, raw.split(list(self.control_sizes.values()), dim=1)))
        return self.chain(controls, f0, mask, noise=noise, start_phase=start_phase).audio


class DDSPDecoder(HiFiGANGenerator):
    """`z [B, C_in, T]` + `f0 [B, T]` -> `DecoderOutput(wav, source_wav = the DDSP chain's waveform)`.

    Args: those of `HiFiGANGenerator` for the refiner (without `harmonic_source`/`n_harmonics`), plus
        chain: the DDSP signal chain (a list of `{name, kind, inputs, args}` components).
    """

    def __init__(
        self,
        in_channels: int,
        hop_size: int,
        chain: Sequence[Mapping[str, Any]],
        upsample_initial_channel: int = 256,
        upsample_rates: Sequence[int] = (5, 5, 4, 3),
        upsample_kernel_sizes: Sequence[int] = (10, 10, 8, 6),
        resblock_type: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        gin_channels: int = 0,
        sample_rate: int = 24000,
    ) -> None:
        super().__init__(
            in_channels, hop_size, upsample_initial_channel, upsample_rates, upsample_kernel_sizes, resblock_type,
            resblock_kernel_sizes, resblock_dilation_sizes, gin_channels, harmonic_source=False, sample_rate=sample_rate,
        )  # fmt: skip
        self.attach_source(DDSPSource(upsample_initial_channel, chain, sample_rate, hop_size))
