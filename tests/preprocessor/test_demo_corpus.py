"""The embedded demo corpus: CSD layout, readability by the CSD reader, determinism, coverage, pitch."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from config.errors import UserInputError
from preprocessor.audio import extract_f0, hz_to_midi, load_wav
from preprocessor.csd_reader import list_recordings, read_recording_final
from preprocessor.demo_corpus import (
    ALL_NUCLEI,
    CODA_SOUNDS,
    DEMO_SONGS,
    DEMO_TEST_SONGS,
    DEMO_VALID_SONGS,
    GENERATOR_VERSION,
    MARKER_NAME,
    SOUNDING_ONSETS,
    Syllable,
    generate_demo_corpus,
    is_complete,
    pronounce_word,
    song_score,
    split_syllable,
)

ONSET_OF_ROMAN = {"g": "ㄱ", "kk": "ㄲ", "n": "ㄴ", "d": "ㄷ", "tt": "ㄸ", "r": "ㄹ", "m": "ㅁ", "b": "ㅂ", "pp": "ㅃ", "s": "ㅅ",
                  "ss": "ㅆ", "j": "ㅈ", "jj": "ㅉ", "ch": "ㅊ", "k": "ㅋ", "t": "ㅌ", "p": "ㅍ", "h": "ㅎ"}
VOWELS_ROMAN = {"a", "ae", "y_a", "y_ae", "eo", "e", "y_eo", "y_e", "o", "w_a", "w_ae", "oe", "y_o", "u", "w_eo", "w_e", "w_i",
                "y_u", "eu", "ui", "i"}
CODAS_ROMAN = {"k", "n", "t", "l", "m", "p", "ng"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("raw") / "demo"
    return out, generate_demo_corpus(out)


def parse_roman(token: str) -> tuple[str, str, str]:
    """``ch_a_m`` -> (onset, vowel, coda) romanized, '' where absent."""
    parts = token.split("_")
    onset = parts.pop(0) if parts[0] in ONSET_OF_ROMAN else ""
    coda = parts.pop() if len(parts) > 1 and parts[-1] in CODAS_ROMAN else ""
    vowel = "_".join(parts)
    assert vowel in VOWELS_ROMAN, token
    return onset, vowel, coda


def test_layout_and_scores(corpus):
    out, summary = corpus
    korean = out / "korean"
    ids = [s.recording_id for s in DEMO_SONGS]
    for folder, ext in (("wav", "wav"), ("csv", "csv"), ("lyric", "txt"), ("txt", "txt"), ("mid", "mid")):
        assert sorted(p.stem for p in (korean / folder).glob(f"*.{ext}")) == ids
    assert list_recordings(out) == ("final", ids)
    total_notes = 0
    for rid in ids:
        with open(korean / "csv" / f"{rid}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["start", "end", "pitch", "syllable"]
        notes = [(float(a), float(b), int(p), s) for a, b, p, s in rows[1:]]
        lyric_lines = (korean / "lyric" / f"{rid}.txt").read_text(encoding="utf-8").splitlines()
        roman_lines = (korean / "txt" / f"{rid}.txt").read_text(encoding="utf-8").splitlines()
        syllables = [c for line in lyric_lines for c in line if not c.isspace()]
        assert [n[3] for n in notes] == syllables  # one note per written syllable, in order
        assert [len(line.split()) for line in roman_lines] == [len(line.replace(" ", "")) for line in lyric_lines]
        for start, end, pitch, _ in notes:
            assert 0.2 - 1e-6 <= end - start <= 1.2 + 1e-6 and 57 <= pitch <= 74
        for first, second in zip(notes, notes[1:]):
            assert first[0] < second[0] and first[1] <= second[0] + 1e-9  # sorted, no overlap
        info = sf.info(korean / "wav" / f"{rid}.wav")
        assert info.samplerate == 44100 and info.channels == 1 and info.subtype == "PCM_16"
        assert info.frames / info.samplerate >= notes[-1][1]
        midi_notes = pretty_midi.PrettyMIDI(str(korean / "mid" / f"{rid}.mid")).instruments[0].notes
        assert [n.pitch for n in midi_notes] == [n[2] for n in notes]
        np.testing.assert_allclose([n.start for n in midi_notes], [n[0] for n in notes], atol=0.01)
        # The project's own CSD reader accepts it: notes match syllables, rests fill the phrase gaps.
        recording = read_recording_final(out, rid)
        assert sum(not n.is_rest for n in recording.notes) == len(notes)
        assert sum(n.is_rest and n.duration > 0.3 for n in recording.notes) == len(lyric_lines) - 1
        total_notes += len(notes)
    assert summary.notes == total_notes and summary.songs == len(ids)
    assert summary.phrases == sum(len(s.phrases) for s in DEMO_SONGS)
    assert 60 <= summary.seconds <= 180
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["generator_version"] == GENERATOR_VERSION
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no build folder left behind


def test_split_songs_exist_and_differ():
    songs = {s.recording_id[:5] for s in DEMO_SONGS}
    assert set(DEMO_VALID_SONGS) <= songs and set(DEMO_TEST_SONGS) <= songs
    assert not set(DEMO_VALID_SONGS) & set(DEMO_TEST_SONGS)
    assert len(songs - set(DEMO_VALID_SONGS) - set(DEMO_TEST_SONGS)) >= 5


def test_phoneme_coverage_from_the_written_txt(corpus):
    """Coverage counted from the romanized files on disk, not from the generator's own summary."""
    out, summary = corpus
    onsets, vowels, codas = set(), set(), set()
    for path in (out / "korean" / "txt").glob("*.txt"):
        for token in path.read_text(encoding="utf-8").split():
            onset, vowel, coda = parse_roman(token)
            onsets.add(onset)
            vowels.add(vowel)
            codas.add(coda)
    onsets.discard("")
    codas.discard("")
    assert len(onsets) >= 15, sorted(set(ONSET_OF_ROMAN) - onsets)
    assert len(vowels) >= 14, sorted(VOWELS_ROMAN - vowels)
    assert codas == CODAS_ROMAN
    assert len(summary.onsets) == len(onsets) and len(summary.nuclei) == len(vowels) and len(summary.codas) == 7
    assert set(summary.onsets) <= set(SOUNDING_ONSETS) and set(summary.nuclei) <= set(ALL_NUCLEI)
    assert set(summary.codas) == set(CODA_SOUNDS)


def test_pronunciation_rules_and_csd_romanization():
    def sung(word: str) -> str:
        return " ".join(s.roman for s in pronounce_word([split_syllable(c) for c in word]))

    # The CSD final release writes kr024 (머리 어깨 무릎 발 ...) exactly like this.
    assert " ".join(sung(w) for w in "머리 어깨 무릎 발".split()) == "m_eo r_i eo kk_ae m_u r_eu_p b_a_l"
    assert sung("바알") == "b_a a_l"  # melisma: no liaison into the continuation
    assert sung("웃어요") == "u s_eo y_o"  # liaison
    assert sung("좋은") == "j_o eu_n"  # ㅎ falls silent before a vowel
    assert sung("꽃밭에") == "kk_o_t pp_a t_e"  # neutralization, tensification, liaison
    assert sung("떴네") == "tt_eo_n n_e"  # nasalization
    assert sung("신라") == "s_i_l r_a"  # lateralization
    assert sung("밥하고") == "b_a p_a g_o"  # aspiration
    assert split_syllable("의") == Syllable("", "ㅢ", "")
    with pytest.raises(ValueError, match="double coda"):
        split_syllable("닭")


def test_melisma_notes_are_marked():
    continuations = [(s.recording_id, n.written) for s in DEMO_SONGS for n in song_score(s).notes if n.continuation]
    assert len(continuations) >= 4
    assert ("kr002a", "어") in continuations and ("kr008a", "안") in continuations


def test_same_bytes_every_time_and_for_a_subset(corpus, tmp_path):
    out, _ = corpus
    first = generate_demo_corpus(tmp_path / "a", songs=1)
    generate_demo_corpus(tmp_path / "b", songs=1)
    assert first.songs == 1 and first.valid_songs == () and first.test_songs == ()
    for folder, ext in (("wav", "wav"), ("csv", "csv"), ("lyric", "txt"), ("txt", "txt"), ("mid", "mid")):
        a = (tmp_path / "a" / "korean" / folder / f"kr001a.{ext}").read_bytes()
        assert a == (tmp_path / "b" / "korean" / folder / f"kr001a.{ext}").read_bytes()
        # each song has its own random stream: a subset renders the full corpus's bytes
        assert a == (out / "korean" / folder / f"kr001a.{ext}").read_bytes()
    other_seed = generate_demo_corpus(tmp_path / "c", songs=1, seed=99)
    assert other_seed == first
    assert (tmp_path / "c" / "korean" / "wav" / "kr001a.wav").read_bytes() != (tmp_path / "a" / "korean" / "wav" / "kr001a.wav").read_bytes()


def test_complete_corpus_is_skipped_and_stale_one_rebuilt(tmp_path):
    out = tmp_path / "demo"
    generate_demo_corpus(out, songs=1)
    wav = out / "korean" / "wav" / "kr001a.wav"
    stamp = wav.stat().st_mtime_ns
    assert is_complete(out, songs=1) and not is_complete(out, songs=2) and not is_complete(out, seed=7, songs=1)
    generate_demo_corpus(out, songs=1)
    assert wav.stat().st_mtime_ns == stamp  # nothing rewritten
    marker = out / MARKER_NAME
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "generator_version": 0}))
    generate_demo_corpus(out, songs=1)
    assert is_complete(out, songs=1) and json.loads(marker.read_text())["generator_version"] == GENERATOR_VERSION
    wav.unlink()  # a missing file makes it incomplete too
    assert not is_complete(out, songs=1)
    generate_demo_corpus(out, songs=1)
    assert wav.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo_corpus(tmp_path):
    out = tmp_path / "CSD"
    (out / "korean").mkdir(parents=True)
    (out / "korean" / "mine.txt").write_text("user data")
    with pytest.raises(UserInputError, match="not a demo corpus"):
        generate_demo_corpus(out, songs=1)
    assert (out / "korean" / "mine.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="songs"):
        generate_demo_corpus(tmp_path / "x", songs=0)


def test_sung_pitch_matches_the_score(corpus):
    """Praat's pitch over the middle half of each sung note is the note's MIDI pitch within 50 cents."""
    out, _ = corpus
    sample_rate, hop = 24000, 300
    errors = []
    for song in DEMO_SONGS:
        wav = load_wav(out / "korean" / "wav" / f"{song.recording_id}.wav", sample_rate)
        track = extract_f0(wav, sample_rate, hop, len(wav) // hop, 50.0, 1100.0, "parselmouth")
        for note in song_score(song).notes:
            a = int((note.start + 0.25 * (note.end - note.start)) * sample_rate / hop)
            b = int((note.start + 0.75 * (note.end - note.start)) * sample_rate / hop)
            voiced = track.uv[a:b] == 0
            if voiced.sum() < max(1, (b - a) // 2):
                errors.append(1200.0)
                continue
            errors.append(100.0 * abs(hz_to_midi(float(np.median(track.f0_hz[a:b][voiced]))) - note.pitch))
        # the rests between phrases are silent
        notes = song_score(song).notes
        for before, after in zip(notes, notes[1:]):
            if after.phrase != before.phrase:
                gap = track.uv[int(before.end * sample_rate / hop) + 3 : int(after.start * sample_rate / hop) - 3]
                assert gap.all()
    errors = np.asarray(errors)
    assert (errors < 50).mean() >= 0.95, np.sort(errors)[-10:]
    assert np.median(errors) < 10


def _voiced_centroid(wav: np.ndarray, sample_rate: int = 16000, hop: int = 160) -> tuple[float, float]:
    """(median F0, mean spectral centroid over voiced frames) of a 16 kHz recording."""
    track = extract_f0(wav, sample_rate, hop, len(wav) // hop, 50.0, 1100.0, "parselmouth")
    frames = wav[: len(wav) // hop * hop].reshape(-1, hop)
    spectrum = np.abs(np.fft.rfft(np.concatenate([frames[:-1], frames[1:]], axis=1) * np.hanning(2 * hop), axis=1))
    voiced = track.uv[: len(spectrum)] == 0
    freqs = np.fft.rfftfreq(2 * hop, 1 / sample_rate)
    return float(np.median(track.f0_hz[track.uv == 0])), float(((spectrum[voiced] * freqs).sum(1) / spectrum[voiced].sum(1)).mean())


def test_the_second_voice_sings_a_fifth_lower_with_lower_formants(corpus, tmp_path):
    """The multi-speaker demo's `low` voice: the same song 7 semitones lower (score and audio), its own marker,
    and its formants lower: the same voice with the default formants is brighter."""
    from dataclasses import replace

    from preprocessor.demo_corpus import DEMO_SONGS, DEMO_VOICES, render_song

    default, low = corpus[0], tmp_path / "low"
    generate_demo_corpus(low, songs=1, voice="low")
    assert json.loads((low / ".demo_corpus.json").read_text(encoding="utf-8"))["voice"]["formant_scale"] == DEMO_VOICES["low"].formant_scale
    assert "voice" not in json.loads((default / ".demo_corpus.json").read_text(encoding="utf-8"))
    pitches = {name: [int(line.split(",")[2]) for line in (root / "korean/csv/kr001a.csv").read_text(encoding="utf-8").splitlines()[1:]]
               for name, root in (("default", default), ("low", low))}
    assert [p + DEMO_VOICES["low"].transpose for p in pitches["default"]] == pitches["low"]
    f0 = {name: _voiced_centroid(load_wav(root / "korean/wav/kr001a.wav", 16000))[0] for name, root in (("default", default), ("low", low))}
    assert abs(1200 * np.log2(f0["low"] / f0["default"]) + 700) < 50  # a fifth lower
    from scipy.signal import resample_poly

    score = song_score(DEMO_SONGS[0], DEMO_VOICES["low"].transpose)
    unscaled = render_song(score, 44100, 1234, replace(DEMO_VOICES["low"], formant_scale=1.0))
    lowered = _voiced_centroid(load_wav(low / "korean/wav/kr001a.wav", 16000))[1]
    assert lowered < 0.97 * _voiced_centroid(resample_poly(unscaled, 160, 441).astype(np.float32))[1]
