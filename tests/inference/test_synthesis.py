"""Phrase-by-phrase synthesis (inference/synthesis.py) with a tiny generator, in process.

The score encoder and the frame-level networks attend over a whole phrase, so rendering phrase by
phrase is NOT the same as rendering the song in one call, even far from the cuts. What must hold,
and is checked here, is that every phrase is exactly `generator.infer` on that phrase alone (its
notes, the halves of the rests it was cut in, a cross-fade tail of rest) and that the song is these
renders placed on one song-level frame grid with linear cross-fades.
"""
from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from config.errors import UserInputError
from inference.render import render_score
from inference.api import Singer
from preprocessor.scores.midi_reader import read_score
from inference.synthesis import SingingSynthesizer, cut_phrases, cut_pieces, slice_phone_inputs
from modules.score_inputs import ScoreInputs
from preprocessor.score import REST, Note
from preprocessor.text.frame_rule import assign_phoneme_frames, note_frame_counts
from preprocessor.text.korean import NotePhonemes
from preprocessor.text.phone_set import phone_to_id
from tests.inference.conftest import SANCHAEK, TinyExperiment

SAMPLE_RATE, HOP = 16000, 160  # the demo config's audio (the tiny model's)
FRAMES_PER_SECOND = SAMPLE_RATE / HOP
SYLLABLES = "가나다라마바사아자차카타파하별빛산책노을강물"


def frames_of(seconds: float) -> int:
    """The frame rule's half-up rounding of a time to frames."""
    return math.floor(seconds * FRAMES_PER_SECOND + 0.5)


def random_score(seed: int, n_notes: int) -> list[Note]:
    """Contiguous notes from 0: syllables (some melismas), short rests and rests long enough to cut."""
    rng = random.Random(seed)
    notes: list[Note] = []
    time = 0.0
    for index in range(n_notes):
        previous_sung = bool(notes) and not notes[-1].is_rest
        kind = rng.random()
        if index > 0 and kind < 0.25:
            duration, pitch, lyric = rng.choice([rng.uniform(0.01, 0.25), rng.uniform(0.3, 1.5)]), 0, REST
        elif previous_sung and kind < 0.35:
            duration, pitch, lyric = rng.uniform(0.05, 0.6), rng.randint(55, 75), "-"
        else:
            duration, pitch, lyric = rng.uniform(0.004, 0.8), rng.randint(55, 75), rng.choice(SYLLABLES)
        notes.append(Note(time, time + duration, pitch, lyric))
        time += duration
    return notes


@pytest.fixture(scope="module")
def synthesizer(tiny_experiment: TinyExperiment, frontend) -> SingingSynthesizer:
    return SingingSynthesizer(tiny_experiment.generator, SAMPLE_RATE, HOP, frontend=frontend)


# --- cutting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_cut_phrases_tile_the_song_and_cut_only_long_inner_rests(seed):
    notes = random_score(seed, n_notes=random.Random(seed).randint(1, 40))
    total = frames_of(notes[-1].end)
    note_frames = note_frame_counts([n.end for n in notes], SAMPLE_RATE, HOP, total)
    min_rest = 30
    phrases = cut_phrases(notes, note_frames, min_rest)
    bounds = np.concatenate([[0], np.cumsum(note_frames)])

    # Tiling: from frame 0 to the end, each phrase starts where the previous one ends, none empty.
    assert phrases[0].first_frame == 0 and phrases[-1].last_frame == total
    assert phrases[0].first_note == 0 and phrases[-1].last_note == len(notes)
    for before, after in zip(phrases, phrases[1:]):
        assert before.last_frame == after.first_frame
        # The two phrases share exactly the rest the song was cut in.
        assert after.first_note == before.last_note - 1
    for phrase in phrases:
        assert phrase.first_frame < phrase.last_frame or total == 0
        # The phrase's notes are exactly those its frame range touches.
        assert bounds[phrase.first_note] <= phrase.first_frame < bounds[phrase.first_note + 1] or note_frames[phrase.first_note] == 0
        assert bounds[phrase.last_note - 1] <= phrase.last_frame <= bounds[phrase.last_note]
    # Cuts: in the middle of every rest of at least `min_rest` frames that is neither first nor last, and nowhere else.
    expected_cuts = [
        int(bounds[i] + note_frames[i] // 2)
        for i, note in enumerate(notes)
        if note.lyric == REST and note_frames[i] >= min_rest and 0 < i < len(notes) - 1
    ]
    assert [p.last_frame for p in phrases[:-1]] == expected_cuts


# --- lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_output_lasts_the_score_on_the_frame_grid(synthesizer, seed):
    notes = random_score(100 + seed, n_notes=12)
    result = synthesizer.synthesize(notes, seed=seed)
    frames = frames_of(notes[-1].end)
    assert len(result.wav) == frames * HOP
    assert abs(len(result.wav) - notes[-1].end * SAMPLE_RATE) <= HOP / 2
    assert len(result.f0_hz) == frames and sum(result.note_frames) == frames
    assert result.note_frames == note_frame_counts([n.end for n in notes], SAMPLE_RATE, HOP, frames)
    assert result.phrases == len(cut_phrases(notes, result.note_frames, synthesizer.min_rest_frames))
    assert result.wav.dtype == np.float32 and np.isfinite(result.wav).all()
    assert set(result.timings) == {"frontend", "acoustic", "decoder"} and min(result.timings.values()) >= 0


def test_an_end_between_two_frames_rounds_up_as_the_frame_rule(synthesizer):
    # 1.125 s = 112.5 frames exactly: the frame rule (half-up) gives 113; Python's round() would give 112.
    notes = [Note(0.0, 0.5, 60, "가"), Note(0.5, 1.125, 62, "나")]
    result = synthesizer.synthesize(notes)
    assert len(result.wav) == 113 * HOP and result.note_frames == [50, 63]


# --- phrase by phrase ---------------------------------------------------------------------------


def _phrase_alone(synthesizer: SingingSynthesizer, notes, note_frames, phrase, tail: int) -> tuple[np.ndarray, np.ndarray]:
    """`generator.infer` on one phrase, built here from the window [first_frame, last_frame + tail) of the song grid."""
    bounds = np.concatenate([[0], np.cumsum(note_frames)])
    window_end = phrase.last_frame + tail
    indices = range(phrase.first_note, phrase.last_note)
    frames = [int(min(bounds[i + 1], window_end) - max(bounds[i], phrase.first_frame)) for i in indices]
    if tail:  # the tail is rest: it must fit inside the rest the song was cut in
        assert notes[phrase.last_note - 1].lyric == REST and window_end <= bounds[phrase.last_note]
    sub_notes = [notes[i] for i in indices]
    phonemized = synthesizer.frontend.phonemize(sub_notes)
    # The rest context on both sides, written out here independently of `with_rest_context`.
    context = synthesizer.context_frames
    rest = NotePhonemes("SP", ("SP",), False)
    if sub_notes[0].lyric == REST:
        frames[0] += context
    else:
        sub_notes, phonemized, frames = [Note(0, 0, 0, REST)] + sub_notes, [rest] + phonemized, [context] + frames
    if sub_notes[-1].lyric == REST:
        frames[-1] += context
    else:
        sub_notes, phonemized, frames = sub_notes + [Note(0, 0, 0, REST)], phonemized + [rest], frames + [context]
    ids, pitch, duration, slur = [], [], [], []
    for note, phones, n_frames in zip(sub_notes, phonemized, frames):
        for phone in phones.phonemes:
            ids.append(phone_to_id(phone))
            pitch.append(note.pitch)
            duration.append(n_frames)
            slur.append(int(phones.is_slur))
    out = synthesizer.generator.infer(
        phone_ids=torch.tensor([ids]),
        note_pitch=torch.tensor([pitch]),
        note_dur=torch.tensor([duration], dtype=torch.float32),
        slur=torch.tensor([slur]),
        phone_frames=torch.tensor([assign_phoneme_frames(phonemized, frames)]),
        phone_lengths=torch.tensor([len(ids)]),
        speaker_id=torch.tensor([0]),
        noise_scale=0.0,
    )
    assert out.wav.shape[-1] == (window_end - phrase.first_frame + 2 * context) * HOP
    wav, f0 = out.wav[0, 0].numpy(), out.f0_pred[0].numpy()
    return wav[context * HOP : len(wav) - context * HOP], f0[context : len(f0) - context]


def test_each_phrase_is_the_generator_on_that_phrase_alone_cross_faded(tiny_experiment, frontend):
    notes = list(read_score(SANCHAEK).notes)
    crossfade = 4
    synthesizer = SingingSynthesizer(
        tiny_experiment.generator, SAMPLE_RATE, HOP, noise_scale=0.0, crossfade_frames=crossfade, frontend=frontend, max_piece_seconds=60.0
    )  # phrases in one piece each: pieces are tested below
    result = synthesizer.synthesize(notes)
    phrases = cut_phrases(notes, result.note_frames, synthesizer.min_rest_frames)
    assert len(phrases) == result.phrases == 3  # sanchaek.mid has two rests of 0.625 s inside

    expected = np.zeros_like(result.wav)
    fade = crossfade * HOP
    ramp = np.arange(fade, dtype=np.float64) / fade
    for number, phrase in enumerate(phrases):
        tail = crossfade if number < len(phrases) - 1 else 0
        audio, f0 = _phrase_alone(synthesizer, notes, result.note_frames, phrase, tail)
        start, end = phrase.first_frame * HOP, phrase.last_frame * HOP
        # Away from the cross-fades the song IS this phrase's render (same samples, same place).
        own_from = start + (fade if number > 0 else 0)
        np.testing.assert_allclose(result.wav[own_from:end], audio[own_from - start : end - start], rtol=0, atol=1e-6)
        np.testing.assert_allclose(result.f0_hz[phrase.first_frame : phrase.last_frame], f0[: phrase.last_frame - phrase.first_frame], rtol=1e-6)
        if number > 0:
            expected[start : start + fade] = expected[start : start + fade] * (1 - ramp) + audio[:fade] * ramp
            expected[start + fade : start + len(audio)] = audio[fade:]
        else:
            expected[: len(audio)] = audio
    # The cross-fade regions: the previous phrase's rest tail fading out under the next phrase fading in.
    np.testing.assert_allclose(result.wav, expected, rtol=0, atol=1e-6)


# --- long phrases in bounded pieces -------------------------------------------------------------


@pytest.mark.parametrize("total, max_core, overlap", [(1, 10, 3), (10, 10, 3), (11, 10, 3), (997, 40, 12), (60000, 400, 100)])
def test_cut_pieces_tile_the_phrase_with_bounded_windows(total, max_core, overlap):
    pieces = cut_pieces(total, max_core, overlap)
    assert pieces[0].core_start == 0 and pieces[-1].core_end == total
    assert all(a.core_end == b.core_start for a, b in zip(pieces, pieces[1:]))
    assert all(0 < p.core_end - p.core_start <= max_core for p in pieces)
    assert all(p.window_end - p.window_start <= max_core + 2 * overlap for p in pieces)
    assert all(p.window_start == max(0, p.core_start - overlap) and p.window_end == min(total, p.core_end + overlap) for p in pieces)
    assert len(pieces) == math.ceil(total / max_core)


def test_slice_phone_inputs_keeps_notes_and_clips_the_edge_phonemes():
    inputs = ScoreInputs(
        phone_ids=torch.tensor([[5, 6, 7, 8]]),
        note_pitch=torch.tensor([[60, 60, 62, 0]]),
        note_dur=torch.tensor([[13.0, 13.0, 40.0, 7.0]]),
        slur=torch.tensor([[0, 0, 1, 0]]),
        phone_frames=torch.tensor([[3, 10, 40, 7]]),  # frames 0-3, 3-13, 13-53, 53-60
        phone_lengths=torch.tensor([4]),
    )
    piece = slice_phone_inputs(inputs, 8, 20)
    assert piece.phone_ids.tolist() == [[6, 7]] and piece.phone_frames.tolist() == [[5, 7]]
    assert piece.note_dur.tolist() == [[13.0, 40.0]] and piece.slur.tolist() == [[0, 1]] and piece.phone_lengths.tolist() == [2]
    inner = slice_phone_inputs(inputs, 20, 30)  # wholly inside the long note: that note alone, no new onset
    assert inner.phone_ids.tolist() == [[7]] and inner.phone_frames.tolist() == [[10]] and inner.note_pitch.tolist() == [[62]]
    whole = slice_phone_inputs(inputs, 0, 60)
    assert all(torch.equal(a, b) for a, b in zip(whole, inputs))


def test_a_long_note_renders_in_pieces_each_the_generator_on_its_window(tiny_experiment, frontend):
    """A 12 s note with 1.5 s pieces: the song is the pieces' renders, cross-faded, with no dip at the joins."""
    synthesizer = SingingSynthesizer(
        tiny_experiment.generator, SAMPLE_RATE, HOP, noise_scale=0.0, frontend=frontend, max_piece_seconds=1.5, piece_overlap_seconds=0.4
    )
    notes = [Note(0.0, 0.5, 0, REST), Note(0.5, 12.5, 64, "아"), Note(12.5, 13.0, 0, REST)]
    result = synthesizer.synthesize(notes)
    total = frames_of(13.0)
    assert len(result.wav) == total * HOP and len(result.f0_hz) == total and result.phrases == 1
    assert np.isfinite(result.wav).all()
    # Rebuild what the synthesizer renders: the phrase with its rest context, cut in pieces.
    context = synthesizer.context_frames
    phonemized = frontend.phonemize(notes)
    frames = list(result.note_frames)
    frames[0] += context
    frames[-1] += context
    from preprocessor.text.frame_rule import phoneme_score

    score = phoneme_score(notes, phonemized, frames)
    inputs = synthesizer._phrase_tensors(score)
    assert inputs.phone_frames.tolist() == [score.phone_frames]
    phrase_frames = total + 2 * context
    pieces = cut_pieces(phrase_frames, synthesizer.max_piece_frames, synthesizer.piece_overlap_frames)
    assert len(pieces) == math.ceil(phrase_frames / 150) and all(p.window_end - p.window_start <= 150 + 80 for p in pieces)
    half = synthesizer.piece_overlap_frames // 2
    for piece in pieces:
        out = synthesizer.generator.infer(**slice_phone_inputs(inputs, piece.window_start, piece.window_end)._asdict(), speaker_id=torch.tensor([0]), noise_scale=0.0)
        wav = out.wav[0, 0].numpy()
        # Between the cross-fades, the song is this piece's render of its window.
        own_start, own_end = max(piece.core_start + half, context), min(piece.core_end - half, total + context)
        if own_end <= own_start:
            continue
        song = result.wav[(own_start - context) * HOP : (own_end - context) * HOP]
        mine = wav[(own_start - piece.window_start) * HOP : (own_end - piece.window_start) * HOP]
        np.testing.assert_allclose(song, mine, rtol=0, atol=1e-5)
    # No dip or click at a join: the level around each cut stays within a factor of the note's level.
    note = result.wav[frames_of(1.0) * HOP : frames_of(12.0) * HOP]
    level = np.sqrt(np.mean(note**2))
    for piece in pieces[1:]:
        cut = (piece.core_start - context) * HOP
        if frames_of(1.0) * HOP < cut < frames_of(12.0) * HOP:
            around = result.wav[cut - half * HOP : cut + half * HOP]
            assert 0.5 * level < np.sqrt(np.mean(around**2)) < 2.0 * level


def test_a_long_leading_rest_is_cut_in_pieces_too(synthesizer):
    notes = [Note(0.0, 9.0, 0, REST), Note(9.0, 9.5, 60, "가")]
    result = synthesizer.synthesize(notes)
    assert len(result.wav) == frames_of(9.5) * HOP and np.isfinite(result.wav).all()
    assert synthesizer.max_piece_frames < frames_of(9.5)  # it did need pieces


def test_bad_note_times_given_to_synthesis_are_one_line(synthesizer):
    with pytest.raises(UserInputError, match=r"^s\.mid: note 1: starts at -1\.000 s"):
        synthesizer.synthesize([Note(-1.0, 0.5, 60, "가")], source="s.mid")
    with pytest.raises(UserInputError, match=r"^s\.mid: note 2: end time inf is not a finite number"):
        synthesizer.synthesize([Note(0.0, 0.5, 60, "가"), Note(0.5, math.inf, 62, "나")], source="s.mid")


# --- pitch, speaker, seed -----------------------------------------------------------------------


def _f0_follows_the_notes(generator):
    """A copy whose F0 predictor outputs the score's pitch exactly: residual 0, every frame voiced."""
    generator = copy.deepcopy(generator)
    with torch.no_grad():
        generator.f0_predictor.projection.weight.zero_()
        generator.f0_predictor.projection.bias.copy_(torch.tensor([0.0, -10.0]))
    return generator


def test_key_shift_transposes_the_f0_on_every_frame_of_every_phrase(tiny_experiment, frontend):
    generator = _f0_follows_the_notes(tiny_experiment.generator)
    synthesizer = SingingSynthesizer(generator, SAMPLE_RATE, HOP, frontend=frontend)
    notes = list(read_score(SANCHAEK).notes)
    rest_pitch = generator.config.rest_pitch
    for shift in (0, 5, -12):
        result = synthesizer.synthesize(notes, key_shift=shift)
        assert [n.pitch for n in result.notes] == [0 if n.is_rest else n.pitch + shift for n in notes]
        pitch_per_frame = np.repeat([rest_pitch if n.is_rest else n.pitch + shift for n in notes], result.note_frames)
        expected_hz = 440.0 * 2.0 ** ((pitch_per_frame - 69.0) / 12.0)
        np.testing.assert_allclose(result.f0_hz, expected_hz, rtol=1e-4)
    unshifted = synthesizer.synthesize(notes, seed=3)
    shifted = synthesizer.synthesize(notes, seed=3, key_shift=2)
    assert len(shifted.wav) == len(unshifted.wav) and not np.allclose(shifted.wav, unshifted.wav)


def test_key_shift_past_the_midi_range_is_a_user_error(synthesizer):
    notes = [Note(0.0, 0.5, 120, "가"), Note(0.5, 1.0, 0, REST), Note(1.0, 1.5, 64, "나")]
    with pytest.raises(UserInputError, match=r"song\.mid: note 0 at 0\.000 s has pitch 120 \+10 = 130"):
        synthesizer.synthesize(notes, source="song.mid", key_shift=10)
    with pytest.raises(UserInputError, match=r"note 2 at 1\.000 s has pitch 64 -64 = 0"):
        synthesizer.synthesize(notes, source="song.mid", key_shift=-64)


def test_a_speaker_the_model_lacks_is_a_user_error(synthesizer):
    with pytest.raises(UserInputError, match=r"--speaker 1: this model has 1 speaker"):
        synthesizer.synthesize([Note(0.0, 0.5, 60, "가")], speaker_id=1)


def test_the_seed_fixes_the_prior_sample(synthesizer):
    notes = random_score(7, n_notes=6)
    first, again, other = (synthesizer.synthesize(notes, seed=s).wav for s in (11, 11, 12))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


# --- render_score: nothing half-written ---------------------------------------------------------


def test_a_failed_write_leaves_no_wav_and_no_temporary(tiny_experiment, synthesizer, tmp_path, monkeypatch):
    import soundfile

    def broken_write(file, *args, **kwargs):
        Path(file).write_bytes(b"RIFF partial")
        raise OSError("disk full")

    singer = Singer.load(tiny_experiment.exp_dir, device="cpu")
    monkeypatch.setattr(soundfile, "write", broken_write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        render_score(singer, SANCHAEK, out / "song.wav")
    assert list(out.iterdir()) == []
