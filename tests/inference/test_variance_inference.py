"""Expressive controls at inference: `energy_db` / `breathiness_db` offsets and curves from the render file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from config.errors import UserInputError
from inference.api import Singer
from inference.render import render_score
from modules.discriminators import VISingerDiscriminator
from tests.inference.conftest import F0_STATS, tiny_config, tiny_generator, write_runner_checkpoint
from tests.score_files import write_midi_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A 5-second song (two phrases), quicker to render than the 15-second example."""
    return write_midi_song(tmp_path_factory.mktemp("variance_song") / "song.mid")


@pytest.fixture(scope="module")
def controlled_singer(tmp_path_factory, frontend) -> Singer:
    """A tiny VISinger with `model.variance_controls: true`, saved as a runner checkpoint and loaded as users do."""
    base = tmp_path_factory.mktemp("variance_experiment")
    binary_dir = base / "binary"
    binary_dir.mkdir()
    (binary_dir / "f0_stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    config = tiny_config(binary_dir, "model.variance_controls=true")
    generator = tiny_generator(config, seed=1)
    assert generator.variance_controls
    discriminator = VISingerDiscriminator(max_channels=8, n_scales=1)
    path = write_runner_checkpoint(base / "ckpt" / "model_ckpt_steps_1.pt", config, {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()})
    return Singer.load(path, device="cpu", frontend=frontend)


def test_offsets_shift_the_sung_curves_exactly_and_change_the_audio(controlled_singer, song):
    plain = controlled_singer.sing(song)
    zero = controlled_singer.sing(song, energy_db=0.0, breathiness_db=0.0)
    assert np.array_equal(plain.wav, zero.wav)
    louder = controlled_singer.sing(song, energy_db=6.0)
    breathy = controlled_singer.sing(song, breathiness_db=-6.0)
    for before, after in zip(plain.synthesis.phrase_variance_db, louder.synthesis.phrase_variance_db):
        assert before.shape[0] == 2
        np.testing.assert_allclose(after[0] - before[0], 6.0, atol=1e-4)  # energy + 6 dB on every frame
        np.testing.assert_array_equal(after[1], before[1])  # breathiness untouched
    for before, after in zip(plain.synthesis.phrase_variance_db, breathy.synthesis.phrase_variance_db):
        np.testing.assert_allclose(after[1] - before[1], -6.0, atol=1e-4)
    # The prior reads them: the audio changes (how many dB it changes by is learnt; docs/BENCHMARKS.md measures a trained model).
    scale = np.abs(plain.wav).max()
    assert np.abs(louder.wav - plain.wav).max() > 1e-3 * scale and np.abs(breathy.wav - plain.wav).max() > 1e-3 * scale
    assert np.array_equal(plain.synthesis.f0_hz, louder.synthesis.f0_hz)  # the F0 predictor does not read them


def test_curves_are_cut_with_the_pieces_of_a_long_phrase(controlled_singer, song):
    from inference.synthesis import SingingSynthesizer

    whole = controlled_singer.synthesizer()
    pieces = SingingSynthesizer(controlled_singer.model, whole.sample_rate, whole.hop_size, max_piece_seconds=1.0, piece_overlap_seconds=0.4, frontend=whole.frontend)
    from preprocessor.scores.dispatch import read_any_score

    plan = pieces.plan(read_any_score(song).notes)
    assert max(p.frames for p in plan.phrases) > pieces.max_piece_frames  # really cut
    base = pieces.render(plan)
    shifted = pieces.render(plan, variance_offset_db=(0.0, 4.0))
    for before, after in zip(base.phrase_variance_db, shifted.phrase_variance_db):
        assert after.shape == (2, before.shape[1]) and np.isfinite(after).all()
        np.testing.assert_allclose(after[1] - before[1], 4.0, atol=1e-4)


def test_render_file_curves_round_trip_and_an_edited_curve_equals_the_offset(controlled_singer, song, tmp_path):
    dump = tmp_path / "song.json"
    sung = render_score(controlled_singer, song, tmp_path / "song.wav", dump=dump)
    document = json.loads(dump.read_text(encoding="utf-8"))
    phoneme = document["phrases"][0]["phonemes"][1]
    assert len(phoneme["energy_db"]) == len(phoneme["breathiness_db"]) == phoneme["frames"]
    again = controlled_singer.sing(dump)
    assert np.array_equal(again.wav, sung.wav)  # sung as written, bit for bit
    # +6 dB written into every energy curve of the file sings like --energy_db 6 on the score.
    for phrase in document["phrases"]:
        for entry in phrase["phonemes"]:
            entry["energy_db"] = [v + 6.0 for v in entry["energy_db"]]
    edited = tmp_path / "louder.json"
    edited.write_text(json.dumps(document), encoding="utf-8")
    offset = controlled_singer.sing(song, energy_db=6.0)
    np.testing.assert_allclose(controlled_singer.sing(edited).wav, offset.wav, atol=1e-5)
    # null = predicted: a file without curves sings the prediction (plus an offset given when singing it).
    for phrase in document["phrases"]:
        for entry in phrase["phonemes"]:
            entry["energy_db"] = entry["breathiness_db"] = None
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(document), encoding="utf-8")
    np.testing.assert_allclose(controlled_singer.sing(plain, energy_db=6.0).wav, offset.wav, atol=1e-5)
    document["phrases"][0]["phonemes"][0]["energy_db"] = ["loud"]
    plain.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"phrase 0 phoneme 0: energy_db must be a list of finite numbers"):
        controlled_singer.sing(plain)


def test_a_model_without_controls_refuses_offsets_in_one_line(tiny_experiment, frontend, song):
    singer = Singer.load(tiny_experiment.checkpoint, device="cpu", frontend=frontend)
    assert not singer.model.variance_controls
    with pytest.raises(UserInputError, match="this model has no expressive controls; train it with model.variance_controls: true"):
        singer.sing(song, breathiness_db=-3.0)
    assert singer.sing(song, energy_db=0.0).wav.size > 0
