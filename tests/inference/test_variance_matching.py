"""The two-band gain that levels a render to its sung energy and breathiness (`inference.variance_matching`)."""
from __future__ import annotations

import numpy as np
import pytest

from inference.variance_matching import match_variance, measure_levels

RATE, HOP, WIN, FRAMES = 16000, 160, 640, 160
SILENT = 40  # the first frames are (near) silence and unvoiced


@pytest.fixture(scope="module")
def voice() -> tuple[np.ndarray, np.ndarray]:
    """A 220 Hz harmonic tone (1/k amplitudes) plus noise shaped towards the high frequencies, after 0.4 s of near-silence."""
    rng = np.random.default_rng(0)
    t = np.arange(FRAMES * HOP) / RATE
    wav = sum(0.2 / k * np.sin(2 * np.pi * 220 * k * t + k) for k in range(1, 30))
    noise = np.diff(rng.standard_normal(len(t) + 1))  # first difference: a rising (breath-like) spectrum
    wav = wav + 0.01 * noise
    wav[: SILENT * HOP] = 1e-5 * rng.standard_normal(SILENT * HOP)
    f0 = np.full(FRAMES, 220.0)
    f0[:SILENT] = 0.0
    return wav.astype(np.float32), f0


def _change(energy: float, breathiness: float) -> np.ndarray:
    change = np.zeros((2, FRAMES))
    change[0], change[1] = energy, breathiness
    return change


def _measured_change(voice, out) -> tuple[float, float]:
    wav, f0 = voice
    e0, b0, _, _ = measure_levels(wav, f0, RATE, HOP, WIN)
    e1, b1, _, _ = measure_levels(out, f0, RATE, HOP, WIN)
    sung = slice(SILENT + 5, FRAMES - 5)  # voiced frames, clear of the edges and the smoothing ramp
    return float(np.median((e1 - e0)[sung])), float(np.median((b1 - b0)[sung]))


@pytest.mark.parametrize("energy", [6.0, -6.0])
def test_an_energy_change_moves_the_measured_energy_by_its_amount(voice, energy):
    out = match_variance(*voice, RATE, HOP, WIN, change_db=_change(energy, 0.0))
    d_energy, _ = _measured_change(voice, out)
    assert abs(d_energy - energy) < 0.5


@pytest.mark.parametrize("breathiness", [6.0, -3.0])
def test_a_breathiness_change_moves_the_breathiness_and_barely_the_energy(voice, breathiness):
    out = match_variance(*voice, RATE, HOP, WIN, change_db=_change(0.0, breathiness))
    d_energy, d_breath = _measured_change(voice, out)
    assert abs(d_breath - breathiness) < 1.0
    assert abs(d_energy) < 0.5


def test_no_change_keeps_the_audio_and_silence_is_never_amplified(voice):
    wav, f0 = voice
    same = match_variance(wav, f0, RATE, HOP, WIN, change_db=_change(0.0, 0.0))
    np.testing.assert_allclose(same, wav, atol=1e-6)
    louder = match_variance(wav, f0, RATE, HOP, WIN, change_db=_change(12.0, 12.0))
    assert np.abs(louder[: (SILENT - 5) * HOP]).max() <= np.abs(wav[: SILENT * HOP]).max() * 1.01  # the rest stays a rest


def test_the_gain_is_finite_on_digital_silence_and_clamped_on_absurd_targets(voice):
    zeros = np.zeros(FRAMES * HOP, dtype=np.float32)
    f0 = np.full(FRAMES, 220.0)
    out = match_variance(zeros, f0, RATE, HOP, WIN, target_db=np.full((2, FRAMES), -20.0))
    assert np.array_equal(out, zeros)
    wav, f0 = voice
    out = match_variance(wav, f0, RATE, HOP, WIN, target_db=np.stack([np.full(FRAMES, 40.0), np.full(FRAMES, -200.0)]))
    assert np.isfinite(out).all()
    e0, _, _, _ = measure_levels(wav, f0, RATE, HOP, WIN)
    e1, _, _, _ = measure_levels(out, f0, RATE, HOP, WIN)
    assert (e1 - e0)[SILENT:].max() < 12.0 + 1.0  # the ±12 dB clamp (+ the measurement's slack)


def test_exactly_one_of_target_and_change(voice):
    with pytest.raises(ValueError, match="exactly one"):
        match_variance(*voice, RATE, HOP, WIN)
