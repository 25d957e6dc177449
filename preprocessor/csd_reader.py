"""Readers for the Children's Song Dataset (Korean half), in both released layouts.

Final release (`korean/{wav,mid,lyric,txt,csv}/krNNN{a,b}.*`): notes from `csv`
(`start,end,pitch,syllable` with a header), Hangul lyrics from `lyric` (lines are phrases, one
syllable per note). Early release (`Korean/{wav,mid,txt}/<song>_kr_<key>.*`): notes from the MIDI,
Hangul lyrics from `txt`. Either way the result is one `Recording` per wav: its notes (rests
between notes filled in as `SP`), each note's written syllable, and the lyric lines (word spacing
kept, because g2pk's liaison depends on it).

Notes = syllables, always: a mismatch is a `UserInputError` naming the file and the first place
where the two part.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from config.errors import UserInputError
from preprocessor.score import REST, Note, validate_notes
from preprocessor.text.korean import NotePhonemes, is_hangul_syllable

# Overlaps shorter than this between consecutive notes are legato in the annotation, not chords:
# the earlier note is clipped to where the next one starts.
LEGATO_OVERLAP_SECONDS = 0.05
# Gaps shorter than this are annotation jitter, not rests: the earlier note is extended.
MIN_GAP_SECONDS = 0.001

FINAL_NAME = re.compile(r"^(?P<song>kr\d{3})(?P<key>[a-z])$")
EARLY_NAME = re.compile(r"^(?P<song>.+)_kr_(?P<key>[^_]+)$")


@dataclass(frozen=True)
class Recording:
    """One sung recording of a song and its score.

    recording_id: file stem (`kr046a`, `headshoulder_kr_0u`).
    song_id: the song, shared by both keys (`kr046`, `headshoulder`); splits are made by song.
    notes: sung notes and `SP` rests, sorted, contiguous from the first note's start.
    lyric_lines: the Hangul lyric lines as written (one syllable per sung note, spaces between words).
    phonemes: per note (parallel to `notes`), the phonemes a transcription gives (DiffSinger's
        transcriptions.csv); None = the Korean frontend pronounces the lyrics.
    """

    recording_id: str
    song_id: str
    wav_path: Path
    notes: tuple[Note, ...]
    lyric_lines: tuple[str, ...]
    score_path: Path
    phonemes: tuple[NotePhonemes, ...] | None = None

    def segment_phonemes(self, segment_notes: tuple[Note, ...], segment_start: float) -> list[NotePhonemes]:
        """The given phonemes of a segment's notes (found by their start in the song; rests sing `SP`)."""
        assert self.phonemes is not None
        by_start = {round(n.start, 6): p for n, p in zip(self.notes, self.phonemes) if not n.is_rest}
        return [NotePhonemes(n.lyric, (n.lyric,), False) if n.is_rest else by_start[round(n.start + segment_start, 6)] for n in segment_notes]

    def word_starts(self) -> dict[float, bool]:
        """Sung note start (seconds, rounded to 1 µs) -> whether its syllable begins a word.

        The lyric lines' spaces are the only word boundaries CSD gives; g2pk's liaison needs them.
        """
        starts = []
        for line in self.lyric_lines:
            previous = " "
            for char in line:
                if not char.isspace():
                    starts.append(previous.isspace())
                previous = char
        sung = [n for n in self.notes if not n.is_rest]
        return {round(note.start, 6): flag for note, flag in zip(sung, starts)}


def detect_layout(raw_dir: Path) -> str:
    """'final' when `raw_dir/korean/csv` exists, 'early' when `raw_dir/Korean/mid` does."""
    if (raw_dir / "korean" / "csv").is_dir():
        return "final"
    if (raw_dir / "Korean" / "mid").is_dir():
        return "early"
    raise UserInputError(
        f"{raw_dir}: no CSD layout found (expected korean/csv/ for the final release or Korean/mid/ for the early one); "
        "set dataset.raw_data_dir to the folder that holds korean/ or Korean/"
    )


def read_lyric_lines(path: Path) -> list[str]:
    """Non-empty, NFC-normalised lines of a Hangul lyric file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: not UTF-8 text (byte {error.start}); save the lyric file as UTF-8") from None
    lines = [" ".join(unicodedata.normalize("NFC", line).split()) for line in text.splitlines()]
    return [line for line in lines if line]


def lyric_syllables(lines: list[str]) -> list[tuple[str, int, int]]:
    """Each written syllable with its (1-based) line and position in the line, spaces skipped."""
    syllables = []
    for line_number, line in enumerate(lines, start=1):
        position = 0
        for char in line:
            if char.isspace():
                continue
            position += 1
            syllables.append((char, line_number, position))
    return syllables


def check_notes_match_syllables(notes: list[Note], lines: list[str], score_path: Path, lyric_path: Path) -> None:
    """Raise naming the first place where sung notes and written syllables part."""
    sung = [n for n in notes if not n.is_rest]
    syllables = lyric_syllables(lines)
    for index, (note, (syllable, line, position)) in enumerate(zip(sung, syllables)):
        # Some releases write the csv syllable romanized; only a Hangul syllable can be compared.
        if is_hangul_syllable(note.lyric) and note.lyric != syllable:
            raise UserInputError(
                f"{score_path}: note {index + 1} (t={note.start:.3f}s) is '{note.lyric}' but {lyric_path.name} line {line} "
                f"syllable {position} is '{syllable}'; make the two agree"
            )
    if len(sung) != len(syllables):
        if len(sung) < len(syllables):
            _, line, position = syllables[len(sung)]
            where = f"the lyrics go on at line {line} syllable {position} after the last note"
        else:
            where = f"note {len(syllables) + 1} (t={sung[len(syllables)].start:.3f}s) has no syllable"
        raise UserInputError(
            f"{score_path}: {len(sung)} notes but {lyric_path.name} has {len(syllables)} syllables ({where}); "
            "notes and syllables must match one to one (write a melisma as a repeated vowel, e.g. 바알)"
        )


def fill_rests(sung_notes: list[Note], source: Path) -> list[Note]:
    """Sorted sung notes with `SP` rests in the gaps; legato overlaps clipped, real overlaps an error."""
    notes: list[Note] = []
    for note in sorted(sung_notes, key=lambda n: n.start):
        if notes:
            previous = notes[-1]
            gap = note.start - previous.end
            if gap < -LEGATO_OVERLAP_SECONDS or note.start <= previous.start:
                raise UserInputError(
                    f"{source}: notes overlap at t={note.start:.3f}s (pitch {previous.pitch} until {previous.end:.3f}s, "
                    f"pitch {note.pitch} from {note.start:.3f}s); the score must be monophonic"
                )
            if gap < MIN_GAP_SECONDS:
                notes[-1] = Note(previous.start, note.start, previous.pitch, previous.lyric)
            else:
                notes.append(Note(previous.end, note.start, 0, REST))
        notes.append(note)
    return notes


def _check_note(note: Note, source: Path, where: str) -> None:
    if not note.end > note.start:
        raise UserInputError(f"{source}: {where} ends ({note.end:.3f}s) before it starts ({note.start:.3f}s); fix its times")
    if not 1 <= note.pitch <= 127:
        raise UserInputError(f"{source}: {where} has MIDI pitch {note.pitch}; pitches must be 1..127")


def read_final_csv(path: Path) -> list[Note]:
    """Notes of a final-release csv (`start,end,pitch,syllable` with a header)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path}: cannot read the note csv ({error}); expected UTF-8 text") from None
    if not rows or [c.strip().lower() for c in rows[0][:4]] != ["start", "end", "pitch", "syllable"]:
        raise UserInputError(f"{path}: line 1 must be the header 'start,end,pitch,syllable'")
    notes, places = [], []
    for line_number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            start, end, pitch = float(row[0]), float(row[1]), int(round(float(row[2])))
            syllable = unicodedata.normalize("NFC", row[3].strip()) if len(row) > 3 else ""
        except (ValueError, IndexError):
            raise UserInputError(f"{path}: line {line_number} is not 'start,end,pitch,syllable' ({','.join(row)!r})") from None
        note = Note(start, end, pitch, syllable)
        validate_notes([note], path, [f"line {line_number}"])
        _check_note(note, path, f"line {line_number}")
        notes.append(note)
        places.append(f"line {line_number}")
    if not notes:
        raise UserInputError(f"{path}: no notes; the csv holds only a header")
    validate_notes(notes, path, places, max_overlap_seconds=LEGATO_OVERLAP_SECONDS)
    return notes


def read_recording_final(raw_dir: Path, recording_id: str) -> Recording:
    base = raw_dir / "korean"
    song_id = song_of(recording_id)
    csv_path, lyric_path, wav_path = (
        base / "csv" / f"{recording_id}.csv",
        base / "lyric" / f"{recording_id}.txt",
        base / "wav" / f"{recording_id}.wav",
    )
    for path in (csv_path, lyric_path, wav_path):
        if not path.is_file():
            raise UserInputError(f"{path}: missing; every recording needs korean/wav, korean/csv and korean/lyric files")
    sung = read_final_csv(csv_path)
    lines = read_lyric_lines(lyric_path)
    notes = fill_rests(sung, csv_path)
    check_notes_match_syllables(notes, lines, csv_path, lyric_path)
    return Recording(recording_id, song_id, wav_path, _with_lyrics(notes, lines), tuple(lines), csv_path)


def read_recording_early(raw_dir: Path, recording_id: str) -> Recording:
    # The MIDI reading (tempo map, legato clipping, lyric matching) is the inference score reader's:
    # one reader for every MIDI the project meets.
    from preprocessor.scores.midi_reader import read_score

    base = raw_dir / "Korean"
    song_id = song_of(recording_id)
    midi_path, lyric_path, wav_path = (
        base / "mid" / f"{recording_id}.mid",
        base / "txt" / f"{recording_id}.txt",
        base / "wav" / f"{recording_id}.wav",
    )
    for path in (midi_path, lyric_path, wav_path):
        if not path.is_file():
            raise UserInputError(f"{path}: missing; every recording needs Korean/wav, Korean/mid and Korean/txt files")
    score = read_score(midi_path, lyrics_path=lyric_path)
    lines = read_lyric_lines(lyric_path)
    # The score spans time 0..end; the recording's notes start at the first sung note.
    notes = list(score.notes)
    while notes and notes[0].is_rest:
        notes.pop(0)
    check_notes_match_syllables(notes, lines, midi_path, lyric_path)
    return Recording(recording_id, song_id, wav_path, tuple(notes), tuple(lines), midi_path)


def _with_lyrics(notes: list[Note], lines: list[str]) -> tuple[Note, ...]:
    """Notes with each sung note's lyric set to the written syllable (the lyric file is the reference)."""
    syllables = iter(lyric_syllables(lines))
    return tuple(n if n.is_rest else Note(n.start, n.end, n.pitch, next(syllables)[0]) for n in notes)


def list_recordings(raw_dir: Path, layout: str = "auto") -> tuple[str, list[str]]:
    """The layout and the sorted recording ids (wav stems) found under `raw_dir`."""
    if not raw_dir.is_dir():
        raise UserInputError(f"{raw_dir}: raw data folder not found; set dataset.raw_data_dir (or --hparams dataset.raw_data_dir=PATH)")
    if layout == "auto":
        layout = detect_layout(raw_dir)
    if layout not in ("final", "early"):
        raise UserInputError(f"config: dataset.layout is '{layout}'; use auto, final or early")
    wav_dir = raw_dir / ("korean" if layout == "final" else "Korean") / "wav"
    ids = sorted(p.stem for p in wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
    if not ids:
        raise UserInputError(f"{wav_dir}: no .wav files; the {layout}-release layout keeps recordings there")
    return layout, ids


def read_recording(raw_dir: Path, layout: str, recording_id: str) -> Recording:
    reader = read_recording_final if layout == "final" else read_recording_early
    return reader(raw_dir, recording_id)


def song_of(recording_id: str) -> str:
    for pattern in (FINAL_NAME, EARLY_NAME):
        match = pattern.match(recording_id)
        if match:
            return match.group("song")
    return recording_id


def assign_splits(recording_ids: list[str], valid: list[str], test: list[str], source: str) -> dict[str, str]:
    """`recording_id -> train|valid|test`. Lists name songs (both keys) or single recordings.

    A name that matches nothing is an error: a typo would otherwise train on the test song.
    """
    known_songs = {song_of(r) for r in recording_ids}
    splits = {r: "train" for r in recording_ids}
    for split_name, names in (("valid", valid), ("test", test)):
        for name in names:
            if name not in known_songs and name not in splits:
                raise UserInputError(
                    f"{source}: dataset.{split_name}_songs names '{name}', which is neither a song nor a recording in the raw data "
                    f"(songs: {', '.join(sorted(known_songs)[:6])}{', ...' if len(known_songs) > 6 else ''}); fix the list"
                )
            for recording in recording_ids:
                if recording == name or song_of(recording) == name:
                    if splits[recording] != "train" and splits[recording] != split_name:
                        raise UserInputError(f"{source}: '{name}' is in both the valid and the test list; keep it in one")
                    splits[recording] = split_name
    return splits
