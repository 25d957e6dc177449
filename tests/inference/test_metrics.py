"""Sanity of the singing metrics on signals whose right answer is known: identity, a semitone shift,
noise, silence, a delay that only DTW can undo, and the small pieces (DTW, warping, F0 comparisons)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from inference.metrics import (
    MCDSettings,
    SingingMetrics,
    allpass_warp,
    compare_f0,
    dtw_align,
    evaluate_pair,
    in_tune_share,
    mel_alpha,
    mel_cepstra,
    mel_cepstral_distortion,
    summarize,
)
from preprocessor.audio import extract_f0, midi_to_hz

SR = 24000
HOP = 300
F0_RANGE = dict(f0_min=80.0, f0_max=800.0)
VOWEL_A = ((800.0, 80.0), (1200.0, 90.0), (2500.0, 120.0))  # formant (Hz, bandwidth Hz)
VOWEL_I = ((300.0, 60.0), (2300.0, 100.0), (3000.0, 150.0))


def sung_tone(midi: float, seconds: float = 1.0, formants=VOWEL_A, level: float = 0.3) -> np.ndarray:
    """A sung-like vowel: harmonics of ``midi`` with a 1/k source shaped by three resonances."""
    f0 = midi_to_hz(midi)
    harmonics = np.arange(1, int(SR / 2 / f0))
    freqs = harmonics * f0
    amps = 1.0 / harmonics
    for centre, bandwidth in formants:
        amps = amps / np.sqrt((1 - (freqs / centre) ** 2) ** 2 + (freqs * bandwidth / centre**2) ** 2)
    t = np.arange(int(seconds * SR)) / SR
    wave = np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :]), axis=0)
    return (level * wave / np.abs(wave).max()).astype(np.float32)


def melody(seconds_per_note: float = 0.2) -> np.ndarray:
    """Notes that change pitch and vowel, so a delay changes what each frame holds."""
    notes = [(60, VOWEL_A), (67, VOWEL_I), (64, VOWEL_A), (72, VOWEL_I), (62, VOWEL_I), (69, VOWEL_A)]
    return np.concatenate([sung_tone(m, seconds_per_note, f) for m, f in notes])


def pair(ref: np.ndarray, gen: np.ndarray, score=None) -> SingingMetrics:
    # ESPnet's metrics have their own tests (test_espnet_metrics.py); leaving them out keeps these fast.
    return evaluate_pair(ref, gen, SR, HOP, f0_method="parselmouth", score_pitch_frames=score, espnet=False, **F0_RANGE)


@pytest.fixture(scope="module")
def c4() -> np.ndarray:
    return sung_tone(60)


def test_identical_signals_score_perfectly(c4):
    metrics = pair(c4, c4.copy())
    assert metrics.mcd_db < 1e-6
    assert metrics.f0_rmse_cents == 0.0
    assert metrics.semitone_accuracy == 1.0
    assert metrics.vuv_error == 0.0
    assert metrics.voiced_frames > 0.9 * (len(c4) // HOP)
    assert metrics.f0_frames == len(c4) // HOP
    assert math.isnan(metrics.in_tune_share) and metrics.in_tune_frames == 0  # no score given


def test_one_semitone_up_is_100_cents_and_never_the_same_semitone(c4):
    metrics = pair(c4, sung_tone(61))
    assert metrics.f0_rmse_cents == pytest.approx(100.0, abs=3.0)
    assert metrics.semitone_accuracy == 0.0
    assert metrics.vuv_error < 0.05
    # Same vowel a semitone higher: the envelope barely moves, far below noise (next test).
    assert metrics.mcd_db < 3.0


def test_white_noise_against_a_sung_vowel_is_a_large_distortion(c4):
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(c4))).astype(np.float32)
    mcd, pairs = mel_cepstral_distortion(c4, noise, SR)
    # ~10.3 dB with this definition (80 dB dynamic range, c_0 excluded); a semitone shift is ~0.8 dB.
    assert mcd > 8.0
    assert pairs > 0
    other_vowel, _ = mel_cepstral_distortion(c4, sung_tone(60, formants=VOWEL_I), SR)
    shifted, _ = mel_cepstral_distortion(c4, sung_tone(61), SR)
    assert shifted < other_vowel < mcd  # pitch shift < vowel change < noise


def test_gain_change_costs_nothing_because_c0_is_excluded(c4):
    mcd, _ = mel_cepstral_distortion(c4, 0.25 * c4, SR)
    assert mcd < 1e-3


def test_in_tune_share_against_the_score(c4):
    score = np.full(len(c4) // HOP, 60)
    at_pitch = pair(c4, c4, score=score)
    assert at_pitch.in_tune_share > 0.97
    assert at_pitch.in_tune_frames == at_pitch.voiced_frames
    sharp = pair(c4, sung_tone(61), score=score)
    assert sharp.in_tune_share < 0.03
    # Rests are not counted: a score that is all rest leaves nothing to measure.
    assert math.isnan(pair(c4, c4, score=np.zeros_like(score)).in_tune_share)


def test_vuv_error_of_silence_against_a_tone_is_its_voiced_share(c4):
    metrics = pair(c4, np.zeros_like(c4))
    ref_uv = extract_f0(c4, SR, HOP, len(c4) // HOP, method="parselmouth", **F0_RANGE).uv
    voiced_share = 1.0 - ref_uv.mean()
    assert metrics.vuv_error == pytest.approx(voiced_share)
    assert metrics.vuv_error > 0.9  # only the edges, where Praat's window does not fit, are unvoiced
    assert metrics.voiced_frames == 0
    assert math.isnan(metrics.f0_rmse_cents) and math.isnan(metrics.semitone_accuracy)


def test_dtw_undoes_a_delay_that_frame_by_frame_comparison_cannot():
    lead = np.zeros(int(0.1 * SR), np.float32)
    song = melody()
    ref = np.concatenate([lead, song])
    gen = np.concatenate([lead, np.zeros(int(0.06 * SR), np.float32), song])  # 60 ms late
    aligned, _ = mel_cepstral_distortion(ref, gen, SR)
    frame_by_frame, _ = mel_cepstral_distortion(ref, gen, SR, use_dtw=False)
    assert frame_by_frame > 2.0
    assert aligned < 0.2 * frame_by_frame
    assert aligned < 0.5


def test_silent_reference_frames_are_left_out(c4):
    quiet = sung_tone(67, seconds=0.5, formants=VOWEL_I, level=3e-3)  # 40 dB down: a murmur, not silence
    ref = np.concatenate([c4, np.zeros_like(quiet)])
    gen = np.concatenate([c4, quiet])
    settings = MCDSettings()
    mcd, pairs = mel_cepstral_distortion(ref, gen, SR, settings)
    all_frames = len(mel_cepstra(ref, SR, settings).energy_db)
    assert pairs < 0.75 * all_frames  # the silent third is out
    assert mcd < 0.1
    # Counting the silence (a threshold below the floor) shows what was excluded: a murmur vs digital zero.
    counted, counted_pairs = mel_cepstral_distortion(ref, gen, SR, MCDSettings(silence_db=300.0))
    assert counted_pairs >= all_frames
    assert counted > 0.5  # ~1.0 dB: a third of the pairs now compare the murmur with digital silence


def _brute_force_dtw_cost(a: np.ndarray, b: np.ndarray) -> float:
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(len(a)):
        for j in range(len(b)):
            acc[i + 1, j + 1] = np.linalg.norm(a[i] - b[j]) + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(acc[-1, -1])


@pytest.mark.parametrize("seed", range(8))
def test_dtw_finds_the_cheapest_monotonic_path(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rng.integers(1, 14), 3))
    b = rng.standard_normal((rng.integers(1, 14), 3))
    ref_index, gen_index = dtw_align(a, b)
    assert (ref_index[0], gen_index[0]) == (0, 0)
    assert (ref_index[-1], gen_index[-1]) == (len(a) - 1, len(b) - 1)
    steps = np.stack([np.diff(ref_index), np.diff(gen_index)], axis=1)
    assert all(tuple(step) in {(1, 1), (1, 0), (0, 1)} for step in steps)
    cost = np.linalg.norm(a[ref_index] - b[gen_index], axis=1).sum()
    assert cost == pytest.approx(_brute_force_dtw_cost(a, b), abs=1e-9)


def test_dtw_of_a_sequence_with_itself_is_the_diagonal():
    a = np.random.default_rng(0).standard_normal((20, 4))
    ref_index, gen_index = dtw_align(a, a)
    np.testing.assert_array_equal(ref_index, np.arange(20))
    np.testing.assert_array_equal(gen_index, np.arange(20))


def test_mel_alpha_and_the_allpass_warp():
    assert mel_alpha(16000) == pytest.approx(0.41, abs=0.011)
    assert mel_alpha(24000) == pytest.approx(0.466, abs=0.002)
    assert mel_alpha(44100) == pytest.approx(0.544, abs=0.01)
    omega = np.linspace(0, np.pi, 33)
    warped = allpass_warp(omega, 0.466)
    assert warped[0] == 0.0 and warped[-1] == pytest.approx(np.pi)
    assert np.all(warped[1:-1] > omega[1:-1])  # alpha > 0 stretches the low frequencies, as the mel scale does
    np.testing.assert_allclose(allpass_warp(warped, -0.466), omega, atol=1e-12)


def test_mel_cepstra_shapes_and_frames():
    wav = sung_tone(60, seconds=0.5)
    cepstra = mel_cepstra(wav, SR, MCDSettings(order=12))
    assert cepstra.coefficients.shape == (1 + len(wav) // 120, 12)  # 5 ms hop = 120 samples, centred frames
    assert np.all(np.isfinite(cepstra.coefficients))
    assert cepstra.energy_db.shape == (cepstra.coefficients.shape[0],)


def test_compare_f0_on_known_tracks():
    ref = np.array([100.0, 100.0, 100.0, 0.0, 100.0, 100.0])
    gen = np.array([100.0, 200.0, 0.0, 0.0])  # shorter: the reference is trimmed to 4 frames
    result = compare_f0(ref, gen)
    assert result.frames == 4 and result.voiced_frames == 2
    assert result.f0_rmse_cents == pytest.approx(math.sqrt((0.0 + 1200.0**2) / 2))
    assert result.semitone_accuracy == 0.5
    assert result.vuv_error == 0.25


def test_in_tune_share_skips_rests_and_unvoiced_frames():
    gen = np.array([midi_to_hz(60.0), midi_to_hz(60.6), 0.0, 440.0, midi_to_hz(59.55)])
    score = np.array([60, 60, 60, 0])  # shorter: frame 4 is dropped
    result = in_tune_share(gen, score)
    assert result.frames == 2
    assert result.in_tune_share == 0.5
    assert in_tune_share(np.array([midi_to_hz(59.55)]), np.array([60])).in_tune_share == 1.0


def test_summarize_leaves_nan_items_out_of_each_mean():
    nan = float("nan")
    voiced = SingingMetrics(4.0, 30.0, 0.9, 0.1, 0.8, 100, 120, 90, 400)
    unvoiced = SingingMetrics(6.0, nan, nan, 0.3, nan, 0, 50, 0, 200)
    summary = summarize([voiced, unvoiced])
    assert summary["items"] == 2
    assert summary["mcd_db"] == 5.0 and summary["mcd_db_items"] == 2
    assert summary["vuv_error"] == pytest.approx(0.2)
    assert summary["f0_rmse_cents"] == 30.0 and summary["f0_rmse_cents_items"] == 1
    assert summary["semitone_accuracy"] == 0.9 and summary["in_tune_share"] == 0.8
    assert summary["voiced_frames"] == 100 and summary["f0_frames"] == 170 and summary["mcd_frames"] == 600
    empty = summarize([unvoiced])
    assert math.isnan(empty["f0_rmse_cents"]) and empty["f0_rmse_cents_items"] == 0
