"""The harmonic-plus-noise source and the source-excited HiFi-GAN: pitch, Nyquist, voicing, phase
continuity and precision, masks, determinism at inference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modules.harmonic_source import HarmonicNoiseSynth
from modules.hifigan import HiFiGANGenerator

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
    synth = HarmonicNoiseSynth(in_channels=4, sample_rate=SR, hop_size=HOP, n_harmonics=8)
    frames = 100  # 1 s
    wave = synth.harmonics(amplitudes_on({1: 0.5, 3: 0.25}, 8, frames), torch.full((1, frames), 220.0))[0, 0].numpy()
    assert wave.shape == (frames * HOP,)
    assert spectrum_peaks(wave, 2) == pytest.approx([220.0, 660.0], abs=2.0)
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(math.sqrt(0.5**2 / 2 + 0.25**2 / 2), rel=0.01)  # the given amplitudes


def test_harmonics_at_or_above_nyquist_are_silent_and_unvoiced_frames_are_silent():
    synth = HarmonicNoiseSynth(in_channels=4, sample_rate=SR, hop_size=HOP, n_harmonics=4)
    frames = 20
    f0 = torch.full((1, frames), 3000.0)
    f0[0, 10:] = 0.0  # unvoiced second half
    wave = synth.harmonics(amplitudes_on({1: 0.5, 3: 0.5}, 4, frames), f0)[0, 0]  # harmonic 3 = 9 kHz > 8 kHz
    voiced_part = wave[: 10 * HOP].numpy()
    assert spectrum_peaks(voiced_part, 1) == pytest.approx([3000.0], abs=SR / len(voiced_part) * 2)
    assert np.abs(voiced_part).max() == pytest.approx(0.5, abs=0.02)  # only the fundamental sounds
    assert torch.all(wave[10 * HOP :] == 0)


def test_phase_is_continuous_through_pitch_changes():
    synth = HarmonicNoiseSynth(in_channels=4, sample_rate=SR, hop_size=HOP, n_harmonics=1)
    f0 = torch.tensor([[200.0, 300.0, 250.0, 400.0, 410.0]])
    wave = synth.harmonics(amplitudes_on({1: 1.0}, 1, 5), f0)[0, 0].numpy()
    # A sine of frequency f moves at most 2 pi f / sr per sample; a phase jump would break this bound.
    assert np.abs(np.diff(wave)).max() <= 2 * math.pi * 410.0 / SR + 1e-4


def test_phase_stays_exact_over_a_three_minute_song():
    rate, hop, frames = 24000, 300, 24000 * 180 // 300
    synth = HarmonicNoiseSynth(in_channels=4, sample_rate=rate, hop_size=hop, n_harmonics=2)
    wave = synth.harmonics(amplitudes_on({2: 1.0}, 2, frames), torch.full((1, frames), 441.0))[0, 0]
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


def test_noise_is_fixed_at_inference_and_random_in_training():
    torch.manual_seed(0)
    synth = HarmonicNoiseSynth(in_channels=3, sample_rate=SR, hop_size=HOP, n_harmonics=3)
    x, f0 = torch.randn(1, 3, 10), torch.zeros(1, 10)  # unvoiced: the output is the noise alone
    synth.train()
    assert not torch.equal(synth(x, f0), synth(x, f0))
    synth.eval()
    first = synth(x, f0)
    assert torch.equal(first, synth(x, f0)) and first.abs().max() > 0


def test_source_excited_decoder_needs_f0_and_returns_its_excitation():
    torch.manual_seed(0)
    decoder = HiFiGANGenerator(
        in_channels=8, hop_size=300, upsample_initial_channel=32, upsample_rates=(5, 5, 4, 3), upsample_kernel_sizes=(10, 10, 8, 6),
        resblock_type="2", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), harmonic_source=True, sample_rate=24000,
        n_harmonics=4,
    )  # fmt: skip
    z = torch.randn(2, 8, 9)
    with pytest.raises(ValueError, match="pass f0"):
        decoder(z)
    with pytest.raises(ValueError, match="pass f0"):
        decoder(z, f0=torch.full((2, 8), 200.0))
    out = decoder.decode(z, f0=torch.full((2, 9), 200.0))
    assert out.wav.shape == out.source_wav.shape == (2, 1, 9 * 300)  # odd rates (5, 5, 3): the strided source convs fit exactly
    plain = HiFiGANGenerator(in_channels=8, hop_size=300, upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),))
    assert plain.decode(z).source_wav is None and plain(z).shape == (2, 1, 2700)
