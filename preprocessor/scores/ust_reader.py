"""UTAU sequence text (``.ust``) into the note list every reader gives (`preprocessor.scores.assemble`).

Parsing is utaupy's (`utaupy.ust.Ust.load`: sections, note lengths, global and per-note tempo). Two
things are done here because utaupy does them poorly for Korean files:
- The text encoding. utaupy tries Shift-JIS (cp932) and falls back to UTF-8 only on a decode error,
  but cp932 decodes almost any byte string without an error (UTF-8 or CP949 Hangul comes out as
  kanji mojibake, 0xA0/0xFD-0xFF as private-use characters), so a Korean file would be read as
  garbage. Here: a ``Charset=`` line in ``[#SETTING]`` wins when it decodes; else strict UTF-8 (with
  or without BOM); else CP949 and Shift-JIS are both tried and a decoding with private-use or C1
  control characters is rejected; when both pass, the one with more characters natural to its
  language wins (`_natural_characters`). Neither: a `UserInputError` quoting the bytes.
- The structure checks. utaupy raises bare ``KeyError``/``ValueError`` on a line without ``=`` or a
  note without ``Length``/``NoteNum`` (a file cut short); here each becomes one line naming the note.

Rules: 480 ticks per quarter note (UTAU's fixed resolution); notes follow each other (a UST has no
start times); the tempo is ``[#SETTING] Tempo`` until a note sets its own ``Tempo=``, which holds from
that note on. ``R``/``r`` is a rest; ``-`` and ``+`` (and OpenUtau-style ``+~`` ...) continue the
previous syllable; a VCV-style lyric ``"a 가"`` sings its last word. ``[#DELETE]`` notes are skipped.
"""
from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

import utaupy.ust

from config.errors import UserInputError
from preprocessor.scores.assemble import CONTINUATION, TimedNote, build_score
from preprocessor.scores.midi_reader import Score
from preprocessor.text.korean import is_hangul_syllable

UST_TICKS_PER_QUARTER = 480
DEFAULT_TEMPO_BPM = 120.0
REST_LYRICS = ("R", "r")
_CHARSET_LINE = re.compile(rb"^Charset=([A-Za-z0-9_\-]+)\s*$", re.MULTILINE)
_ENCODING_NAMES = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "euc-kr": "cp949", "ks_c_5601-1987": "cp949"}


def is_continuation_lyric(lyric: str) -> bool:
    """``-``, ``+`` and OpenUtau's extension lyrics (``+~``, ``+*``, ``+4`` ...) hold the previous vowel."""
    return lyric == "-" or lyric.startswith("+")


def _plausible(text: str) -> bool:
    """No private-use or control characters: what a wrong legacy decoding produces."""
    return not any(unicodedata.category(c) in ("Co", "Cs") or (unicodedata.category(c) == "Cc" and c not in "\r\n\t") for c in text)


def _natural_characters(text: str, encoding: str) -> int:
    """How many characters look like real text in that encoding's language.

    Each legacy decoding of the other's bytes gives characters of its own script, so the script alone
    does not decide: Shift-JIS kana (lead bytes 0x82/0x83) read as CP949 are rare Hangul of the UHC
    extension, outside the 2,350 common syllables of KS X 1001 (EUC-KR); CP949 Hangul read as
    Shift-JIS are half-width katakana. So CP949 counts KS X 1001 syllables, Shift-JIS full-width kana.
    """
    if encoding == "cp949":
        # KS X 1001 syllables are the CP949 codes with lead byte 0xB0..0xC8 (Python's euc-kr codec
        # would also "encode" the rest, through 8-byte composition sequences).
        return sum((1 if 0xB0 <= c.encode("cp949")[0] <= 0xC8 else -1) for c in text if is_hangul_syllable(c))
    return sum("\u3040" <= c <= "\u30ff" for c in text)  # hiragana and katakana


def decode_ust(path: Path, raw: bytes) -> tuple[str, str]:
    """``(text, python encoding name)`` of a UST file (see the module doc for the order)."""
    declared = _CHARSET_LINE.search(raw)
    if declared:
        name = declared.group(1).decode("ascii").lower()
        encoding = _ENCODING_NAMES.get(name, name)
        try:
            return raw.decode(encoding).removeprefix("\ufeff"), encoding
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: guess as if there were none
    try:
        return raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8"), "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError as error:
        first_bad = error.start
    candidates = []
    for encoding in ("cp949", "cp932"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _plausible(text):
            candidates.append((_natural_characters(text, encoding), encoding == "cp949", text, encoding))
    if not candidates:
        line = raw[:first_bad].count(b"\n") + 1
        raise UserInputError(
            f"{path}: line {line}: bytes {raw[first_bad:first_bad + 4]!r} are neither UTF-8, CP949 nor Shift-JIS; "
            f"save the UST as UTF-8 (or add Charset=... to [#SETTING])"
        )
    _, _, text, encoding = max(candidates)
    return text, encoding


def _check_structure(path: Path, text: str) -> None:
    """One clear line for what makes utaupy raise a bare KeyError/ValueError (usually a truncated file)."""
    section = None
    has_keys: set[str] = set()
    notes_checked = 0

    def close() -> None:
        if section and re.fullmatch(r"\[#\d+\]|\[#INSERT\]", section):
            for key in ("Length", "NoteNum", "Lyric"):
                if key not in has_keys:
                    raise UserInputError(f"{path}: note {section} has no {key}= line; the file may be cut short: export the UST again")

    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("[#"):
            close()
            section, has_keys = line, set()
            notes_checked += 1
            continue
        if section is None:
            raise UserInputError(f"{path}: line {number} ({line[:30]!r}) comes before any [#...] section; this is not a UST file")
        if "=" not in line and section not in ("[#VERSION]",):
            raise UserInputError(f"{path}: line {number} ({line[:30]!r}) in {section} is not KEY=VALUE; the file may be cut short: export the UST again")
        has_keys.add(line.split("=", 1)[0])
    close()
    if section != "[#TRACKEND]":
        raise UserInputError(f"{path}: the file ends without [#TRACKEND] (cut short?); export the UST again")


def read_ust_score(path: Path, track: int | None = None, monophonic: str = "strict", min_rest_seconds: float = 0.0) -> Score:
    """A UST file as a `Score`. `track` must be None or 0 (a UST holds one track)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: UST file not found; check the path")
    if track not in (None, 0):
        raise UserInputError(f"{path}: a UST file holds one track, so --track {track} does not exist; leave --track out")
    text, _ = decode_ust(path, path.read_bytes())
    _check_structure(path, text)
    # utaupy reads from a path with one encoding; hand it the text we decoded (as UTF-8) so that its
    # own Shift-JIS guess never runs.
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "score.ust"
        copy.write_text(text, encoding="utf-8")
        try:
            ust = utaupy.ust.load(copy, encoding="utf-8")
        except (KeyError, ValueError, ArithmeticError) as error:
            raise UserInputError(f"{path}: not a readable UST ({type(error).__name__}: {error}); export the UST again from UTAU or OpenUtau") from None
    try:
        tempo = float(ust.setting.get("Tempo", DEFAULT_TEMPO_BPM))
    except ValueError:
        raise UserInputError(f"{path}: [#SETTING] Tempo={ust.setting.get('Tempo')!r} is not a number; write the tempo in BPM") from None
    notes: list[TimedNote] = []
    seconds = 0.0
    index = 0
    for note in ust.notes:
        if note.tag == "[#DELETE]":
            continue
        index += 1
        where = f"note {index} ({note.tag})"
        if "Tempo" in note:
            try:
                tempo = float(note["Tempo"])
            except ValueError:
                raise UserInputError(f"{path}: {where}: Tempo={note['Tempo']!r} is not a number; write the tempo in BPM") from None
        if not tempo > 0:
            raise UserInputError(f"{path}: {where}: tempo {tempo} BPM; give the song a positive tempo")
        length = note.length / UST_TICKS_PER_QUARTER * 60.0 / tempo
        if note.length < 0:
            raise UserInputError(f"{path}: {where}: Length={note.length} is negative; give the note a positive length")
        lyric = note.lyric.strip()
        if " " in lyric:  # VCV notation: "a 가" sings 가 after the vowel a
            lyric = lyric.split()[-1]
        start, seconds = seconds, seconds + length
        if note.length == 0 or lyric in REST_LYRICS:
            continue
        if not lyric:
            raise UserInputError(f"{path}: {where}: the note has an empty lyric; write one Hangul syllable, R for a rest, or - for a melisma")
        notes.append(TimedNote(start, seconds, int(note.notenum), CONTINUATION if is_continuation_lyric(lyric) else lyric, where))
    if not notes:
        raise UserInputError(f"{path}: no sung notes (every note is a rest R); write one Hangul syllable per note")
    return build_score(path, notes, track=0, monophonic=monophonic, min_rest_seconds=min_rest_seconds)
