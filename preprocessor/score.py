"""The score: notes with lyrics, shared by the dataset readers, the text frontend and inference.

A `Note` is the unit every stage agrees on. Times are seconds from the start of the song (readers)
or of the segment (after cutting); a rest is a note with pitch 0 and lyric ``SP``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from config.errors import UserInputError

REST = "SP"
BREATH = "AP"
CONTINUATION_MARKS = ("-", "+")


@dataclass(frozen=True)
class Note:
    """One note of a monophonic score.

    start, end: seconds, ``start < end``.
    pitch: MIDI note number (1..127); 0 for a rest or a breath.
    lyric: one Hangul syllable, ``SP`` (rest), ``AP`` (breath), or ``-``/``+`` (a melisma mark:
        this note continues the previous syllable's vowel).
    """

    start: float
    end: float
    pitch: int
    lyric: str

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def is_rest(self) -> bool:
        return self.lyric in (REST, BREATH)

    def shifted(self, offset_seconds: float) -> "Note":
        """The same note with both times moved by ``-offset_seconds`` (used when cutting segments)."""
        return Note(self.start - offset_seconds, self.end - offset_seconds, self.pitch, self.lyric)


def validate_notes(
    notes: Sequence[Note],
    source: str | Path,
    places: Sequence[str] | None = None,
    *,
    max_overlap_seconds: float = 0.0,
) -> None:
    """Raise `UserInputError` at the first note whose times or pitch no stage could use.

    Every score reader calls this on the notes it read (in file order), and synthesis calls it on what
    it is given, so a bad file ends in one line naming the file and the note instead of a silent
    training segment or a traceback further down. Checked: start and end finite, start >= 0,
    end > start, pitch an integer 0..127, and order: each note starts no earlier than the previous one
    and no more than `max_overlap_seconds` before the previous one ends (readers that clip small
    legato overlaps pass their tolerance; a contiguous score passes 0).

    places: one human-readable place per note (``"line 7"``, ``"bar:beat 3:2"``) for the message;
        default ``"note <n>"`` (1-based).
    """
    previous: Note | None = None
    for index, note in enumerate(notes):
        where = places[index] if places is not None else f"note {index + 1}"
        fix = "fix the note's times in the score"
        for name, value in (("start", note.start), ("end", note.end)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserInputError(f"{source}: {where}: {name} time {value!r} is not a finite number of seconds; {fix}")
        if note.start < 0:
            raise UserInputError(f"{source}: {where}: starts at {note.start:.3f} s, before the song begins (0 s); {fix}")
        if not note.end > note.start:
            raise UserInputError(f"{source}: {where}: ends at {note.end:.3f} s, not after its start {note.start:.3f} s; {fix}")
        if isinstance(note.pitch, bool) or not isinstance(note.pitch, int) or not 0 <= note.pitch <= 127:
            raise UserInputError(f"{source}: {where}: pitch {note.pitch!r} is not a MIDI note number 0..127; fix the pitch")
        if previous is not None:
            if note.start < previous.start:
                raise UserInputError(
                    f"{source}: {where}: starts at {note.start:.3f} s, before the previous note ({previous.start:.3f} s); "
                    "write the notes in time order"
                )
            if note.start < previous.end - max_overlap_seconds - 1e-9:
                raise UserInputError(
                    f"{source}: {where}: starts at {note.start:.3f} s while the previous note sounds until {previous.end:.3f} s; "
                    "the score must be one voice (end the previous note first)"
                )
        previous = note
