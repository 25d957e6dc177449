"""A learnt harmonic-plus-noise synthesiser (DDSP; Engel et al. 2020) as the excitation of a source-excited HiFi-GAN.

A plain HiFi-GAN must learn to create periodicity at the sung pitch from the latent alone, which
takes it tens of thousands of updates; until then it outputs a buzz at the frame rate. Here a
cheap additive synthesiser turns the F0 and per-frame harmonic amplitudes (predicted from the
decoder's input) into a rough voice at the right pitch from the first updates; the HiFi-GAN then
refines that signal (NSF-HiFiGAN's strided source convolutions) instead of inventing it. VISinger 2
(Zhang et al. 2022) adds a harmonic synthesiser to VISinger for the same reason. The task trains the
synthesiser with its own mel loss so that it becomes a good excitation quickly.

    x [B, C, T] ─ Conv1d ─▶ harmonic amplitudes [B, H, T], noise gain [B, 1, T] ─ interpolate to samples ┐
    f0 [B, T] ─ hold per frame ─────── phase of harmonics 1..H ──────────────────────────────────────┴─▶ Σ a_k sin + noise [B, 1, S]
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

# Initial output scales: softplus(0) * scale; the voice's harmonics then start around -30 dBFS and
# the noise around -50 dBFS, quiet enough not to swamp the HiFi-GAN at the first updates.
HARMONIC_AMPLITUDE_SCALE = 0.05
NOISE_AMPLITUDE_SCALE = 0.01


class HarmonicControls(NamedTuple):
    harmonic_amplitudes: torch.Tensor  # [B, H, T] >= 0, per frame
    noise_gain: torch.Tensor  # [B, 1, T] >= 0, per frame


def _hold_last_valid(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Replace padded frames of `x [B, C, T]` by each item's last valid frame.

    Interpolating to samples looks one frame ahead; holding the last frame makes an item's samples in
    a padded batch equal to the item's alone (where interpolation clamps at the edge).
    """
    if mask is None:
        return x
    last_index = (mask.sum(dim=2, keepdim=True).long() - 1).clamp(min=0)  # [B, 1, 1]
    last = x.gather(2, last_index.expand(-1, x.size(1), 1))  # [B, C, 1]
    return x * mask + last * (1.0 - mask)


def _to_samples(x: torch.Tensor, hop_size: int) -> torch.Tensor:
    """Frame-rate `[B, C, T]` -> sample-rate `[B, C, T * hop]` by linear interpolation between frame centres."""
    return F.interpolate(x, scale_factor=hop_size, mode="linear", align_corners=False)


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

    def controls(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> HarmonicControls:
        """`x [B, C, T]` -> non-negative harmonic amplitudes `[B, H, T]` and noise gain `[B, 1, T]`."""
        raw = self.controls_projection(x if mask is None else x * mask)  # [B, H + 1, T]
        return HarmonicControls(
            harmonic_amplitudes=F.softplus(raw[:, : self.n_harmonics]) * HARMONIC_AMPLITUDE_SCALE,
            noise_gain=F.softplus(raw[:, self.n_harmonics :]) * NOISE_AMPLITUDE_SCALE,
        )

    def harmonics(self, amplitudes: torch.Tensor, f0: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic voiced part: `amplitudes [B, H, T]`, `f0 [B, T]` Hz (0 = unvoiced) -> `[B, 1, T * hop]`.

        The phase is the running sum of the instantaneous frequency, so it stays continuous through
        pitch changes. It is summed in float64 and reduced to a fraction of a cycle before the
        harmonic numbers multiply it: a 3-minute song accumulates ~10^5 cycles, where float32 would
        lose exactly the fraction that matters.
        """
        # The pitch is held over each frame (not interpolated, which would glide towards 0 at every
        # unvoiced edge); the phase sum below keeps the waveform continuous at the steps.
        f0_samples = torch.repeat_interleave(f0.float().unsqueeze(1), self.hop_size, dim=2)  # [B, 1, S]
        voiced = (f0_samples > 0).float()
        amplitude_samples = _to_samples(_hold_last_valid(amplitudes, mask), self.hop_size)  # [B, H, S]
        cycles = torch.remainder(torch.cumsum(f0_samples.double() / self.sample_rate, dim=2), 1.0)  # [B, 1, S]
        wave = torch.zeros_like(f0_samples)
        nyquist = self.sample_rate / 2
        for k in range(1, self.n_harmonics + 1):  # a loop keeps memory at O(S), not O(H * S)
            phase = torch.remainder(cycles * k, 1.0).float()
            audible = (f0_samples * k < nyquist).float()
            wave = wave + torch.sin(2 * math.pi * phase) * amplitude_samples[:, k - 1 : k] * audible
        wave = wave * voiced
        if mask is not None:
            wave = wave * torch.repeat_interleave(mask, self.hop_size, dim=2)
        return wave

    def _white_noise(self, like: torch.Tensor) -> torch.Tensor:
        """Gaussian noise shaped as `like`. In eval mode it comes from a fixed seed on every call, so that a
        render depends on its inputs alone (a phrase sounds the same alone or inside its song)."""
        if self.training:
            return torch.randn_like(like)
        generator = torch.Generator(device=like.device).manual_seed(0)
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    def forward(self, x: torch.Tensor, f0: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x [B, C, T]`, `f0 [B, T]` Hz, optional `mask [B, 1, T]` -> waveform `[B, 1, T * hop]` (zero past the mask)."""
        controls = self.controls(x, mask)
        wave = self.harmonics(controls.harmonic_amplitudes, f0, mask)
        noise_gain = _to_samples(_hold_last_valid(controls.noise_gain, mask), self.hop_size)  # [B, 1, S]
        noise = noise_gain * self._white_noise(wave)
        if mask is not None:
            noise = noise * torch.repeat_interleave(mask, self.hop_size, dim=2)
        return wave + noise
