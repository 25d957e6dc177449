"""The MusicXML, UST, USTX and DS readers: files written by each format's library and by hand."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from config.errors import UserInputError
from preprocessor.scores.dispatch import read_any_score
from tests.score_files import (
    SONG,
    Step,
    ds_segment,
    expected_notes,
    ustx_project,
    write_ds,
    write_midi_song,
    write_musicxml_song,
    write_ust_song,
    write_ustx_song,
)


def as_tuples(score) -> list[tuple[float, float, int, str]]:
    return [(n.start, n.end, n.pitch, n.lyric) for n in score.notes]


def assert_same_notes(got, want, tolerance: float = 0.001) -> None:
    assert [(p, lyric) for _, _, p, lyric in got] == [(p, lyric) for _, _, p, lyric in want]
    for (start, end, _, _), (want_start, want_end, _, _) in zip(got, want):
        assert abs(start - want_start) <= tolerance and abs(end - want_end) <= tolerance, (got, want)


# ---------------------------------------------------------------------------------------------
# One song in every format


@pytest.mark.parametrize(
    "name, writer",
    [
        ("song.mid", write_midi_song),
        ("song.musicxml", write_musicxml_song),
        ("packed.mxl", write_musicxml_song),
        ("song.ust", write_ust_song),
        ("cp949.ust", lambda p: write_ust_song(p, encoding="cp949")),
        ("song.ustx", write_ustx_song),
    ],
)
def test_one_song_gives_the_same_notes_in_every_format(tmp_path, name, writer):
    score = read_any_score(writer(tmp_path / name))
    assert_same_notes(as_tuples(score), expected_notes())
    assert score.total_seconds == pytest.approx(4.8, abs=1e-3)  # the tempo change (100 -> 75 BPM) is applied


def test_unknown_extension_names_the_formats(tmp_path):
    path = tmp_path / "song.sib"
    path.write_bytes(b"\x00")
    with pytest.raises(UserInputError, match=r"song\.sib: unknown score format '\.sib'.*\.musicxml.*\.ust.*\.ds"):
        read_any_score(path)


def test_lyrics_file_only_goes_with_midi(tmp_path):
    lyrics = tmp_path / "l.txt"
    lyrics.write_text("가나", encoding="utf-8")
    with pytest.raises(UserInputError, match="leave --lyrics out"):
        read_any_score(write_ust_song(tmp_path / "s.ust"), lyrics_path=lyrics)


# ---------------------------------------------------------------------------------------------
# UST


def hand_ust(lyrics_and_lengths, tempo="120", extra_setting="", note_tempo: dict[int, str] | None = None) -> str:
    lines = ["[#VERSION]", "UST Version1.2", "[#SETTING]", f"Tempo={tempo}", "Tracks=1", extra_setting]
    for index, (lyric, length, pitch) in enumerate(lyrics_and_lengths):
        lines += [f"[#{index:04d}]", f"Length={length}", f"Lyric={lyric}", f"NoteNum={pitch}", "PreUtterance="]
        if note_tempo and index in note_tempo:
            lines.append(f"Tempo={note_tempo[index]}")
    lines.append("[#TRACKEND]")
    return "\r\n".join(line for line in lines if line) + "\r\n"


def test_ust_utf8_with_bom_and_per_note_tempo_by_hand(tmp_path):
    text = hand_ust([("R", 480, 60), ("가", 480, 60), ("+", 240, 62), ("a 나", 960, 64)], tempo="120", note_tempo={3: "60"})
    path = tmp_path / "bom.ust"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert as_tuples(read_any_score(path)) == [(0.0, 0.5, 0, "SP"), (0.5, 1.0, 60, "가"), (1.0, 1.25, 62, "-"), (1.25, 3.25, 64, "나")]


def test_ust_cp949_by_hand_is_not_read_as_shift_jis(tmp_path):
    # These bytes also decode as Shift-JIS (as kanji mojibake): the Hangul reading must win.
    path = tmp_path / "cp949.ust"
    path.write_bytes(hand_ust([("사", 480, 60), ("랑", 480, 62), ("R", 240, 60), ("해", 480, 64)]).encode("cp949"))
    assert [n.lyric for n in read_any_score(path).notes] == ["사", "랑", "SP", "해"]


def test_ust_shift_jis_by_hand_decodes_japanese_text(tmp_path):
    # Shift-JIS holds no Hangul: a Japanese project name and kana lyrics, read as UTAU writes them.
    text = hand_ust([("あ", 480, 60), ("R", 480, 60), ("か", 480, 62)], extra_setting="ProjectName=テスト曲")
    path = tmp_path / "sjis.ust"
    path.write_bytes(text.encode("cp932"))
    score = read_any_score(path)
    assert [n.lyric for n in score.notes] == ["あ", "SP", "か"]


def test_ust_written_by_utaupy_in_shift_jis_and_utf8_agree(tmp_path):
    # utaupy's default encoding is Shift-JIS (cp932); with Hangul it cannot write it, so the Korean
    # song goes through UTF-8 and CP949, and the kana one through cp932.
    song = (Step(60, "あ", 1), Step(None, None, 1), Step(62, "い", 2))
    sjis = read_any_score(write_ust_song(tmp_path / "sjis.ust", steps=song, encoding="cp932"))
    utf8 = read_any_score(write_ust_song(tmp_path / "utf8.ust", steps=song, encoding="utf-8"))
    assert as_tuples(sjis) == as_tuples(utf8) and [n.lyric for n in sjis.notes] == ["あ", "SP", "い"]


def test_ust_charset_declaration_wins(tmp_path):
    path = tmp_path / "declared.ust"
    path.write_bytes(hand_ust([("가", 480, 60)], extra_setting="Charset=EUC-KR").encode("cp949"))
    assert read_any_score(path).notes[0].lyric == "가"


def test_ust_unknown_encoding_is_one_line(tmp_path):
    path = tmp_path / "bad.ust"
    path.write_bytes(hand_ust([("가", 480, 60)]).encode("utf-8").replace("가".encode("utf-8"), b"\xff\x80\xfe"))
    with pytest.raises(UserInputError, match=r"bad\.ust: line \d+: bytes .* are neither UTF-8, CP949 nor Shift-JIS; save the UST as UTF-8"):
        read_any_score(path)


def test_ust_truncated_file(tmp_path):
    text = hand_ust([("가", 480, 60), ("나", 480, 62)])
    path = tmp_path / "cut.ust"
    path.write_text(text[: text.index("NoteNum=62")], encoding="utf-8")
    with pytest.raises(UserInputError, match=r"cut\.ust: note \[#0001\] has no NoteNum= line; the file may be cut short"):
        read_any_score(path)
    path.write_text(text[: text.index("[#TRACKEND]")], encoding="utf-8")
    with pytest.raises(UserInputError, match="ends without \\[#TRACKEND\\]"):
        read_any_score(path)


def test_ust_empty_lyric_and_all_rests(tmp_path):
    path = tmp_path / "empty.ust"
    path.write_text(hand_ust([("가", 480, 60), ("", 480, 62)]), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"note 2 \(\[#0001\]\): the note has an empty lyric"):
        read_any_score(path)
    path.write_text(hand_ust([("R", 480, 60)]), encoding="utf-8")
    with pytest.raises(UserInputError, match="no sung notes"):
        read_any_score(path)


# ---------------------------------------------------------------------------------------------
# MusicXML

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">\n'


def xml_note(step: str, octave: int, duration: int, lyric: str | None = None, extend: bool = False, tie: str | None = None, slur: str | None = None, voice: int = 1, rest: bool = False) -> str:
    pitch = "<rest/>" if rest else f"<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
    ties = f'<tie type="{tie}"/>' if tie else ""
    notations = (f'<tied type="{tie}"/>' if tie else "") + (f'<slur type="{slur}"/>' if slur else "")
    notations = f"<notations>{notations}</notations>" if notations else ""
    lyric_xml = f"<lyric><syllabic>single</syllabic><text>{lyric}</text>{'<extend/>' if extend else ''}</lyric>" if lyric else ""
    return f"<note>{pitch}<duration>{duration}</duration>{ties}<voice>{voice}</voice>{notations}{lyric_xml}</note>\n"


def xml_score(parts: list[tuple[str, list[str]]], tempo: int = 120) -> str:
    """Hand-written partwise MusicXML; each part is (name, [measure contents]); divisions = 2 per quarter."""
    part_list = "".join(f'<score-part id="P{i + 1}"><part-name>{name}</part-name></score-part>' for i, (name, _) in enumerate(parts))
    body = ""
    for i, (_, measures) in enumerate(parts):
        body += f'<part id="P{i + 1}">\n'
        for number, content in enumerate(measures, start=1):
            attributes = "<attributes><divisions>2</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>" if number == 1 else ""
            sound = f'<direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>{tempo}</per-minute></metronome></direction-type><sound tempo="{tempo}"/></direction>' if number == 1 and i == 0 else ""
            body += f'<measure number="{number}">{attributes}{sound}\n{content}</measure>\n'
        body += "</part>\n"
    return f"{XML_HEAD}<part-list>{part_list}</part-list>\n{body}</score-partwise>\n"


def test_musicxml_extend_melisma_tie_and_two_parts_by_hand(tmp_path):
    voice = [
        xml_note("C", 4, 2, "가", extend=True) + xml_note("D", 4, 2) + xml_note("E", 4, 2, "나", tie="start", slur="start") + xml_note("E", 4, 2, tie="stop"),
        xml_note("F", 4, 2, slur="stop") + xml_note("", 0, 2, rest=True) + '<direction><sound tempo="60"/></direction>' + xml_note("G", 4, 4, "다"),
    ]
    piano = [xml_note("C", 3, 8), xml_note("C", 3, 8)]
    path = tmp_path / "hand.musicxml"
    path.write_text(xml_score([("Piano", piano), ("Voice", voice)], tempo=90), encoding="utf-8")
    score = read_any_score(path)
    beat = 60 / 90
    assert_same_notes(
        as_tuples(score),
        [(0, beat, 60, "가"), (beat, 2 * beat, 62, "-"), (2 * beat, 4 * beat, 64, "나"), (4 * beat, 5 * beat, 65, "-"),
         (5 * beat, 6 * beat, 0, "SP"), (6 * beat, 6 * beat + 2.0, 67, "다")],
    )  # fmt: skip
    assert score.melody_track == 1 and any("ignored part 0 ('Piano')" in w for w in score.warnings)
    with pytest.raises(UserInputError, match=r"no lyric and are not under a slur.*part 0 \('Piano'\) bar:beat 1:1"):
        read_any_score(path, track=0)
    with pytest.raises(UserInputError, match=r"--track 5: the score has 2 parts"):
        read_any_score(path, track=5)


def test_musicxml_lyricless_note_without_slur_or_extend_is_an_error(tmp_path):
    path = tmp_path / "plain.musicxml"
    path.write_text(xml_score([("Voice", [xml_note("C", 4, 4, "가") + xml_note("D", 4, 4)])]), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"1 notes have no lyric.*bar:beat 1:3; write one Hangul syllable under each note"):
        read_any_score(path)


def test_musicxml_no_lyrics_at_all(tmp_path):
    path = tmp_path / "nolyrics.musicxml"
    path.write_text(xml_score([("Voice", [xml_note("C", 4, 4) + xml_note("D", 4, 4)])]), encoding="utf-8")
    with pytest.raises(UserInputError, match="no note in any part has a lyric"):
        read_any_score(path)


def test_musicxml_two_voices_and_chords(tmp_path):
    measure = xml_note("E", 4, 8, "가", voice=1) + "<backup><duration>8</duration></backup>" + xml_note("C", 4, 8, voice=2)
    path = tmp_path / "voices.musicxml"
    path.write_text(xml_score([("Voice", [measure])]), encoding="utf-8")
    score = read_any_score(path)
    assert as_tuples(score) == [(0.0, 2.0, 64, "가")] and any("ignored voice(s) 2" in w for w in score.warnings)
    chord = xml_note("C", 4, 8, "가").replace("</note>", "</note>") + xml_note("G", 4, 8).replace("<note>", "<note><chord/>")
    path.write_text(xml_score([("Voice", [chord])]), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"bar:beat 1:1: a chord \(C4 G4\).*--monophonic top"):
        read_any_score(path)
    assert as_tuples(read_any_score(path, monophonic="top")) == [(0.0, 2.0, 67, "가")]


def test_mxl_by_hand_with_container(tmp_path):
    xml = xml_score([("Voice", [xml_note("C", 4, 4, "가") + xml_note("D", 4, 4, "나")])])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/vnd.recordare.musicxml")
        archive.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="score/song.xml"/></rootfiles></container>')
        archive.writestr("score/song.xml", xml)
    path = tmp_path / "hand.mxl"
    path.write_bytes(buffer.getvalue())
    assert as_tuples(read_any_score(path)) == [(0.0, 1.0, 60, "가"), (1.0, 2.0, 62, "나")]
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(UserInputError, match=r"hand\.mxl: not a readable \.mxl archive.*cut short"):
        read_any_score(path)


def test_musicxml_truncated(tmp_path):
    text = xml_score([("Voice", [xml_note("C", 4, 4, "가") + xml_note("D", 4, 4, "나")])])
    path = tmp_path / "cut.xml"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(UserInputError, match=r"cut\.xml: line \d+, column \d+: not well-formed XML; the file may be cut short"):
        read_any_score(path)


# ---------------------------------------------------------------------------------------------
# USTX


def test_ustx_tempo_change_continuations_and_time_signature(tmp_path):
    project = ustx_project(continuation="+")
    project["voice_parts"][0]["position"] = 480  # the part starts one beat in: notes move with it
    score = read_any_score(write_ustx_song(tmp_path / "s.ustx", project=project))
    got = as_tuples(score)
    assert got[0] == (0.0, pytest.approx(0.6), 0, "SP") and got[3][3] == "-"
    # bar 2 is in 3/4 (a time-signature change at bar_position 1): the last note (quarter 6 + 1) is at bar 3 beat 1
    assert score.locations[-1].endswith("bar:beat 3:1")


@pytest.mark.parametrize("mark", ["+", "+~", "+*", "-"])
def test_ustx_every_continuation_mark_is_a_melisma(tmp_path, mark):
    score = read_any_score(write_ustx_song(tmp_path / "s.ustx", project=ustx_project(continuation=mark)))
    assert [n.lyric for n in score.notes][:3] == ["가", "나", "-"]


def test_ustx_tracks_and_overlap(tmp_path):
    project = ustx_project()
    project["tracks"].append({"track_name": "Harmony"})
    project["voice_parts"].append({"name": "Harm", "track_no": 1, "position": 0, "notes": [{"position": 0, "duration": 480, "tone": 55, "lyric": "라"}]})
    score = read_any_score(write_ustx_song(tmp_path / "two.ustx", project=project))
    assert score.melody_track == 0 and any("ignored track(s) [1]" in w for w in score.warnings)
    assert as_tuples(read_any_score(tmp_path / "two.ustx", track=1)) == [(0.0, 0.6, 55, "라")]
    project["voice_parts"][0]["notes"][1]["position"] = 240  # 나 starts while 가 still sounds
    with pytest.raises(UserInputError, match=r"note at bar:beat 1:1.5 \(0.300 s\) starts while .* still sounds.*--monophonic top"):
        read_any_score(write_ustx_song(tmp_path / "overlap.ustx", project=project))


OPENUTAU_05_PROJECT = """name: 손으로
comment: ''
output_dir: Vocal
cache_dir: UCache
ustx_version: 0.5
bpm: 90
beat_per_bar: 4
beat_unit: 4
resolution: 480
expressions:
  vel:
    name: velocity
    abbr: vel
    type: Numerical
    min: 0
    max: 200
    default_value: 100
tracks:
- singer: ''
  phonemizer: OpenUtau.Core.DefaultPhonemizer
  renderer: CLASSIC
  mute: false
  solo: false
  volume: 0
voice_parts:
- name: New Part
  comment: ''
  track_no: 0
  position: 1920
  notes:
  - position: 0
    duration: 480
    tone: 62
    lyric: 봄
    pitch:
      data:
      - {x: -25, y: 0, shape: io}
      - {x: 25, y: 0, shape: io}
      snap_first: true
    vibrato: {length: 0, period: 175, depth: 25, in: 10, out: 10, shift: 0, drift: 0}
    note_expressions: []
    phoneme_expressions: []
    phoneme_overrides: []
  - position: 480
    duration: 960
    tone: 64
    lyric: +~
    pitch: {data: [], snap_first: true}
  - position: 1920
    duration: 480
    tone: 60
    lyric: 비
wave_parts: []
"""


def test_ustx_written_by_hand_as_openutau_0_5_saves_it(tmp_path):
    # No `tempos` list yet (a single `bpm`), a part that starts in bar 2, a vowel extension "+~".
    path = tmp_path / "old.ustx"
    path.write_text(OPENUTAU_05_PROJECT, encoding="utf-8")
    beat = 60 / 90
    assert_same_notes(
        as_tuples(read_any_score(path)),
        [(0, 4 * beat, 0, "SP"), (4 * beat, 5 * beat, 62, "봄"), (5 * beat, 7 * beat, 64, "-"), (7 * beat, 8 * beat, 0, "SP"), (8 * beat, 9 * beat, 60, "비")],
    )


def test_ustx_truncated_and_not_a_project(tmp_path):
    path = write_ustx_song(tmp_path / "s.ustx")
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("tone: 62") + 4] + "\n  - {position: [", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"s\.ustx: line \d+: not readable YAML.*cut short"):
        read_any_score(path)
    path.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="no voice_parts"):
        read_any_score(path)


# ---------------------------------------------------------------------------------------------
# DS


def two_segments() -> list[dict]:
    first = ds_segment(
        0.5, [("rest", 0.2, 0), ("C4", 0.5, 0), ("D4", 0.3, 0), ("E4", 0.2, 1), ("rest", 0.3, 0)], "SP 가 나 SP",
        phonemes=[("SP", 0.1), ("g", 0.1), ("a", 0.45), ("n", 0.05), ("a", 0.45), ("SP", 0.35)],
        f0=(0.01, [0.0] * 20 + [261.6] * 50 + [293.7] * 30 + [329.6] * 20 + [0.0] * 30),
    )  # fmt: skip
    second = ds_segment(3.0, [("G4", 1.0, 0), ("rest", 0.2, 0), ("A4+30", 0.5, 0)], "다 AP 라")
    return [first, second]


def test_ds_two_segments_with_offsets_phonemes_and_f0(tmp_path):
    score = read_any_score(write_ds(tmp_path / "two.ds", two_segments()))
    assert_same_notes(
        as_tuples(score),
        [(0, 0.7, 0, "SP"), (0.7, 1.2, 60, "가"), (1.2, 1.5, 62, "나"), (1.5, 1.7, 64, "-"), (1.7, 3.0, 0, "SP"),
         (3.0, 4.0, 67, "다"), (4.0, 4.2, 0, "AP"), (4.2, 4.7, 69, "라")],
    )  # fmt: skip
    assert [p.phoneme for p in score.phonemes] == ["SP", "g", "a", "n", "a", "SP"]
    assert score.phonemes[0].start == 0.5 and score.phonemes[-1].end == pytest.approx(2.0)
    (curve,) = score.f0_curves
    assert curve.start == 0.5 and curve.step == 0.01 and len(curve.hz) == 150 and curve.hz[25] == pytest.approx(261.6)
    assert score.phrase_starts == (1, 5)


def test_ds_single_segment_object(tmp_path):
    path = tmp_path / "one.ds"
    path.write_text('{"offset": 0, "text": "가", "note_seq": "C4", "note_dur": "1.0"}', encoding="utf-8")
    assert as_tuples(read_any_score(path)) == [(0.0, 1.0, 60, "가")]


def test_ds_phoneme_durations_must_add_up(tmp_path):
    segments = two_segments()
    segments[0]["ph_dur"] = "0.1 0.1 0.45 0.05 0.45 0.6"
    with pytest.raises(UserInputError, match=r"segment 1: the phoneme durations add up to 1.750 s but the notes to 1.500 s; make ph_dur and note_dur cover the same time"):
        read_any_score(write_ds(tmp_path / "bad.ds", segments))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"text": ""}, r"segment 1 has no lyrics \(no 'text'\)"),
        ({"text": "SP 가 SP"}, r"note 3 \(D4\): the lyric for this sung note is SP; words and notes are out of step"),
        ({"text": "SP 가 나 다 SP"}, r"'text' has 5 words but the notes use 3"),
        ({"note_dur": "0.2 0.5"}, "note_seq has 5 items, note_dur 2"),
        ({"note_seq": "rest C4 H4 E4 rest"}, r"note 3 \(H4\): 'H4' is not a note name"),
        ({"offset": 1.6}, r"segment 2 starts at 3.000 s, before segment 1 ends \(3.100 s\); move its offset"),
    ],
)
def test_ds_bad_segments(tmp_path, change, message):
    segments = two_segments()
    segments[0].update(change)
    with pytest.raises(UserInputError, match=message):
        read_any_score(write_ds(tmp_path / "bad.ds", segments))


def test_ds_truncated(tmp_path):
    path = write_ds(tmp_path / "cut.ds", two_segments())
    path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")
    with pytest.raises(UserInputError, match=r"cut\.ds: line \d+, column \d+: not valid JSON.*cut short"):
        read_any_score(path)


def test_the_reference_song_has_a_melisma_and_a_rest():
    # Guards the fixture itself: the format tests above lean on these features being in SONG.
    assert any(s.lyric == "-" for s in SONG) and any(s.pitch is None for s in SONG)
