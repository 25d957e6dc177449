"""A-weighted loudness: level, the A curve, the frame convention, silence."""
from __future__ import annotations

import numpy as np
import pytest

from preprocessor.loudness import LOUDNESS_FLOOR_DB, a_loudness_db, a_weighting_db

SR, HOP, N_FFT = 16000, 160, 1024


def _sine(freq: float, amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_curve_is_zero_at_1khz_and_low_frequencies_are_weighed_down():
    weights = a_weighting_db(np.array([100.0, 1000.0, 4000.0]))
    assert weights[1] == pytest.approx(0.0, abs=0.05)
    assert weights[0] == pytest.approx(-19.1, abs=0.2)  # IEC 61672 table value at 100 Hz
    assert weights[2] == pytest.approx(1.0, abs=0.1)


def test_full_scale_1khz_sine_reads_minus_3_db_and_gain_adds_db():
    loud = a_loudness_db(_sine(1000, 1.0), SR, HOP, N_FFT)[10:-10]
    quiet = a_loudness_db(_sine(1000, 0.25), SR, HOP, N_FFT)[10:-10]
    assert loud.mean() == pytest.approx(-3.01, abs=0.05)
    assert loud.mean() - quiet.mean() == pytest.approx(20 * np.log10(4), abs=0.05)
    assert loud.std() < 0.05  # a steady tone is a steady loudness


def test_a_100hz_tone_reads_its_a_weighted_level():
    level = a_loudness_db(_sine(100, 1.0), SR, HOP, N_FFT)[10:-10].mean()
    assert level == pytest.approx(-3.01 - 19.1, abs=0.5)


def test_frame_count_and_a_tone_burst_appears_in_its_frames():
    wav = np.zeros(SR, np.float32)
    wav[8000:9600] = _sine(1000, 0.5, 0.1)
    loudness = a_loudness_db(wav, SR, HOP, N_FFT)
    assert loudness.shape == (SR // HOP,)
    assert loudness[55] > -15 and loudness[20] == LOUDNESS_FLOOR_DB  # frame 55 is centred at 8880, inside the burst


def test_silence_is_the_floor():
    assert (a_loudness_db(np.zeros(4000, np.float32), SR, HOP, N_FFT) == LOUDNESS_FLOOR_DB).all()
