"""DDSP harmonic synthesis: pitch, Nyquist, voicing, phase continuity and 3-minute precision, masks, and
the processor's normalised distribution."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modules.ddsp.harmonic import HarmonicSynth, harmonic_synthesis
from modules.harmonic_source import HarmonicNoiseSynth

SR, HOP = 16000, 160


def spectrum_peaks(wave: np.ndarray, count: int) -> list[float]:
    """Frequencies (Hz) of the `count` strongest FFT bins of a Hann-windowed wave, ascending."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    bins = np.argsort(spectrum)[::-1]
    peaks: list[int] = []
    for b in bins:  # skip the shoulders of a peak already taken
        if all(abs(b - p) > 3 for p in peaks):
            peaks.append(int(b))
        if len(peaks) == count:
            break
    return sorted(p * SR / len(wave) for p in peaks)


def amplitudes_on(harmonics: dict[int, float], n_harmonics: int, frames: int) -> torch.Tensor:
    """`[1, H, T]` amplitudes: the given {harmonic number: amplitude}, zero elsewhere."""
    amplitudes = torch.zeros(1, n_harmonics, frames)
    for k, value in harmonics.items():
        amplitudes[0, k - 1] = value
    return amplitudes


def test_harmonics_sound_at_multiples_of_f0():
    frames = 100  # 1 s
    wave = harmonic_synthesis(amplitudes_on({1: 0.5, 3: 0.25}, 8, frames), torch.full((1, frames), 220.0), SR, HOP)[0, 0].numpy()
    assert wave.shape == (frames * HOP,)
    assert spectrum_peaks(wave, 2) == pytest.approx([220.0, 660.0], abs=2.0)
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(math.sqrt(0.5**2 / 2 + 0.25**2 / 2), rel=0.01)  # the given amplitudes


def test_harmonics_at_or_above_nyquist_are_silent_and_unvoiced_frames_are_silent():
    frames = 20
    f0 = torch.full((1, frames), 3000.0)
    f0[0, 10:] = 0.0  # unvoiced second half
    wave = harmonic_synthesis(amplitudes_on({1: 0.5, 3: 0.5}, 4, frames), f0, SR, HOP)[0, 0]  # harmonic 3 = 9 kHz > 8 kHz
    voiced_part = wave[: 10 * HOP].numpy()
    assert spectrum_peaks(voiced_part, 1) == pytest.approx([3000.0], abs=SR / len(voiced_part) * 2)
    assert np.abs(voiced_part).max() == pytest.approx(0.5, abs=0.02)  # only the fundamental sounds
    assert torch.all(wave[10 * HOP :] == 0)


def test_phase_is_continuous_through_pitch_changes():
    f0 = torch.tensor([[200.0, 300.0, 250.0, 400.0, 410.0]])
    wave = harmonic_synthesis(amplitudes_on({1: 1.0}, 1, 5), f0, SR, HOP)[0, 0].numpy()
    # A sine of frequency f moves at most 2 pi f / sr per sample; a phase jump would break this bound.
    assert np.abs(np.diff(wave)).max() <= 2 * math.pi * 410.0 / SR + 1e-4


def test_phase_stays_exact_over_a_three_minute_song():
    rate, hop, frames = 24000, 300, 24000 * 180 // 300
    wave = harmonic_synthesis(amplitudes_on({2: 1.0}, 2, frames), torch.full((1, frames), 441.0), rate, hop)[0, 0]
    n = torch.arange(wave.numel() - 2000, wave.numel(), dtype=torch.float64)
    # Sample n's phase is the sum of the n + 1 increments up to it (the first sample is one step in).
    expected = torch.sin(2 * math.pi * torch.remainder(2 * 441.0 * (n + 1) / rate, 1.0))
    assert torch.max(torch.abs(wave[-2000:].double() - expected)) < 1e-3


def test_padded_batch_gives_each_item_its_own_harmonics():
    torch.manual_seed(0)
    synth = HarmonicNoiseSynth(in_channels=6, sample_rate=SR, hop_size=HOP, n_harmonics=5).eval()
    lengths = [12, 7]
    x = torch.randn(2, 6, 12)
    f0 = torch.rand(2, 12) * 300 + 100
    f0[0, 3:5] = 0.0
    mask = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).float().unsqueeze(1)
    batch = synth.harmonics(synth.controls(x, mask).harmonic_amplitudes, f0, mask)
    for row, length in enumerate(lengths):
        alone_x, alone_f0 = x[row : row + 1, :, :length], f0[row : row + 1, :length]
        alone = synth.harmonics(synth.controls(alone_x).harmonic_amplitudes, alone_f0)
        torch.testing.assert_close(batch[row : row + 1, :, : length * HOP], alone, rtol=0, atol=1e-6)
        assert torch.all(batch[row, :, length * HOP :] == 0)




def test_high_harmonics_of_the_recurrence_stay_accurate():
    """sin(k θ) by the Chebyshev recurrence: harmonic 48 of a low voice matches a direct sine."""
    frames, f0_hz = 50, 110.0
    wave = harmonic_synthesis(amplitudes_on({48: 1.0}, 48, frames), torch.full((1, frames), f0_hz), 24000, 300)[0, 0].double()
    n = torch.arange(wave.numel(), dtype=torch.float64)
    expected = torch.sin(2 * math.pi * torch.remainder(48 * f0_hz * (n + 1) / 24000, 1.0))
    assert torch.max(torch.abs(wave - expected)) < 1e-3


def test_processor_normalises_the_distribution_below_nyquist():
    """HarmonicSynth: the overall amplitude sets the level, the distribution shares it among audible harmonics only."""
    synth = HarmonicSynth(SR, HOP, n_harmonics=4, scale="identity", amplitude_bias=0.0)
    frames = 50
    amplitude = torch.full((1, 1, frames), 0.6)
    distribution = torch.tensor([1.0, 0.0, 1.0, 1.0]).view(1, 4, 1).expand(1, 4, frames)
    f0 = torch.full((1, frames), 2500.0)  # harmonic 4 = 10 kHz is above the 8 kHz Nyquist: its share goes to 1 and 3
    amplitudes = synth.harmonic_amplitudes(amplitude, distribution, f0)
    torch.testing.assert_close(amplitudes[0, :, 0], torch.tensor([0.3, 0.0, 0.3, 0.0]))
    wave = synth(amplitude, distribution, f0)[0, 0].numpy()
    assert spectrum_peaks(wave, 2) == pytest.approx([2500.0, 7500.0], abs=2 * SR / len(wave))
    assert synth.frame_channels() == {"amplitude": 1, "distribution": 4}
