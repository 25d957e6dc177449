"""Augmentation (WORLD key shift and time stretch) and the variance features (energy, breathiness)."""
from __future__ import annotations

import numpy as np
import pytest

from config.errors import UserInputError
from preprocessor.audio import extract_f0, frame_energy
from preprocessor.augment import AugmentationSettings, Transform, plan_augmentation, stretched_frames, transformed_notes, world_transform
from preprocessor.text.frame_rule import note_frame_counts
from preprocessor.variance import frame_breathiness

SR, HOP, WIN = 16000, 160, 640


def harmonic_tone(f0_hz: float, seconds: float, amplitude: float = 0.3, harmonics: int = 8) -> np.ndarray:
    """A voiced tone: `harmonics` partials falling 6 dB per octave, peak-normalised to `amplitude`, `seconds` long (whole frames)."""
    n = int(round(seconds * SR / HOP)) * HOP
    t = np.arange(n) / SR
    y = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, harmonics + 1))
    return (amplitude * y / np.max(np.abs(y))).astype(np.float32)


def cents(a: np.ndarray, b: float) -> np.ndarray:
    return 1200 * np.log2(a / b)


def test_energy_and_breathiness_of_a_tone_plus_known_noise():
    rng = np.random.default_rng(0)
    n = 100 * HOP
    t = np.arange(n) / SR
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # RMS 0.3 / sqrt(2): -13.5 dB
    noise = (0.01 * rng.standard_normal(n)).astype(np.float32)  # RMS 0.01: -40 dB
    f0 = np.full(100, 200.0, np.float32)
    middle = slice(10, 90)
    energy = frame_energy(tone + noise, HOP, WIN, 100)
    assert np.median(energy[middle]) == pytest.approx(20 * np.log10(np.sqrt(0.3**2 / 2 + 0.01**2)), abs=0.2)
    breathiness = frame_breathiness(tone + noise, SR, HOP, WIN, f0)
    # The aperiodic part is the noise (-40 dB), 26 dB below the tone; WORLD's separation is not exact.
    assert np.median(breathiness[middle]) == pytest.approx(-40.0, abs=4.0)
    # More noise: breathiness follows it, energy barely moves.
    louder = frame_breathiness(tone + 4 * noise, SR, HOP, WIN, f0)
    assert np.median(louder[middle]) - np.median(breathiness[middle]) == pytest.approx(12.0, abs=3.0)
    # Noise alone (unvoiced): all of it is aperiodic.
    alone = frame_breathiness(noise, SR, HOP, WIN, np.zeros(100, np.float32))
    assert np.median(alone[middle]) == pytest.approx(-40.0, abs=2.0)


@pytest.mark.parametrize("key_shift", [3, -4])
def test_key_shift_moves_the_f0_by_the_semitones_and_keeps_the_frames(key_shift):
    audio = harmonic_tone(220.0, 1.0)
    n_frames = len(audio) // HOP
    f0 = extract_f0(audio, SR, HOP, n_frames, 50, 1100).f0_hz
    shifted = world_transform(audio, SR, HOP, f0, key_shift=key_shift)
    assert len(shifted) == len(audio)
    out = extract_f0(shifted, SR, HOP, n_frames, 50, 1100).f0_hz
    voiced = out[10:-10]
    assert (voiced > 0).all()
    assert np.median(cents(voiced, 220.0)) == pytest.approx(100 * key_shift, abs=10)
    # WORLD keeps the spectral envelope: the harmonics' slope (formant-free tone) stays, the level too.
    assert np.median(frame_energy(shifted, HOP, WIN, n_frames)[10:-10]) == pytest.approx(np.median(frame_energy(audio, HOP, WIN, n_frames)[10:-10]), abs=2.0)
    notes = [{"start": 0.0, "end": 0.4, "pitch": 57, "lyric": "가"}, {"start": 0.4, "end": 0.6, "pitch": 0, "lyric": "SP"}, {"start": 0.6, "end": 1.0, "pitch": 60, "lyric": "나"}]
    moved = transformed_notes(notes, Transform(0, key_shift=key_shift), n_frames, n_frames, SR, HOP)
    assert [n["pitch"] for n in moved] == [57 + key_shift, 0, 60 + key_shift]
    assert [(n["start"], n["end"]) for n in moved] == [(n["start"], n["end"]) for n in notes]


@pytest.mark.parametrize("speed", [1.25, 0.8, 1.1])
def test_time_stretch_keeps_frame_counts_exact_and_notes_aligned(speed):
    audio = np.concatenate([harmonic_tone(220.0, 0.5), np.zeros(20 * HOP, np.float32), harmonic_tone(330.0, 0.5)])
    n_frames = len(audio) // HOP
    f0 = extract_f0(audio, SR, HOP, n_frames, 50, 1100).f0_hz
    stretched = world_transform(audio, SR, HOP, f0, speed=speed)
    out_frames = stretched_frames(n_frames, speed)
    assert out_frames == round(n_frames / speed)
    assert len(stretched) == out_frames * HOP
    notes = [{"start": 0.0, "end": 0.5, "pitch": 57}, {"start": 0.5, "end": 0.7, "pitch": 0}, {"start": 0.7, "end": n_frames * HOP / SR, "pitch": 64}]
    moved = transformed_notes(notes, Transform(0, speed=speed), n_frames, out_frames, SR, HOP)
    counts = note_frame_counts([n["end"] for n in moved], SR, HOP, out_frames)
    assert sum(counts) == out_frames
    for before, after in zip(note_frame_counts([n["end"] for n in notes], SR, HOP, n_frames), counts):
        assert abs(after - before / speed) <= 1.0
    # The sound follows the notes: the second tone (330 Hz) is sung inside the moved third note and the pitch is unchanged.
    out = extract_f0(stretched, SR, HOP, out_frames, 50, 1100).f0_hz
    third = out[sum(counts[:2]) + 5 : -5]
    assert np.median(cents(third[third > 0], 330.0)) == pytest.approx(0, abs=10)
    silent = out[counts[0] + 5 : counts[0] + counts[1] - 5]
    assert (silent == 0).all()


def test_augmentation_plan_is_deterministic_per_seed_and_within_range():
    settings = AugmentationSettings(key_shift_scale=2.0, key_shift_range=(-3, 2), time_stretch_scale=1.0, time_stretch_range=(0.8, 1.25), seed=7)
    plan = plan_augmentation(settings, 10)
    assert plan == plan_augmentation(settings, 10)
    assert plan != plan_augmentation(AugmentationSettings(key_shift_scale=2.0, key_shift_range=(-3, 2), time_stretch_scale=1.0, seed=8), 10)
    keys, speeds = [t for t in plan if t.key_shift], [t for t in plan if t.speed != 1.0]
    assert len(keys) == 20 and len(speeds) == 10
    assert all(-3 <= t.key_shift <= 2 and t.key_shift != 0 for t in keys)
    assert all(0.8 <= t.speed <= 1.25 for t in speeds)
    assert all(0 <= t.source < 10 for t in plan)
    assert plan_augmentation(AugmentationSettings(), 10) == []
    with pytest.raises(ValueError):
        AugmentationSettings(key_shift_scale=1.0, key_shift_range=(0, 0))
    with pytest.raises(UserInputError, match="outside MIDI 1..127"):
        transformed_notes([{"start": 0.0, "end": 1.0, "pitch": 125}], Transform(0, key_shift=5), 100, 100, SR, HOP)
