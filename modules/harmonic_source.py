"""A learnt harmonic-plus-noise synthesiser (DDSP; Engel et al. 2020) as the excitation of a source-excited HiFi-GAN.

A plain HiFi-GAN must learn to create periodicity at the sung pitch from the latent alone, which
takes it tens of thousands of updates; until then it outputs a buzz at the frame rate. Here a
cheap additive synthesiser turns the F0 and per-frame harmonic amplitudes (predicted from the
decoder's input) into a rough voice at the right pitch from the first updates; the HiFi-GAN then
refines that signal (NSF-HiFiGAN's strided source convolutions) instead of inventing it. VISinger 2
(Zhang et al. 2022) adds a harmonic synthesiser to VISinger for the same reason. The task trains the
synthesiser with its own mel loss so that it becomes a good excitation quickly. The synthesis is
the DDSP parts' (`modules.ddsp.harmonic.harmonic_synthesis`, `modules.ddsp.core.white_noise`); this
module adds the learnt controls and the single noise gain the excitation needs.

    x [B, C, T] ─ Conv1d ─▶ harmonic amplitudes [B, H, T], noise gain [B, 1, T] ─ interpolate to samples ┐
    f0 [B, T] ─ hold per frame ─────── phase of harmonics 1..H ──────────────────────────────────────┴─▶ Σ a_k sin + noise [B, 1, S]
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from modules.ddsp.core import apply_mask, frames_to_samples, hold_last_valid, sample_mask, white_noise
from modules.ddsp.harmonic import harmonic_synthesis

# Initial output scales: softplus(0) * scale; the voice's harmonics then start around -30 dBFS and
# the noise around -50 dBFS, quiet enough not to swamp the HiFi-GAN at the first updates.
HARMONIC_AMPLITUDE_SCALE = 0.05
NOISE_AMPLITUDE_SCALE = 0.01


class HarmonicControls(NamedTuple):
    harmonic_amplitudes: torch.Tensor  # [B, H, T] >= 0, per frame
    noise_gain: torch.Tensor  # [B, 1, T] >= 0, per frame


class HarmonicNoiseSynth(nn.Module):
    """Frames `x [B, C, T]` + `f0 [B, T]` -> a harmonic-plus-noise waveform `[B, 1, T * hop]`.

    Args:
        in_channels: width of the frame features the amplitudes are predicted from.
        sample_rate: output rate in Hz; harmonics at or above Nyquist are silenced, not aliased.
        hop_size: samples per frame.
        n_harmonics: harmonics 1..n (the fundamental included).
        kernel_size: frames seen by the amplitude projection.
    """

    def __init__(self, in_channels: int, sample_rate: int, hop_size: int, n_harmonics: int = 48, kernel_size: int = 3) -> None:
        super().__init__()
        if sample_rate <= 0 or hop_size <= 0 or n_harmonics < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"need sample_rate > 0, hop_size > 0, n_harmonics >= 1 and an odd kernel_size; "
                f"got {sample_rate}, {hop_size}, {n_harmonics}, {kernel_size}"
            )
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.n_harmonics = n_harmonics
        self.controls_projection = nn.Conv1d(in_channels, n_harmonics + 1, kernel_size, padding=kernel_size // 2)

    def context_samples(self) -> int:
        """Samples on each side of an output sample that can change it, beyond the frame interpolation: none."""
        return 0

    def controls(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> HarmonicControls:
        """`x [B, C, T]` -> non-negative harmonic amplitudes `[B, H, T]` and noise gain `[B, 1, T]`."""
        raw = self.controls_projection(x if mask is None else x * mask)  # [B, H + 1, T]
        return HarmonicControls(
            harmonic_amplitudes=F.softplus(raw[:, : self.n_harmonics]) * HARMONIC_AMPLITUDE_SCALE,
            noise_gain=F.softplus(raw[:, self.n_harmonics :]) * NOISE_AMPLITUDE_SCALE,
        )

    def harmonics(
        self, amplitudes: torch.Tensor, f0: torch.Tensor, mask: torch.Tensor | None = None, start_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic voiced part: `amplitudes [B, H, T]`, `f0 [B, T]` Hz (0 = unvoiced) -> `[B, 1, T * hop]`
        (`modules.ddsp.harmonic.harmonic_synthesis`: float64 phase, harmonics at or above Nyquist silenced;
        `start_phase [B]` continues a longer render, see there)."""
        return harmonic_synthesis(amplitudes, f0, self.sample_rate, self.hop_size, mask, initial_cycles=start_phase)

    def forward(
        self,
        x: torch.Tensor,
        f0: torch.Tensor,
        mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`x [B, C, T]`, `f0 [B, T]` Hz, optional `mask [B, 1, T]` -> waveform `[B, 1, T * hop]` (zero past the mask).

        `noise [B, 1, T * hop]` (standard normal) replaces the drawn noise: an exported graph has no random
        generator, and a chunk of a longer render takes its slice of the whole render's noise
        (`fixed_source_noise`). `start_phase [B]`: see `harmonics`.
        """
        controls = self.controls(x, mask)
        wave = self.harmonics(controls.harmonic_amplitudes, f0, mask, start_phase)
        noise_gain = frames_to_samples(hold_last_valid(controls.noise_gain, mask), self.hop_size)  # [B, 1, S]
        # Fresh in training; in eval a fixed sequence, so a render depends on its inputs alone.
        if noise is None:
            noise = white_noise(tuple(wave.shape), self.training, wave.device, wave.dtype)
        return wave + apply_mask(noise_gain * noise, sample_mask(mask, self.hop_size))


def fixed_source_noise(shape: tuple[int, ...] | torch.Size, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The eval-mode source noise of a render of `shape` `[B, 1, S]` (`modules.ddsp.core.white_noise`: sample n
    is the same number in every call): what an exported graph or a chunked render is given to match a whole render."""
    return white_noise(tuple(shape), False, device, dtype)
