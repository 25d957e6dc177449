"""A-weighted loudness per frame, in dB: the loudness control of the DDSP singer.

Definition (per frame ``t``, on the project's frame convention, see `preprocessor.audio`): the
Hann-windowed power spectrum, scaled so that by Parseval's theorem its sum is the mean square of the
windowed signal, weighted bin by bin with the A curve (IEC 61672, 0 dB at 1 kHz) and summed, then
``10 * log10`` floored at `LOUDNESS_FLOOR_DB`. So a full-scale 1 kHz sine reads about -3 dB
(mean square 1/2) and every 6 dB of gain reads 6 dB louder; white noise reads lower than its RMS
level by the A curve's average over the band.

Why A-weighted rather than the RMS energy of `preprocessor.audio.frame_energy`: DDSP conditions on it
(Engel et al. 2020) because it follows perceived loudness; a bass-heavy room rumble or a hum no longer
moves the control as much as the voice does.

Computed in torch so that the same numbers serve the feature cache and the transfer CLI; frame ``t``
is centred on sample ``(t + 0.5) * hop_size``, ``T = S // hop_size`` frames.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from preprocessor.audio import frame_padding

LOUDNESS_FLOOR_DB = -100.0


def a_weighting_db(frequencies_hz: np.ndarray) -> np.ndarray:
    """The A curve in dB at `frequencies_hz` (IEC 61672-1; +2.0 dB normalises it to 0 dB at 1 kHz).

    0 Hz is -inf in theory; it is returned as a large negative number (the DC bin carries no loudness).
    """
    f2 = np.asarray(frequencies_hz, dtype=np.float64) ** 2
    numerator = (12194.0**2) * f2 * f2
    denominator = (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    with np.errstate(divide="ignore"):
        weight = 20.0 * np.log10(np.maximum(numerator / np.maximum(denominator, 1e-300), 1e-30)) + 2.0
    return weight


class ALoudness(nn.Module):
    """``wav [B, S]`` -> A-weighted loudness ``[B, S // hop_size]`` in dB (see the module docstring).

    Args:
        sample_rate: Hz of the input.
        hop_size: samples per frame.
        n_fft: window and FFT length (a Hann window of this size).
    """

    def __init__(self, sample_rate: int, hop_size: int, n_fft: int) -> None:
        super().__init__()
        if sample_rate <= 0 or hop_size <= 0 or n_fft < hop_size:
            raise ValueError(f"need sample_rate > 0, hop_size > 0 and n_fft >= hop_size; got {sample_rate}, {hop_size}, {n_fft}")
        self.hop_size = hop_size
        self.n_fft = n_fft
        self.pad_left, self.pad_right = frame_padding(n_fft, hop_size)
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
        weight = 10.0 ** (a_weighting_db(frequencies) / 10.0)  # power weight per bin
        # One-sided power spectrum -> mean square: |X_0|^2 and |X_N/2|^2 once, the other bins twice,
        # divided by n_fft * sum(w^2) (Parseval for the windowed frame, normalised by the window's power).
        fold = np.full(len(frequencies), 2.0)
        fold[0] = 1.0
        if n_fft % 2 == 0:
            fold[-1] = 1.0
        scale = fold * weight / (n_fft * float((window**2).sum()))
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("bin_scale", torch.from_numpy(scale).float(), persistent=False)  # [F]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        if wav.dim() != 2:
            raise ValueError(f"expected wav [B, S], got {tuple(wav.shape)}")
        samples = wav.size(1)
        n_frames = samples // self.hop_size
        if n_frames == 0:
            return wav.new_zeros(wav.size(0), 0)
        mode = "reflect" if samples > max(self.pad_left, self.pad_right) else "constant"
        padded = torch.nn.functional.pad(wav.float().unsqueeze(1), (self.pad_left, self.pad_right), mode=mode).squeeze(1)
        spectrum = torch.stft(
            padded, self.n_fft, hop_length=self.hop_size, window=self.window, center=False, onesided=True, return_complex=True
        )[:, :, :n_frames]  # [B, F, T]
        power = spectrum.real.pow(2) + spectrum.imag.pow(2)
        mean_square = torch.einsum("f,bft->bt", self.bin_scale, power)  # [B, T]
        return 10.0 * torch.log10(mean_square.clamp(min=10.0 ** (LOUDNESS_FLOOR_DB / 10.0)))


def a_loudness_db(wav: np.ndarray, sample_rate: int, hop_size: int, n_fft: int) -> np.ndarray:
    """Mono ``wav [S]`` -> float32 ``[S // hop_size]`` A-weighted loudness in dB (numpy in, numpy out)."""
    meter = ALoudness(sample_rate, hop_size, n_fft)
    with torch.no_grad():
        return meter(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)))[0].numpy()
