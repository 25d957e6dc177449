"""The score reader: MIDI (+ lyrics file) to notes, on generated MIDI files and the 80 real early CSD scores."""
from __future__ import annotations

from pathlib import Path

import mido
import mido.midifiles.meta as mido_meta
import pytest

from config.errors import UserInputError
from preprocessor.scores.midi_reader import (
    Score,
    list_csd_early_scores,
    pitch_range_warnings,
    read_csd_early_score,
    read_lyrics_lines,
    read_score,
)
from preprocessor.score import Note
from tests.inference.midi_factory import N, Meta, make_track, melody, write_midi, write_melody

Q = 480  # ticks per quarter note; at the default 120 bpm a quarter lasts 0.5 s


def assert_contiguous(score: Score) -> None:
    assert score.notes[0].start == 0.0
    for a, b in zip(score.notes, score.notes[1:]):
        assert a.end == b.start
        assert a.start < a.end
    assert score.total_seconds == score.notes[-1].end
    assert len(score.locations) == len(score.notes)


# --- lyrics, encodings ---------------------------------------------------------------------------


def test_utf8_lyrics_with_leading_rest(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "가"), (62, "나"), (64, "다"), (65, "라"), start=Q))
    score = read_score(path)
    assert score.notes == (
        Note(0.0, 0.5, 0, "SP"),
        Note(0.5, 1.0, 60, "가"),
        Note(1.0, 1.5, 62, "나"),
        Note(1.5, 2.0, 64, "다"),
        Note(2.0, 2.5, 65, "라"),
    )
    assert score.locations == ("1:1", "1:2", "1:3", "1:4", "2:1")
    assert score.total_seconds == 2.5
    assert score.melody_track == 1 and score.source == path and score.lyrics_source is None
    assert score.phrase_starts == () and score.warnings == () and score.clipped_overlaps == 0
    assert [n.lyric for n in score.sung_notes] == list("가나다라")


def test_cp949_lyrics_then_utf8_and_mido_globals_untouched(tmp_path):
    charset_before = mido_meta._charset
    cp949 = write_melody(tmp_path / "old.mid", melody((60, "사"), (62, "랑"), (64, "해")), encoding="cp949")
    assert "사".encode("cp949") in cp949.read_bytes()  # really written as CP949, not UTF-8
    assert [n.lyric for n in read_score(cp949).notes] == ["사", "랑", "해"]
    assert mido_meta._charset == charset_before
    utf8 = write_melody(tmp_path / "new.mid", melody((60, "별"), (62, "빛")))
    assert [n.lyric for n in read_score(utf8).notes] == ["별", "빛"]
    assert mido_meta._charset == charset_before
    # mido's own reader still works with its defaults after ours.
    assert mido.MidiFile(utf8).ticks_per_beat == Q


def test_undecodable_lyric_bytes_name_file_track_time_and_bytes(tmp_path):
    charset_before = mido_meta._charset
    path = write_melody(tmp_path / "bad.mid", melody((60, "가"), (62, b"\xff\xfe\x80")), name="Vocal")
    with pytest.raises(UserInputError) as error:
        read_score(path)
    message = str(error.value)
    assert "bad.mid" in message and "track 1 ('Vocal')" in message
    assert "bar:beat 1:2 (0.500 s)" in message and r"b'\xff\xfe\x80'" in message
    assert "\n" not in message
    assert mido_meta._charset == charset_before


def test_lyrics_are_stripped_and_nfc_normalized(tmp_path):
    decomposed = "\u1100\u1161"  # 가 as conjoining jamo (NFD)
    path = write_melody(tmp_path / "a.mid", melody((60, f" {decomposed} "), (62, "나,")))
    assert [n.lyric for n in read_score(path).notes] == ["가", "나"]


def test_melisma_marks_are_kept(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "사"), (62, "-"), (64, "랑"), (62, "+")))
    assert [n.lyric for n in read_score(path).notes] == ["사", "-", "랑", "+"]


def test_multi_syllable_lyric_spreads_over_following_notes(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "사랑"), (62, None), (64, "해"), (65, "요-"), (67, None)))
    score = read_score(path)
    assert [n.lyric for n in score.notes] == ["사", "랑", "해", "요", "-"]
    assert [n.pitch for n in score.notes] == [60, 62, 64, 65, 67]


def test_multi_syllable_lyric_onto_a_note_with_its_own_lyric_is_an_error(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "사랑"), (62, "해")))
    with pytest.raises(UserInputError, match=r"'사랑'.*2 syllables.*note 2 .*own lyric '해'"):
        read_score(path)


def test_multi_syllable_lyric_past_the_last_note_is_an_error(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "가"), (62, "사랑해")))
    with pytest.raises(UserInputError, match=r"3 syllables but only 1 notes remain"):
        read_score(path)


def test_rest_and_breath_lyrics_become_pitch_zero(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "가"), (62, "AP"), (64, "나"), (65, "SP"), (67, "다")))
    score = read_score(path)
    assert [(n.pitch, n.lyric) for n in score.notes] == [(60, "가"), (0, "AP"), (64, "나"), (0, "SP"), (67, "다")]


def test_karaoke_line_marks_give_phrase_starts(tmp_path):
    notes = melody((60, "가"), (62, "나\r"), (64, "다"), (65, "/라"), (67, "마"), gap=Q)
    score = read_score(write_melody(tmp_path / "a.mid", notes))
    assert [n.lyric for n in score.notes] == ["가", "SP", "나", "SP", "다", "SP", "라", "SP", "마"]
    assert score.phrase_starts == (0, 4, 6)


def test_text_events_at_onsets_stand_in_for_missing_lyric_events(tmp_path):
    notes = melody((60, "가"), (62, "나"), (64, "다"), start=Q)
    title = [Meta(0, "text", "@T 노래 제목"), Meta(Q // 2, "text", "comment between notes")]
    path = write_melody(tmp_path / "a.mid", notes, lyric_type="text", metas=title)
    assert [n.lyric for n in read_score(path).sung_notes] == ["가", "나", "다"]


def test_lyric_slightly_off_the_onset_still_matches_but_far_off_is_an_error(tmp_path):
    notes = melody((60, None), (62, None))
    near = [Meta(Q // 32, "lyrics", "가"), Meta(Q - Q // 32, "lyrics", "나")]
    assert [n.lyric for n in read_score(write_melody(tmp_path / "near.mid", notes, metas=near)).notes] == ["가", "나"]
    far = [Meta(0, "lyrics", "가"), Meta(Q + Q // 4, "lyrics", "나")]
    with pytest.raises(UserInputError, match=r"lyric '나' at bar:beat 1:2.25 \(0.625 s\) is not on a note onset"):
        read_score(write_melody(tmp_path / "far.mid", notes, metas=far))


# --- time ----------------------------------------------------------------------------------------


def test_rests_between_notes_become_sp_and_tiny_gaps_are_absorbed(tmp_path):
    # At 240 bpm a tick lasts 1/1920 s: a 1-tick gap (0.52 ms) is absorbed, 96 ticks (50 ms) is a rest.
    notes = [N(0, Q, 60, "가"), N(2 * Q, 3 * Q, 62, "나"), N(3 * Q + 1, 4 * Q, 64, "다"), N(4 * Q + 96, 5 * Q, 65, "라")]
    path = write_melody(tmp_path / "a.mid", notes, tempo=250_000)
    seconds = lambda ticks: ticks / 1920  # noqa: E731
    score = read_score(path)
    assert score.notes == (
        Note(0.0, seconds(Q), 60, "가"),
        Note(seconds(Q), seconds(2 * Q), 0, "SP"),
        Note(seconds(2 * Q), seconds(3 * Q + 1), 62, "나"),
        Note(seconds(3 * Q + 1), seconds(4 * Q), 64, "다"),
        Note(seconds(4 * Q), seconds(4 * Q + 96), 0, "SP"),
        Note(seconds(4 * Q + 96), seconds(5 * Q), 65, "라"),
    )
    longer = read_score(path, min_rest_seconds=0.06)
    assert [n.lyric for n in longer.notes] == ["가", "SP", "나", "다", "라"]
    assert longer.notes[3].end == longer.notes[4].start == seconds(4 * Q + 96)
    assert_contiguous(score)
    assert_contiguous(longer)


def test_tempo_change_gives_correct_seconds(tmp_path):
    # 120 bpm, then 60 bpm from beat 3; the change sits in the melody track of a type-1 file.
    notes = melody((60, "가"), (62, "나"), (64, "다"), (65, "라"))
    path = write_melody(tmp_path / "a.mid", notes, metas=[Meta(2 * Q, "set_tempo", 1_000_000)])
    score = read_score(path)
    assert [(n.start, n.end) for n in score.notes] == [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert score.total_seconds == 3.0


def test_time_signature_sets_bar_beat_locations(tmp_path):
    notes = melody((60, "가"), (62, "나"), (64, "다"), (65, "라"), length=Q)
    path = write_melody(tmp_path / "a.mid", notes, time_signature=(3, 4))
    assert read_score(path).locations == ("1:1", "1:2", "1:3", "2:1")


def test_type0_file(tmp_path):
    path = write_midi(tmp_path / "a.mid", [make_track(melody((60, "가"), (62, "나")))], midi_type=0, tempo=1_000_000)
    score = read_score(path)
    assert score.melody_track == 0
    assert [(n.start, n.end, n.lyric) for n in score.notes] == [(0.0, 1.0, "가"), (1.0, 2.0, "나")]


# --- tracks --------------------------------------------------------------------------------------


def piano_and_drums() -> tuple[mido.MidiTrack, mido.MidiTrack]:
    chords = [N(t, t + 2 * Q, p, channel=1) for t in (0, 2 * Q) for p in (48, 52, 55)]
    drums = [N(t, t + Q // 2, 36, channel=9) for t in range(0, 4 * Q, Q)]
    return make_track(chords, name="Piano"), make_track(drums, name="Drums")


def test_lyrics_track_chosen_among_piano_and_drums(tmp_path):
    piano, drums = piano_and_drums()
    vocal = make_track(melody((67, "반"), (69, "짝"), (71, "반"), (72, "짝")), name="보컬")
    path = write_midi(tmp_path / "band.mid", [piano, vocal, drums])
    score = read_score(path)
    assert score.melody_track == 2
    assert [(n.pitch, n.lyric) for n in score.notes] == [(67, "반"), (69, "짝"), (71, "반"), (72, "짝")]
    assert any("ignored the notes of track 1 ('Piano')" in w for w in score.warnings)
    assert read_score(path, track=2).notes == score.notes
    with pytest.raises(UserInputError, match=r"track 1 \('Piano'\).*48, 52, 55 \(a chord\)"):
        read_score(path, track=1)
    with pytest.raises(UserInputError, match=r"there is no track 7 .*tracks 0\.\.3"):
        read_score(path, track=7)
    with pytest.raises(UserInputError, match=r"track 3 \('Drums'\) has no \(non-drum\) notes"):
        read_score(path, track=3)


def test_lyrics_in_a_track_without_notes_go_with_the_only_melody(tmp_path):
    words = make_track(metas=[Meta(0, "lyrics", "가"), Meta(Q, "lyrics", "나")], name="Words")
    _, drums = piano_and_drums()
    path = write_midi(tmp_path / "a.mid", [words, make_track(melody((60, None), (62, None))), drums])
    score = read_score(path)
    assert score.melody_track == 2 and [n.lyric for n in score.notes] == ["가", "나"]


def test_lyrics_without_notes_and_several_melodic_tracks_asks_for_the_track(tmp_path):
    words = make_track(metas=[Meta(0, "lyrics", "가")], name="Words")
    piano, _ = piano_and_drums()
    path = write_midi(tmp_path / "a.mid", [words, make_track(melody((60, None),)), piano])
    with pytest.raises(UserInputError, match=r"several tracks have notes.*--track N"):
        read_score(path)
    assert [n.lyric for n in read_score(path, track=2).notes] == ["가"]


# --- lyrics file ---------------------------------------------------------------------------------


def test_read_lyrics_lines(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text("머리 어깨 무릎 발\n\n  바알, 무-릎!  \n", encoding="utf-8")
    assert read_lyrics_lines(path) == [list("머리어깨무릎발"), ["바", "알", "무", "-", "릎"]]
    cp949 = tmp_path / "old.txt"
    cp949.write_bytes("가나 다\n라".encode("cp949"))
    assert read_lyrics_lines(cp949) == [["가", "나", "다"], ["라"]]
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + "가".encode())
    assert read_lyrics_lines(bom) == [["가"]]
    undecodable = tmp_path / "bad.txt"
    undecodable.write_bytes("가".encode() + b"\xff\xff")
    with pytest.raises(UserInputError, match=r"bad\.txt: the text is neither UTF-8 nor CP949 throughout \(UTF-8 fails at byte 3 of the file"):
        read_lyrics_lines(undecodable)
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="no lyrics"):
        read_lyrics_lines(blank)
    with pytest.raises(UserInputError, match="lyrics file not found"):
        read_lyrics_lines(tmp_path / "missing.txt")


def test_midi_without_lyrics_plus_lyrics_file(tmp_path):
    notes = melody((60, None), (62, None), (64, None), start=Q) + melody((65, None), (67, None), start=5 * Q)
    path = write_melody(tmp_path / "a.mid", notes)
    lyrics = tmp_path / "a.txt"
    lyrics.write_text("가 나 다\n라마\n", encoding="utf-8")
    score = read_score(path, lyrics_path=lyrics)
    assert [n.lyric for n in score.notes] == ["SP", "가", "나", "다", "SP", "라", "마"]
    assert score.phrase_starts == (1, 5)
    assert score.lyrics_source == lyrics


def test_lyrics_file_overrides_midi_lyrics_with_a_warning(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "가"), (62, "나")))
    lyrics = tmp_path / "a.txt"
    lyrics.write_text("별빛", encoding="utf-8")
    score = read_score(path, lyrics_path=lyrics)
    assert [n.lyric for n in score.notes] == ["별", "빛"]
    assert any("lyric events in the MIDI were ignored" in w for w in score.warnings)


def test_lyrics_file_count_mismatch_names_counts_and_line(tmp_path):
    phrase = lambda start: melody((60, None), (62, None), (64, None), start=start)  # noqa: E731
    path = write_melody(tmp_path / "a.mid", phrase(0) + phrase(4 * Q) + phrase(8 * Q))
    lyrics = tmp_path / "a.txt"
    lyrics.write_text("가나다\n라마바사\n아자차\n", encoding="utf-8")
    with pytest.raises(UserInputError) as error:
        read_score(path, lyrics_path=lyrics)
    message = str(error.value)
    assert "a.txt: 10 syllables but a.mid has 9 notes" in message
    assert "line 2 ('라마바사') is the first whose end does not fall on a rest" in message
    assert "\n" not in message


def test_lyrics_file_shorter_than_the_melody(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, None), (62, None), start=0) + melody((64, None), start=3 * Q))
    lyrics = tmp_path / "a.txt"
    lyrics.write_text("가나\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"2 syllables but a\.mid has 3 notes; every line ends on a rest, but the MIDI goes on for 1 notes"):
        read_score(path, lyrics_path=lyrics)


# --- bad input -----------------------------------------------------------------------------------


def test_not_a_midi_file(tmp_path):
    text = tmp_path / "song.mid"
    text.write_text("this is not MIDI", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"song\.mid: not a readable MIDI file"):
        read_score(text)
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(UserInputError, match="not a readable MIDI file"):
        read_score(empty)
    truncated = tmp_path / "cut.mid"
    truncated.write_bytes(write_melody(tmp_path / "whole.mid", melody((60, "가"))).read_bytes()[:30])
    with pytest.raises(UserInputError, match=r"not a readable MIDI file \(the file ends too early\)"):
        read_score(truncated)
    with pytest.raises(UserInputError, match="MIDI file not found"):
        read_score(tmp_path / "missing.mid")


def test_no_notes(tmp_path):
    path = write_midi(tmp_path / "a.mid", [make_track(metas=[Meta(0, "lyrics", "가")])])
    with pytest.raises(UserInputError, match="has no notes"):
        read_score(path)


def test_drum_only(tmp_path):
    _, drums = piano_and_drums()
    with pytest.raises(UserInputError, match="only drum notes"):
        read_score(write_midi(tmp_path / "a.mid", [drums]))


def test_notes_without_lyrics_and_no_lyrics_file(tmp_path):
    notes = melody(*[(60 + i, None) for i in range(7)], start=Q)
    with pytest.raises(UserInputError) as error:
        read_score(write_melody(tmp_path / "a.mid", notes))
    message = str(error.value)
    assert "has no lyric events 7 of 7 notes lack a lyric" in message
    assert "note 1 at bar:beat 1:2 (0.500 s)" in message and "and 2 more" in message
    assert "--lyrics" in message


def test_some_notes_without_lyrics(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((60, "가"), (62, None), (64, "다")))
    with pytest.raises(UserInputError, match=r"1 of 3 notes lack a lyric: note 2 at bar:beat 1:2 \(0\.500 s\)"):
        read_score(path)


# --- one voice -----------------------------------------------------------------------------------


def test_chord_is_an_error_and_top_keeps_the_highest(tmp_path):
    notes = [N(0, Q, 60, "가"), N(Q, 2 * Q, 64, "나"), N(Q, 2 * Q, 67), N(Q, 3 * Q, 60), N(2 * Q, 3 * Q, 65, "다")]
    path = write_melody(tmp_path / "a.mid", notes)
    with pytest.raises(UserInputError, match=r"start together at bar:beat 1:2 \(0\.500 s\) with pitches 60, 64, 67"):
        read_score(path)
    score = read_score(path, monophonic="top")
    # the lyric "나" sits on the chord's onset, so the top note (67) carries it.
    assert [(n.start, n.end, n.pitch, n.lyric) for n in score.notes] == [(0.0, 0.5, 60, "가"), (0.5, 1.0, 67, "나"), (1.0, 1.5, 65, "다")]
    assert any("dropped 2 lower notes" in w for w in score.warnings)


def test_heavy_overlap_is_an_error_and_top_resolves_it(tmp_path):
    # 62 starts halfway through a sounding 60 and 59 starts under the 62: two voices.
    notes = [N(0, 2 * Q, 60, "가"), N(Q, 3 * Q, 62, "나"), N(2 * Q, 4 * Q, 59, "다"), N(4 * Q, 5 * Q, 64, "라")]
    path = write_melody(tmp_path / "a.mid", notes)
    with pytest.raises(UserInputError, match=r"pitch 62 starts at bar:beat 1:2 \(0\.500 s\) while pitch 60 .*still sounds for 0\.500 s"):
        read_score(path)
    with pytest.raises(UserInputError, match=r"lyric '다' .*dropped by monophonic='top'"):
        read_score(path, monophonic="top")
    notes[2] = N(2 * Q, 4 * Q, 59)
    score = read_score(write_melody(tmp_path / "b.mid", notes), monophonic="top")
    assert [(n.start, n.end, n.pitch, n.lyric) for n in score.notes] == [
        (0.0, 0.5, 60, "가"),
        (0.5, 1.5, 62, "나"),
        (1.5, 2.0, 0, "SP"),
        (2.0, 2.5, 64, "라"),
    ]


def test_legato_overlap_is_clipped(tmp_path):
    # 10 ticks ≈ 10.4 ms of overlap on a 0.5 s note: legato, not a chord.
    notes = [N(0, Q + 10, 60, "가"), N(Q, 2 * Q, 62, "나"), N(2 * Q, 3 * Q, 64, "다")]
    score = read_score(write_melody(tmp_path / "a.mid", notes))
    assert [(n.start, n.end) for n in score.notes] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)]
    assert score.clipped_overlaps == 1
    assert any("clipped 1 legato overlaps (up to 10.4 ms) at bar:beat 1:2" in w for w in score.warnings)
    # 20.8 ms of overlap is more than 30 % of a 41.7 ms note: then it is an overlap error.
    short = [N(0, 40, 60, "가"), N(20, Q, 62, "나")]
    with pytest.raises(UserInputError, match="still sounds"):
        read_score(write_melody(tmp_path / "b.mid", short))
    # A 60 ms overlap exceeds the 50 ms limit unless the limit is raised.
    long_tail = [N(0, Q + 58, 60, "가"), N(Q, 2 * Q, 62, "나")]
    with pytest.raises(UserInputError, match="still sounds"):
        read_score(write_melody(tmp_path / "c.mid", long_tail))
    assert read_score(tmp_path / "c.mid", legato_max_overlap_seconds=0.1).clipped_overlaps == 1


def test_duplicates_and_restrikes_are_merged_with_warnings(tmp_path):
    notes = [N(0, Q, 60, "가"), N(0, Q, 60), N(Q, 3 * Q, 62, "나"), N(2 * Q, 3 * Q, 62, "다")]
    score = read_score(write_melody(tmp_path / "a.mid", notes))
    assert [(n.start, n.end, n.pitch, n.lyric) for n in score.notes] == [(0.0, 0.5, 60, "가"), (0.5, 1.0, 62, "나"), (1.0, 1.5, 62, "다")]
    assert any("merged 1 duplicated" in w for w in score.warnings)
    assert any("same pitch" in w and "re-strike" in w for w in score.warnings)


def test_bad_arguments():
    with pytest.raises(ValueError, match="monophonic"):
        read_score(Path("x.mid"), monophonic="lowest")
    with pytest.raises(ValueError, match="min_rest_seconds"):
        read_score(Path("x.mid"), min_rest_seconds=-1.0)


# --- pitch range ---------------------------------------------------------------------------------


def test_pitch_range_warnings_name_bar_beat_and_time(tmp_path):
    path = write_melody(tmp_path / "a.mid", melody((50, "가"), (60, "나"), (84, "다"), gap=Q))
    score = read_score(path)
    warnings = pitch_range_warnings(score, 55, 79)
    assert len(warnings) == 2
    assert "note 1 ('가', pitch 50 = D3) at bar:beat 1:1 (0.000 s) is below the range 55..79 (G3..G5)" in warnings[0]
    assert "note 5 ('다', pitch 84 = C6) at bar:beat 2:1 (2.000 s) is above" in warnings[1]
    assert pitch_range_warnings(score, 50, 84) == []


# --- the real early CSD scores -------------------------------------------------------------------

# The scores whose MIDI has legato tails (overlaps of 1-19 ms) that the reader clips, with counts.
CSD_EARLY_CLIPPED = {"doremi_kr_0u": 1, "faithful_kr_1d": 4, "faithful_kr_5d": 2, "jingle_kr_0u": 3, "jingle_kr_5d": 5}


def test_every_real_early_csd_score_reads_with_notes_equal_to_syllables(csd_early_dir):
    pairs = list_csd_early_scores(csd_early_dir)
    assert len(pairs) == 80
    clipped, counts = {}, {}
    for midi_path, text_path in pairs:
        score = read_csd_early_score(midi_path)
        lines = read_lyrics_lines(text_path)
        syllables = [s for line in lines for s in line]
        sung = score.sung_notes
        assert [n.lyric for n in sung] == syllables, midi_path.name
        assert all(0 < n.pitch < 128 for n in sung)
        assert len(score.phrase_starts) == len(lines)
        assert [score.notes[i].lyric for i in score.phrase_starts] == [line[0] for line in lines]
        assert_contiguous(score)
        counts[midi_path.stem] = len(sung)
        if score.clipped_overlaps:
            clipped[midi_path.stem] = score.clipped_overlaps
    assert clipped == CSD_EARLY_CLIPPED
    assert counts["headshoulder_kr_0u"] == counts["headshoulder_kr_4d"] == 41
    # The two keys of a song are the same tune: the same number of notes.
    for stem, count in counts.items():
        song = stem.rsplit("_", 1)[0]
        assert all(c == count for s, c in counts.items() if s.rsplit("_", 1)[0] == song), stem


def test_real_headshoulder_score(csd_early_dir):
    score = read_score(csd_early_dir / "mid/headshoulder_kr_0u.mid", lyrics_path=csd_early_dir / "txt/headshoulder_kr_0u.txt")
    # 126 bpm, 480 ticks per beat, first note on beat 3 (tick 960): a leading rest of 2 beats.
    assert (score.notes[0].start, score.notes[0].pitch, score.notes[0].lyric) == (0.0, 0, "SP")
    assert score.notes[0].end == pytest.approx(960 * 476190 / 1e6 / 480)
    assert [n.lyric for n in score.sung_notes[:4]] == ["머", "리", "어", "깨"]
    assert score.sung_notes[0].pitch == 67
    assert 15.0 < score.total_seconds < 17.1  # the recording lasts 17.1 s


def test_several_melodic_tracks_with_a_lyrics_file_need_the_track(tmp_path):
    piano, _ = piano_and_drums()
    path = write_midi(tmp_path / "a.mid", [piano, make_track(melody((60, None), (62, None)), name="Vocal")])
    lyrics = tmp_path / "a.txt"
    lyrics.write_text("가나", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"several tracks have notes \(tracks with notes: track 1 \('Piano'\) with 6 notes"):
        read_score(path, lyrics_path=lyrics)
    assert [n.lyric for n in read_score(path, lyrics_path=lyrics, track=2).notes] == ["가", "나"]


def test_text_fallback_picks_the_track_whose_onsets_carry_the_texts(tmp_path):
    piano, _ = piano_and_drums()
    vocal = make_track(melody((60, "가"), (62, "나"), start=Q // 2), lyric_type="text")
    score = read_score(write_midi(tmp_path / "a.mid", [piano, vocal]))
    assert score.melody_track == 2 and [n.lyric for n in score.sung_notes] == ["가", "나"]
