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


@pytest.fixture(scope="module")
def voiced_song(controlled_singer, song, tmp_path_factory):
    """The song's render file with every sung phoneme voiced at its note's pitch (the untrained model predicts
    no voicing, and breathiness is only defined where WORLD sees a voice)."""
    folder = tmp_path_factory.mktemp("voiced_song")
    render_score(controlled_singer, song, folder / "song.wav", dump=folder / "song.json")
    document = json.loads((folder / "song.json").read_text(encoding="utf-8"))
    for phrase in document["phrases"]:
        for entry in phrase["phonemes"]:
            pitch = phrase["notes"][entry["note"]]["pitch"]
            hz = 440.0 * 2.0 ** ((pitch - 69) / 12) if pitch > 0 else 0.0
            entry["f0_hz"], entry["voiced"] = [hz] * entry["frames"], [int(hz > 0)] * entry["frames"]
    path = folder / "voiced.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


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
    # The audio changes: by the matching gain (an unvoiced render, as this untrained model's: energy only), and
    # without matching through the prior alone (by how much is learnt; docs/BENCHMARKS.md measures a trained model).
    scale = np.abs(plain.wav).max()
    assert np.abs(louder.wav - plain.wav).max() > 1e-3 * scale
    unmatched = controlled_singer.sing(song, breathiness_db=-6.0, variance_matching="off")
    assert np.abs(unmatched.wav - controlled_singer.sing(song, variance_matching="off").wav).max() > 1e-3 * scale
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


def _levels(singer, sung):
    """Measured (energy, breathiness) dB per frame of a render, as binarization measures them (with the sung F0)."""
    from inference.variance_matching import measure_levels

    audio = singer.audio
    return measure_levels(sung.wav, sung.synthesis.f0_hz, audio.sample_rate, audio.hop_size, audio.win_size)[:2]


def _sung_frames(sung, energy) -> np.ndarray:
    """Voiced frames of sung notes, not silent, clear of phrase and voicing edges (the gains are smoothed over 5 frames)."""
    f0 = sung.synthesis.f0_hz
    voiced = f0 > 0
    inner = voiced & np.roll(voiced, 3) & np.roll(voiced, -3)
    pitch = np.repeat([note.pitch for note in sung.synthesis.notes], sung.synthesis.note_frames)
    return inner & (pitch > 0) & (energy > energy.max() - 40.0)


@pytest.mark.parametrize("asked", [6.0, -6.0])
def test_an_energy_offset_moves_the_measured_energy_of_the_render_by_its_amount(controlled_singer, voiced_song, asked):
    song = voiced_song
    plain = controlled_singer.sing(song)
    moved = controlled_singer.sing(song, energy_db=asked)
    e0, _ = _levels(controlled_singer, plain)
    e1, _ = _levels(controlled_singer, moved)
    frames = _sung_frames(plain, e0)
    assert frames.sum() > 50
    assert abs(np.median((e1 - e0)[frames]) - asked) < 1.0
    # Without matching only the prior reads the offset: this untrained one barely moves.
    unmatched = controlled_singer.sing(song, energy_db=asked, variance_matching="off")
    assert abs(np.median((_levels(controlled_singer, unmatched)[0] - e0)[frames])) < abs(asked) / 2


def test_a_breathiness_offset_moves_the_breathiness_and_leaves_the_energy(controlled_singer, voiced_song):
    song = voiced_song
    plain = controlled_singer.sing(song)
    breathy = controlled_singer.sing(song, breathiness_db=6.0)
    e0, b0 = _levels(controlled_singer, plain)
    e1, b1 = _levels(controlled_singer, breathy)
    frames = _sung_frames(plain, e0)
    assert abs(np.median((b1 - b0)[frames]) - 6.0) < 1.5
    assert abs(np.median((e1 - e0)[frames])) < 1.0
    assert np.isfinite(breathy.wav).all() and np.abs(breathy.wav).max() <= 1.0


def test_matched_offsets_stream_as_they_render_and_absolute_matching_levels_the_plain_render(controlled_singer, voiced_song):
    song = voiced_song
    from inference.synthesis import STREAM_TOLERANCE

    whole = controlled_singer.sing(song, energy_db=-4.0, breathiness_db=3.0)
    streamed = np.concatenate([c.wav for c in controlled_singer.sing_stream(song, energy_db=-4.0, breathiness_db=3.0, chunk_frames=16)])
    assert len(streamed) == len(whole.wav) and np.abs(streamed - whole.wav).max() <= STREAM_TOLERANCE
    # "absolute": every render (the plain one too) is levelled towards the curves the model predicts.
    plain = controlled_singer.sing(song, variance_matching="off")
    levelled = controlled_singer.sing(song, variance_matching="absolute")
    assert np.isfinite(levelled.wav).all() and not np.array_equal(levelled.wav, plain.wav)
    sung = np.concatenate([v[0, p.trim_start : p.trim_start + p.body_frames] for v, p in zip(levelled.synthesis.phrase_variance_db, levelled.plan.phrases)])
    e_off, _ = _levels(controlled_singer, plain)
    e_abs, _ = _levels(controlled_singer, levelled)
    frames = _sung_frames(plain, e_off)
    assert np.median(np.abs(e_abs - sung)[frames]) < np.median(np.abs(e_off - sung)[frames])
    with pytest.raises(UserInputError, match="--variance_matching 'loud': use one of change, absolute, off"):
        controlled_singer.sing(song, variance_matching="loud")


def test_the_cli_switches_matching_off_and_refuses_an_unknown_mode(controlled_singer, voiced_song, tmp_path):
    from tests.inference.conftest import as_pcm16, read_pcm, run_cli

    wav = tmp_path / "off.wav"
    process = run_cli("--ckpt", controlled_singer.source, "--score", voiced_song, "--out", wav, "--energy_db", 6, "--variance_matching", "off")
    assert process.returncode == 0, process.stderr
    unmatched = controlled_singer.sing(voiced_song, energy_db=6.0, variance_matching="off")
    matched = controlled_singer.sing(voiced_song, energy_db=6.0)
    written = read_pcm(wav)[0]
    assert np.abs(written.astype(np.int32) - as_pcm16(unmatched.wav)).max() <= 2 and not np.array_equal(as_pcm16(matched.wav), as_pcm16(unmatched.wav))
    process = run_cli("--ckpt", controlled_singer.source, "--score", voiced_song, "--out", tmp_path / "x.wav", "--variance_matching", "loud")
    assert process.returncode == 2 and "--variance_matching: invalid choice: 'loud'" in process.stderr
