"""Filtered noise: a flat envelope passes the noise unchanged and undelayed, a low-pass envelope removes the
highs, the output follows the frame mask, and a padded batch equals its items alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modules.ddsp.core import white_noise
from modules.ddsp.filtered_noise import FilteredNoise, frequency_impulse_response

SR, HOP = 16000, 160


def test_flat_envelope_passes_the_noise_without_delay():
    noise_filter = FilteredNoise(SR, HOP, n_bands=65, scale="identity", initial_bias=0.0).eval()
    frames = 40
    out = noise_filter(torch.ones(1, 65, frames))[0, 0]
    noise = white_noise((1, 1, frames * HOP), training=False)[0, 0]
    centre_tap = float(frequency_impulse_response(torch.ones(65), 128).max())  # the Hann window's value at the centre
    # An all-pass filter is a centred impulse: output sample n is noise sample n (no shift), scaled by that tap.
    torch.testing.assert_close(out, noise * centre_tap, rtol=0, atol=1e-4)


def test_low_pass_envelope_removes_the_highs():
    torch.manual_seed(0)
    n_bands = 65  # band b at b * 125 Hz
    magnitudes = torch.zeros(1, n_bands, 200)
    magnitudes[:, :17] = 1.0  # up to 2 kHz
    out = FilteredNoise(SR, HOP, n_bands=n_bands, scale="identity", initial_bias=0.0)(magnitudes)[0, 0].numpy()
    power = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(len(out), 1 / SR)
    assert power[freqs > 3000].mean() < 1e-3 * power[freqs < 1500].mean()


def test_shapes_masks_and_padding_invariance():
    torch.manual_seed(0)
    noise_filter = FilteredNoise(SR, HOP, n_bands=33).eval()
    lengths = [15, 9]
    magnitudes = torch.randn(2, 33, 15) * 3
    mask = (torch.arange(15)[None] < torch.tensor(lengths)[:, None]).float().unsqueeze(1)
    batch = noise_filter(magnitudes, mask)
    assert batch.shape == (2, 1, 15 * HOP)
    for row, length in enumerate(lengths):
        alone = noise_filter(magnitudes[row : row + 1, :, :length])
        torch.testing.assert_close(batch[row : row + 1, :, : length * HOP], alone, rtol=0, atol=1e-6)
        assert torch.all(batch[row, :, length * HOP :] == 0)


def test_noise_is_fresh_in_training_and_fixed_in_eval():
    noise_filter = FilteredNoise(SR, HOP, n_bands=17)
    magnitudes = torch.zeros(1, 17, 10)
    assert not torch.equal(noise_filter(magnitudes), noise_filter(magnitudes))
    noise_filter.eval()
    first = noise_filter(magnitudes)
    assert torch.equal(first, noise_filter(magnitudes)) and first.abs().max() > 0
    # The default bias starts the noise quiet (DDSP's -5): far below the white noise's unit RMS.
    assert first.pow(2).mean().sqrt() < 0.01


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="magnitudes"):
        FilteredNoise(SR, HOP, n_bands=17)(torch.zeros(1, 16, 10))
    with pytest.raises(ValueError, match="window_size"):
        FilteredNoise(SR, HOP, n_bands=17, window_size=64)
