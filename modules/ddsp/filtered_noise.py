"""Filtered noise (DDSP; Engel et al. 2020): white noise shaped by a learnt per-frame spectral envelope.

The network predicts, per frame, `n_bands` magnitudes spread linearly from 0 Hz to Nyquist (the
envelope). Each frame's magnitudes become a linear-phase FIR filter by frequency sampling (inverse
real FFT of the zero-phase response, centred, Hann-windowed: DDSP's `frequency_impulse_response`);
the frame's hop of white noise is convolved with it and the frames are overlap-added.

    magnitudes [B, n_bands, T] ─ scale ─ irfft ─ window ─▶ FIR [B, T, W]
    noise [B, 1, T·hop] ─ frames [B, T, hop] ─ ⊛ FIR (FFT) ─ overlap-add ─ [B, 1, T·hop]

Padding: the filters are centred (delay W/2 removed), so an output sample hears noise up to W/2
samples ahead; the noise is zeroed past the mask first, so a padded batch gives each item exactly
its samples alone. Noise is fresh in training and a fixed sequence in eval mode (`core.white_noise`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from modules.ddsp.core import (
    apply_mask,
    check_scale,
    export_ops_enabled,
    hold_last_valid,
    inverse_real_dft,
    overlap_add,
    real_dft,
    sample_mask,
    scale_control,
    white_noise,
)


def frequency_impulse_response(magnitudes: torch.Tensor, window_size: int) -> torch.Tensor:
    """`magnitudes [..., n_bands]` (>= 0, 0 Hz .. Nyquist) -> linear-phase impulse responses `[..., window_size]`,
    centred at `window_size // 2` and Hann-windowed (window_size <= 2 * (n_bands - 1))."""
    if export_ops_enabled():  # the same inverse DFT as a matrix product (modules/ddsp/core.py)
        impulse = inverse_real_dft(magnitudes, None, 2 * (magnitudes.size(-1) - 1))
    else:
        impulse = torch.fft.irfft(magnitudes.float().to(torch.complex64))  # zero phase, [..., 2 * (n_bands - 1)], peak at 0
    full = impulse.size(-1)
    if window_size > full:
        raise ValueError(f"window_size {window_size} exceeds the filter length 2 * (n_bands - 1) = {full}")
    half = window_size // 2
    # Centre the response: the last `half` taps (negative time) then the first `window_size - half`.
    centred = torch.cat([impulse[..., full - half :], impulse[..., : window_size - half]], dim=-1)
    return centred * torch.hann_window(window_size, periodic=False, device=magnitudes.device)


class FilteredNoise(nn.Module):
    """Signal-chain processor: `magnitudes [B, n_bands, T]` (raw) -> filtered noise `[B, 1, T * hop]`.

    Args:
        sample_rate: output rate in Hz (only recorded; bands always span 0 .. Nyquist).
        hop_size: samples per frame.
        n_bands: magnitudes per frame, linearly spaced from 0 Hz to Nyquist.
        window_size: FIR length in samples; default `2 * (n_bands - 1)`, the longest the bands define.
        scale: raw output -> magnitude (`exp_sigmoid`, `softplus`, `identity`).
        initial_bias: added to the raw magnitudes before scaling; negative starts the noise quiet
            (DDSP uses -5: exp_sigmoid(-5) ≈ 1e-4).
    """

    PORTS = {"magnitudes": "frames"}

    def __init__(
        self, sample_rate: int, hop_size: int, n_bands: int = 65, window_size: int | None = None, scale: str = "exp_sigmoid", initial_bias: float = -5.0
    ) -> None:
        super().__init__()
        if hop_size <= 0 or n_bands < 2:
            raise ValueError(f"need hop_size > 0 and n_bands >= 2; got {hop_size}, {n_bands}")
        window_size = 2 * (n_bands - 1) if window_size is None else window_size
        if not 1 <= window_size <= 2 * (n_bands - 1):
            raise ValueError(f"window_size must be in 1..{2 * (n_bands - 1)} (2 * (n_bands - 1)), got {window_size}")
        check_scale(scale)
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.n_bands = n_bands
        self.window_size = window_size
        self.scale = scale
        self.initial_bias = initial_bias

    def frame_channels(self) -> dict[str, int]:
        return {"magnitudes": self.n_bands}

    def filter_noise(self, noise: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        """`noise [B, 1, T * hop]`, scaled `magnitudes [B, n_bands, T]` -> `[B, 1, T * hop]` (each hop filtered by its frame)."""
        batch, _, frames = magnitudes.shape
        hop, window = self.hop_size, self.window_size
        impulse = frequency_impulse_response(magnitudes.transpose(1, 2), window)  # [B, T, W]
        noise_frames = noise.reshape(batch, frames, hop)  # [B, T, hop]
        length = hop + window - 1  # one frame's full convolution
        n_fft = 1 << (length - 1).bit_length()
        total = (frames - 1) * hop + length
        if export_ops_enabled():  # DFT matrix products and a transposed-conv overlap-add (modules/ddsp/core.py)
            noise_re, noise_im = real_dft(noise_frames, n_fft)
            ir_re, ir_im = real_dft(impulse, n_fft)
            filtered = inverse_real_dft(noise_re * ir_re - noise_im * ir_im, noise_re * ir_im + noise_im * ir_re, n_fft, length)
            summed = overlap_add(filtered, hop)
        else:
            filtered = torch.fft.irfft(torch.fft.rfft(noise_frames.float(), n_fft) * torch.fft.rfft(impulse, n_fft), n_fft)[..., :length]
            # Overlap-add: frame t's `length` samples start at t * hop. fold wants [B, L, T] -> [B, 1, 1, (T - 1) * hop + L].
            summed = F.fold(filtered.transpose(1, 2), output_size=(1, total), kernel_size=(1, length), stride=(1, hop)).reshape(batch, 1, total)
        start = window // 2  # the centring delay
        return summed[..., start : start + frames * hop].to(noise.dtype)

    def context_samples(self) -> int:
        """Samples on each side of an output sample that its filter reaches (the centred FIR's length, a bound)."""
        return self.window_size

    def forward(self, magnitudes: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Raw `magnitudes [B, n_bands, T]`, `mask [B, 1, T]` -> `[B, 1, T * hop]`, zero past the mask.
        `noise [B, 1, T * hop]` (standard normal): filtered instead of the drawn noise (an exported graph, a chunk)."""
        if magnitudes.dim() != 3 or magnitudes.size(1) != self.n_bands:
            raise ValueError(f"need magnitudes [B, {self.n_bands}, T], got {tuple(magnitudes.shape)}")
        envelope = hold_last_valid(scale_control(magnitudes + self.initial_bias, self.scale), mask)
        batch, _, frames = magnitudes.shape
        samples = sample_mask(mask, self.hop_size)
        if noise is None:
            noise = white_noise((batch, 1, frames * self.hop_size), self.training, magnitudes.device)
        noise = apply_mask(noise, samples)
        return apply_mask(self.filter_noise(noise, envelope), samples)
