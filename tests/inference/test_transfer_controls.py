"""The transfer controls on frame tracks: autotune, octave shift, loudness quantile normalisation, note-on mask."""
from __future__ import annotations

import numpy as np
import pytest

from inference.transfer_controls import attenuate, autotune, note_on_mask, quantile_normalize, shift_octaves
from preprocessor.audio import hz_to_midi, midi_to_hz


def test_autotune_snaps_pulls_halfway_and_leaves_unvoiced_frames():
    f0 = np.array([0.0, midi_to_hz(60.3), midi_to_hz(61.8), 0.0, midi_to_hz(64.45)], np.float32)
    snapped = autotune(f0, 1.0)
    assert snapped[0] == 0 and snapped[3] == 0
    assert np.allclose(hz_to_midi(snapped[[1, 2, 4]]), [60, 62, 64], atol=1e-4)
    half = hz_to_midi(autotune(f0, 0.5)[[1, 2, 4]])
    assert np.allclose(half, [60.15, 61.9, 64.225], atol=1e-4)
    assert np.array_equal(autotune(f0, 0.0), f0)


def test_autotune_to_a_score_follows_its_notes_where_it_has_them():
    f0 = np.full(4, midi_to_hz(60.4), np.float32)
    target = np.array([62.0, 0.0, np.nan, 55.0])  # no note at frames 1 and 2: nearest semitone there
    assert np.allclose(hz_to_midi(autotune(f0, 1.0, target)), [62, 60, 60, 55], atol=1e-4)
    with pytest.raises(ValueError):
        autotune(f0, 1.5)


def test_octave_shift_doubles_and_halves():
    f0 = np.array([0.0, 220.0], np.float32)
    assert shift_octaves(f0, 1).tolist() == [0.0, 440.0]
    assert shift_octaves(f0, -1).tolist() == [0.0, 110.0]


def test_quantile_normalisation_maps_the_input_distribution_onto_the_model():
    rng = np.random.default_rng(0)
    loudness = rng.normal(-50, 4, 2000).astype(np.float32)  # a quiet recording
    voiced = np.ones(2000, bool)
    model_quantiles = np.percentile(rng.normal(-20, 8, 5000), np.linspace(0, 100, 101))  # a loud, wide voice
    mapped = quantile_normalize(loudness, voiced, model_quantiles)
    assert mapped.mean() == pytest.approx(-20, abs=0.6) and mapped.std() == pytest.approx(8, abs=0.6)
    assert np.all(np.diff(mapped[np.argsort(loudness)]) >= -1e-4)  # order kept: louder stays louder
    beyond = quantile_normalize(np.array([loudness.max() + 10], np.float32), np.ones(1, bool), model_quantiles)
    assert np.isfinite(beyond).all()


def test_the_note_on_mask_finds_notes_and_attenuates_the_rest():
    loudness = np.full(300, -80.0, np.float32)
    voicing = np.zeros(300)
    loudness[100:200] = -20.0
    voicing[100:200] = 1.0
    mask = note_on_mask(loudness, voicing, threshold=1.0)
    assert mask.on[120:180].all() and not mask.on[:60].any() and not mask.on[250:].any()
    quieter = attenuate(loudness, mask, 1.0, attenuation_db=30.0)
    assert np.array_equal(quieter[mask.on], loudness[mask.on])
    assert (quieter[:60] < loudness[:60] - 25).all()  # far below the threshold: nearly the full 30 dB


def test_autotune_to_a_midi_without_lyrics_follows_its_melody(tmp_path):
    from inference.timbre_transfer import score_targets
    from tests.inference.midi_factory import melody, write_melody

    # 120 bpm: each 480-tick note lasts 0.5 s = 50 frames at 100 frames/s; no lyric events at all.
    path = write_melody(tmp_path / "tune.mid", melody((58, None), (63, None), (61, None)))
    targets = score_targets(path, 160, 100.0)
    assert targets[:50].tolist() == [58.0] * 50 and targets[50:100].tolist() == [63.0] * 50 and (targets[150:] == 0).all()
    f0 = np.full(160, midi_to_hz(60.2), np.float32)
    tuned = hz_to_midi(autotune(f0, 1.0, targets))
    assert np.allclose(tuned[:150], np.repeat([58, 63, 61], 50), atol=1e-4) and np.allclose(tuned[150:], 60, atol=1e-4)
