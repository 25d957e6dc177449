"""Additive harmonic synthesis (DDSP; Engel et al. 2020): F0 and per-frame harmonic amplitudes -> samples.

Two levels:
- `harmonic_synthesis(amplitudes [B, H, T], f0 [B, T], sample_rate, hop_size, mask) -> [B, 1, T * hop]`,
  a pure function: `Σ_k a_k(n) sin(2π k φ(n))` with `φ` the running sum of the F0. Used by the
  source-excited HiFi-GAN's excitation (`modules/harmonic_source.py`) and by `HarmonicSynth`.
- `HarmonicSynth`, the signal-chain processor (`modules/ddsp/chain.py`): DDSP's parametrisation, an
  overall `amplitude [B, 1, T]` times a `distribution [B, H, T]` over the harmonics, normalised to
  sum 1 after the harmonics at or above Nyquist are removed, both from raw network outputs through
  `scale` (`exp_sigmoid` as DDSP).

Properties the tests hold (tests/modules/ddsp/test_harmonic.py): harmonics sound at k·F0; none at or
above Nyquist (silenced, not aliased); unvoiced frames (F0 = 0) are silent; the phase is continuous
through pitch changes and exact after a 3-minute song; a padded batch gives each item the samples
it gets alone, zero past its mask.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from modules.ddsp.core import apply_mask, check_scale, frames_to_samples, hold_frames, hold_last_valid, sample_mask, scale_control


def harmonic_synthesis(
    amplitudes: torch.Tensor,
    f0: torch.Tensor,
    sample_rate: int,
    hop_size: int,
    mask: torch.Tensor | None = None,
    initial_cycles: torch.Tensor | None = None,
) -> torch.Tensor:
    """`amplitudes [B, H, T]` (>= 0, harmonic k = row k - 1), `f0 [B, T]` Hz (0 = unvoiced), `mask [B, 1, T]` -> `[B, 1, T * hop]`.

    Amplitudes are interpolated linearly between frame centres; the pitch is held over each frame (not
    interpolated, which would glide towards 0 at every unvoiced edge), and the phase sum keeps the
    waveform continuous at the steps. The phase is summed in float64 and reduced to a fraction of a
    cycle: a 3-minute song accumulates ~10^5 cycles, where float32 would lose exactly the fraction
    that matters. `initial_cycles [B]` (float64, default 0) is the phase, in cycles, before the first
    sample: a block-by-block renderer carries it from one block to the next. `sin(kθ)` comes from the Chebyshev recurrence `s_k = 2 cos θ · s_{k-1} - s_{k-2}`
    (one sine and one cosine per sample instead of H sines), one harmonic at a time so that memory
    stays O(S), not O(H · S).
    """
    if amplitudes.dim() != 3 or f0.shape != (amplitudes.size(0), amplitudes.size(2)):
        raise ValueError(f"need amplitudes [B, H, T] and f0 [B, T]; got {tuple(amplitudes.shape)} and {tuple(f0.shape)}")
    f0_samples = hold_frames(f0.float().unsqueeze(1), hop_size)  # [B, 1, S]
    amplitudes = hold_last_valid(amplitudes.float(), mask)
    cycles = torch.cumsum(f0_samples.double() / sample_rate, dim=2)  # [B, 1, S]
    if initial_cycles is not None:
        cycles = cycles + initial_cycles.double().reshape(-1, 1, 1)
    cycles = torch.remainder(cycles, 1.0)  # in [0, 1)
    theta = (2 * math.pi * cycles).float()
    sin_1, two_cos = torch.sin(theta), 2 * torch.cos(theta)
    # Harmonic k sounds while k * f0 < Nyquist, i.e. k < (sr / 2) / f0 (inf when unvoiced; silenced below).
    harmonic_limit = (sample_rate / 2) / f0_samples.clamp(min=1e-3)  # [B, 1, S]
    wave = torch.zeros_like(f0_samples)
    sin_prev, sin_k = torch.zeros_like(sin_1), sin_1
    for k in range(1, amplitudes.size(1) + 1):
        if k > 1:
            sin_prev, sin_k = sin_k, two_cos * sin_k - sin_prev
        amplitude_k = frames_to_samples(amplitudes[:, k - 1 : k], hop_size)  # [B, 1, S]
        wave = wave + sin_k * amplitude_k * (harmonic_limit > k)
    wave = wave * (f0_samples > 0)
    return apply_mask(wave, sample_mask(mask, hop_size))


def normalize_harmonic_distribution(distribution: torch.Tensor, f0: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """`distribution [B, H, T]` (>= 0), `f0 [B, T]` -> the same with harmonics at or above Nyquist zeroed and
    each frame summing to 1 (DDSP), so that the overall amplitude alone sets the loudness."""
    harmonic_numbers = torch.arange(1, distribution.size(1) + 1, device=distribution.device, dtype=distribution.dtype)
    audible = (f0.unsqueeze(1) * harmonic_numbers[None, :, None] < sample_rate / 2).to(distribution.dtype)  # [B, H, T]
    distribution = distribution * audible
    return distribution / distribution.sum(dim=1, keepdim=True).clamp(min=1e-7)


class HarmonicSynth(nn.Module):
    """Signal-chain processor: `amplitude [B, 1, T]`, `distribution [B, H, T]`, `f0 [B, T]` -> `[B, 1, T * hop]`.

    Args:
        sample_rate: output rate in Hz.
        hop_size: samples per frame.
        n_harmonics: H, harmonics 1..H (the fundamental included).
        scale: how raw network outputs become non-negative controls (`exp_sigmoid`, `softplus`, `identity`).
        amplitude_bias: added to the raw amplitude before scaling; negative starts the voice quiet
            (exp_sigmoid(-2) ≈ 0.02).

    No learnt parameters: the controls come from the network that drives the chain.
    """

    PORTS = {"amplitude": "frames", "distribution": "frames", "f0": "f0"}  # forward's inputs by kind (modules/ddsp/chain.py)

    def __init__(self, sample_rate: int, hop_size: int, n_harmonics: int = 64, scale: str = "exp_sigmoid", amplitude_bias: float = -2.0) -> None:
        super().__init__()
        if sample_rate <= 0 or hop_size <= 0 or n_harmonics < 1:
            raise ValueError(f"need sample_rate > 0, hop_size > 0, n_harmonics >= 1; got {sample_rate}, {hop_size}, {n_harmonics}")
        check_scale(scale)
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.n_harmonics = n_harmonics
        self.scale = scale
        self.amplitude_bias = amplitude_bias

    def frame_channels(self) -> dict[str, int]:
        """Channels of each frame-rate port, for the network that predicts them."""
        return {"amplitude": 1, "distribution": self.n_harmonics}

    def harmonic_amplitudes(self, amplitude: torch.Tensor, distribution: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """Raw `amplitude [B, 1, T]`, `distribution [B, H, T]` -> per-harmonic amplitudes `[B, H, T]` (>= 0)."""
        if distribution.size(1) != self.n_harmonics or amplitude.size(1) != 1:
            raise ValueError(
                f"need amplitude [B, 1, T] and distribution [B, {self.n_harmonics}, T]; got {tuple(amplitude.shape)}, {tuple(distribution.shape)}"
            )
        overall = scale_control(amplitude + self.amplitude_bias, self.scale)
        shares = normalize_harmonic_distribution(scale_control(distribution, self.scale), f0, self.sample_rate)
        return overall * shares

    def forward(
        self, amplitude: torch.Tensor, distribution: torch.Tensor, f0: torch.Tensor, mask: torch.Tensor | None = None, start_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw controls at frame rate + `f0 [B, T]` Hz + `mask [B, 1, T]` -> `[B, 1, T * hop]`, zero past the mask.
        `start_phase [B]` (float64 cycles): the phase before the first sample (`harmonic_synthesis`'s `initial_cycles`)."""
        amplitudes = self.harmonic_amplitudes(amplitude, distribution, f0)
        return harmonic_synthesis(amplitudes, f0, self.sample_rate, self.hop_size, mask, initial_cycles=start_phase)


def harmonic_comb(
    f0: torch.Tensor,
    sample_rate: int,
    hop_size: int,
    mask: torch.Tensor | None = None,
    amplitude: float = 1.0,
    initial_cycles: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every harmonic below Nyquist at the same `amplitude`: `f0 [B, T]` Hz -> `[B, 1, T * hop]` (a band-limited pulse train).

    Equal to `harmonic_synthesis` with all amplitudes `amplitude`, but in closed form (the Dirichlet
    sum `Σ_{k=1..K} sin kθ = sin(Kθ/2) sin((K+1)θ/2) / sin(θ/2)`, K = harmonics below Nyquist in the
    frame), so its cost does not grow with the number of harmonics: the cheap excitation of a decoder
    whose network shapes the spectrum itself (the `istft` decoder filters it per STFT bin).
    `initial_cycles [B]` (float64): the phase before the first sample, as in `harmonic_synthesis`.
    """
    f0_samples = hold_frames(f0.float().unsqueeze(1), hop_size)  # [B, 1, S]
    cycles = torch.cumsum(f0_samples.double() / sample_rate, dim=2)
    if initial_cycles is not None:
        cycles = cycles + initial_cycles.double().reshape(-1, 1, 1)
    cycles = torch.remainder(cycles, 1.0)
    theta = (2 * math.pi * cycles).float()
    # K: the largest k with k * f0 < Nyquist (0 when unvoiced).
    count = torch.ceil((sample_rate / 2) / f0_samples.clamp(min=1e-3)) - 1
    count = torch.where(f0_samples > 0, count, torch.zeros_like(count))
    denominator = torch.sin(theta / 2)
    numerator = torch.sin(count * theta / 2) * torch.sin((count + 1) * theta / 2)
    # At θ -> 0 (mod 2π) the sum -> 0 like K(K+1)θ/4; where the quotient is ill-conditioned take that limit, 0.
    small = denominator.abs() < 1e-4
    wave = torch.where(small, torch.zeros_like(numerator), numerator / torch.where(small, torch.ones_like(denominator), denominator))
    return apply_mask(wave * amplitude, sample_mask(mask, hop_size))
