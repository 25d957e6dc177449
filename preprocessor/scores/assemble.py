"""The common last step of the non-MIDI score readers: timed sung notes -> a `Score` with ``SP`` rests.

Every reader (MusicXML, UST, USTX, DS) turns its file into `TimedNote`s (seconds, MIDI pitch, lyric
and a place for messages such as ``bar:beat 3:2`` or ``note 14``) and calls `build_score`, so the
rules below hold for every format alike and match the MIDI reader's:
- times must be finite, non-negative and each note must end after it starts (`check_note_times`);
- notes are sorted by start; two notes that sound at the same time are an error naming both places
  (``monophonic="strict"``) or the higher one is kept (``"top"``, with a warning);
- a gap longer than ``max(1 ms, min_rest_seconds)`` becomes an ``SP`` rest; a shorter one is absorbed
  by the earlier note; a leading rest covers 0 to the first note;
- lyrics are NFC-normalized, whitespace and punctuation (except the melisma marks ``-``/``+``) are
  removed; a note whose lyric is ``SP``/``AP`` is a rest/breath (pitch 0). Whether a lyric is a
  Hangul syllable is the Korean frontend's check, as for MIDI (it names the note and the fix).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from config.errors import UserInputError
from preprocessor.score import BREATH, REST, Note, validate_notes
from preprocessor.scores.midi_reader import GAP_EPSILON_SECONDS, MONOPHONIC_MODES, Score

CONTINUATION = "-"  # the melisma mark every reader writes (the frontend also takes "+")


@dataclass(frozen=True)
class TimedNote:
    """A sung note (or an explicit rest/breath) as a reader found it; `where` names it in messages."""

    start: float
    end: float
    pitch: int
    lyric: str
    where: str


def clean_lyric(text: str) -> str:
    """NFC text without whitespace and punctuation (``-`` and ``+`` are melisma marks and stay)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(c for c in text if not c.isspace() and not (unicodedata.category(c).startswith("P") and c not in "-+"))


def check_note_times(path: Path, notes: Sequence[TimedNote]) -> None:
    """Finite, non-negative times, ``end > start`` and a MIDI pitch for each note (in any order: the
    readers sort afterwards), else the `UserInputError` of `preprocessor.score.validate_notes` naming it."""
    for note in notes:
        validate_notes([Note(note.start, note.end, note.pitch, note.lyric)], path, [note.where])


def _one_voice(path: Path, notes: list[TimedNote], monophonic: str) -> tuple[list[TimedNote], list[str]]:
    kept: list[TimedNote] = []
    dropped: list[TimedNote] = []
    for note in notes:
        if not kept or note.start >= kept[-1].end - GAP_EPSILON_SECONDS:
            if kept and note.start < kept[-1].end:  # a hair of overlap (rounding): the earlier note ends here
                previous = kept[-1]
                kept[-1] = TimedNote(previous.start, note.start, previous.pitch, previous.lyric, previous.where)
            kept.append(note)
            continue
        previous = kept[-1]
        if monophonic == "strict":
            raise UserInputError(
                f"{path}: {note.where} ({note.start:.3f} s) starts while {previous.where} still sounds (until {previous.end:.3f} s); "
                f"make the melody one voice (move or shorten one of the notes), or pass --monophonic top to keep the higher note"
            )
        if note.pitch > previous.pitch:
            if note.start <= previous.start:
                dropped.append(kept.pop())
            else:
                kept[-1] = TimedNote(previous.start, note.start, previous.pitch, previous.lyric, previous.where)
            kept.append(note)
        else:
            dropped.append(note)
    warnings = []
    if dropped:
        listed = ", ".join(n.where for n in dropped[:5])
        warnings.append(f"{path}: --monophonic top dropped {len(dropped)} lower overlapping notes: {listed}")
    return kept, warnings


def build_score(
    path: Path,
    notes: Sequence[TimedNote],
    *,
    track: int = 0,
    monophonic: str = "strict",
    min_rest_seconds: float = 0.0,
    warnings: Sequence[str] = (),
    phrase_start_times: Sequence[float] = (),
) -> Score:
    """The `Score` of `notes` (see the module doc). `phrase_start_times`: seconds where a phrase starts."""
    if monophonic not in MONOPHONIC_MODES:
        raise ValueError(f"monophonic must be one of {MONOPHONIC_MODES}, got {monophonic!r}")
    path = Path(path)
    cleaned = [TimedNote(n.start, n.end, n.pitch, clean_lyric(n.lyric), n.where) for n in notes]
    sung = [n for n in cleaned if n.lyric != REST]  # explicit rests are re-made from the gaps below
    if not sung:
        raise UserInputError(f"{path}: the score has no sung notes; write the melody as notes with one Hangul syllable each")
    check_note_times(path, sung)
    ordered = sorted(sung, key=lambda n: (n.start, -n.pitch))
    voice, voice_warnings = _one_voice(path, ordered, monophonic)
    rest_gap = max(GAP_EPSILON_SECONDS, min_rest_seconds)
    out: list[Note] = []
    locations: list[str] = []
    previous_end = 0.0
    for note in voice:
        start = note.start
        gap = start - previous_end
        if gap > rest_gap:
            out.append(Note(previous_end, start, 0, REST))
            locations.append(f"before {note.where}")
        elif gap > 0 and out:
            last = out[-1]
            out[-1] = Note(last.start, start, last.pitch, last.lyric)
        elif gap > 0:
            start = 0.0
        pitch = 0 if note.lyric in (REST, BREATH) else note.pitch
        out.append(Note(start, note.end, pitch, note.lyric))
        locations.append(note.where)
        previous_end = note.end
    validate_notes(out, path, locations)  # the assembled score: contiguous, in order (the check every reader shares)
    phrase_starts: list[int] = []
    if phrase_start_times:
        starts = sorted(set(phrase_start_times))
        phrase_starts = sorted({next((i for i, n in enumerate(out) if not n.is_rest and n.start >= t - GAP_EPSILON_SECONDS), len(out) - 1) for t in starts})
    return Score(
        notes=tuple(out),
        locations=tuple(locations),
        phrase_starts=tuple(phrase_starts),
        source=path,
        lyrics_source=None,
        melody_track=track,
        total_seconds=out[-1].end,
        clipped_overlaps=0,
        warnings=tuple(warnings) + tuple(voice_warnings),
    )


def decode_text(path: Path, raw: bytes, encodings: Sequence[str], what: str) -> tuple[str, str]:
    """``(text, encoding)``: the first of `encodings` that decodes `raw`, else a `UserInputError` quoting the bytes."""
    for encoding in encodings:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    try:
        raw.decode("utf-8")
        bad = 0
    except UnicodeDecodeError as error:
        bad = error.start
    line = raw[:bad].count(b"\n") + 1
    names = ", ".join(e.upper() for e in encodings)
    raise UserInputError(f"{path}: line {line}: bytes {raw[bad:bad + 4]!r} are not {names}; save the {what} as UTF-8")
