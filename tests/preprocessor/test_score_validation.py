"""One encoding per file for score text (all 11,172 Hangul syllables, UTF-8 and CP949), and `validate_notes`."""
from __future__ import annotations

import math

import pytest

from config.errors import UserInputError
from preprocessor.score import Note, validate_notes
from preprocessor.scores.midi_reader import read_lyrics_lines, read_score
from preprocessor.scores.text_encoding import choose_encoding, decode_file_text
from tests.inference.midi_factory import melody, write_melody

ALL_SYLLABLES = [chr(code) for code in range(0xAC00, 0xD7A4)]


def test_every_syllable_alone_decodes_right_in_both_encodings():
    """A one-syllable file is the hardest case: nothing else in the file helps decide the encoding."""
    assert len(ALL_SYLLABLES) == 11172
    ambiguous = 0
    for syllable in ALL_SYLLABLES:
        for encoding in ("utf-8", "cp949"):
            raw = syllable.encode(encoding)
            decoded = choose_encoding([raw])
            assert decoded is not None and decoded.texts == [syllable], (syllable, encoding, decoded)
        try:
            ambiguous += syllable.encode("cp949").decode("utf-8") != syllable
        except UnicodeDecodeError:
            pass
    # The trap the per-event UTF-8-first rule fell into: CP949 bytes that are valid, wrong UTF-8.
    assert ambiguous == 345


@pytest.mark.parametrize("encoding", ["utf-8", "cp949"])
def test_a_midi_with_all_syllables_reads_back_in_either_encoding(tmp_path, encoding):
    notes = melody(*[(60 + i % 12, s) for i, s in enumerate(ALL_SYLLABLES)], length=60)
    path = write_melody(tmp_path / f"all_{encoding}.mid", notes, encoding=encoding)
    assert [n.lyric for n in read_score(path).sung_notes] == ALL_SYLLABLES


def test_ambiguous_cp949_syllables_in_a_midi_and_a_lyrics_file(tmp_path):
    # 짝 and 책 in CP949 are also valid UTF-8 ("¦" ...): the old per-event rule rejected these files.
    path = write_melody(tmp_path / "old.mid", melody((60, "짝"), (62, "책"), (64, "푸"), (65, "창")), encoding="cp949")
    assert [n.lyric for n in read_score(path).notes] == ["짝", "책", "푸", "창"]
    text = tmp_path / "old.txt"
    text.write_bytes("짝 책\n푸창".encode("cp949"))
    assert read_lyrics_lines(text) == [["짝", "책"], ["푸", "창"]]


def test_a_midi_mixing_encodings_is_one_error_naming_both_places(tmp_path):
    # 가 in UTF-8 is not CP949 (odd length); 각 in CP949 is not UTF-8: no one encoding reads the file.
    path = write_melody(tmp_path / "mixed.mid", melody((60, "가".encode()), (62, "각".encode("cp949"))), name="Vocal")
    with pytest.raises(UserInputError) as error:
        read_score(path)
    message = str(error.value)
    assert message.startswith(f"{path}: the text is neither UTF-8 nor CP949 throughout")
    assert "UTF-8 fails at byte 0 of track 1 ('Vocal'), the lyric at bar:beat 1:2" in message
    assert "CP949 fails at byte 2 of track 1 ('Vocal'), the lyric at bar:beat 1:1" in message


def test_decode_file_text_prefers_utf8_on_a_tie_and_names_the_place():
    assert choose_encoding([b"SP", b"-"]).encoding == "utf-8"
    with pytest.raises(UserInputError, match=r"^f\.txt: .*UTF-8 fails at byte 1 of line 2 \(b'\\xff'\)"):
        decode_file_text([b"a", b"a\xff"], "f.txt", lambda i: f"line {i + 1}")


GOOD = [Note(0.0, 0.5, 0, "SP"), Note(0.5, 1.0, 60, "가"), Note(1.0, 1.5, 62, "나")]


@pytest.mark.parametrize(
    "bad, expected",
    [
        (Note(-1.0, 0.5, 0, "SP"), "note 1: starts at -1.000 s, before the song begins"),
        (Note(0.0, math.inf, 0, "SP"), "note 1: end time inf is not a finite number"),
        (Note(-math.inf, 0.5, 0, "SP"), "note 1: start time -inf is not a finite number"),
        (Note(math.nan, 0.5, 0, "SP"), "note 1: start time nan is not a finite number"),
        (Note(0.5, 0.5, 0, "SP"), "note 1: ends at 0.500 s, not after its start"),
        (Note(0.0, 0.5, 128, "가"), "note 1: pitch 128 is not a MIDI note number"),
    ],
)
def test_validate_notes_rejects_each_bad_time_with_one_line(bad, expected):
    with pytest.raises(UserInputError, match=r"^song\.csv: " + expected.replace(".", r"\.").replace("(", r"\(")):
        validate_notes([bad, *GOOD[1:]], "song.csv")


def test_validate_notes_checks_order_overlap_and_uses_the_places():
    validate_notes(GOOD, "s")
    swapped = [GOOD[0], GOOD[2], GOOD[1]]
    with pytest.raises(UserInputError, match=r"^s: line 4: starts at 0\.500 s, before the previous note"):
        validate_notes(swapped, "s", ["line 2", "line 3", "line 4"])
    overlap = [Note(0.0, 0.52, 60, "가"), Note(0.5, 1.0, 62, "나")]
    with pytest.raises(UserInputError, match="while the previous note sounds until 0.520 s"):
        validate_notes(overlap, "s")
    validate_notes(overlap, "s", max_overlap_seconds=0.05)  # a reader's legato tolerance
