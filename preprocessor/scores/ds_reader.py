"""DiffSinger ``.ds`` files (JSON) into the note list every reader gives, plus their phonemes and F0 curve.

A DS file is a JSON list of segments (or one segment object), each with an ``offset`` in seconds and
space-separated sequences. Read by hand with `json`: DiffSinger itself ships no reader library (its
scripts index the dictionaries inline), and the format is a handful of string fields.

Per segment:
- notes: ``note_seq`` (``C4``, ``D#4``, ``Eb4``, optionally ``+/-cents``, or ``rest``), ``note_dur``
  (seconds), ``note_slur`` (1 = the note continues the previous syllable: lyric ``-``);
- lyrics: the words of ``text`` go, in order, to the notes that start a syllable; a ``rest`` note
  takes an ``SP``/``AP`` word when one is next (``AP`` stays a breath). Words and notes must come out
  even, else an error names the segment and the counts;
- phonemes (when present): ``ph_seq``/``ph_dur`` (and ``ph_num``, phonemes per word). Their total
  must equal the notes' total within `DURATION_TOLERANCE_SECONDS`, else the file is rejected: the
  two describe the same segment. They are kept in `Score.phonemes` (the renderer uses its own Korean
  frontend's phonemes; DiffSinger's dictionaries are not this model's phone set);
- F0 (when present): ``f0_seq`` every ``f0_timestep`` seconds, kept in `Score.f0_curves`; the
  renderer sings it instead of the predicted F0 where it covers the song.
Segments are placed at their offsets; a segment that starts before the previous one ends is an error.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

from config.errors import UserInputError
from preprocessor.score import BREATH, REST
from preprocessor.scores.assemble import CONTINUATION, TimedNote, build_score, decode_text
from preprocessor.scores.midi_reader import F0Curve, Score, TimedPhoneme

DURATION_TOLERANCE_SECONDS = 0.005
_NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d+)([+-]\d+)?$")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_REST_NOTES = ("rest", "r", "")


def note_number(name: str) -> int | None:
    """``"C4" -> 60``, ``"D#4"/"Eb4"`` with optional cents (rounded to the nearest semitone); None for a rest."""
    if name.lower() in _REST_NOTES:
        return None
    match = _NOTE.match(name)
    if match is None:
        raise ValueError(name)
    step, accidental, octave, cents = match.groups()
    midi = 12 * (int(octave) + 1) + _STEPS[step.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    return midi + round(int(cents) / 100) if cents else midi


def _load(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserInputError(f"{path}: DS file not found; check the path")
    text, _ = decode_text(path, path.read_bytes().removeprefix(b"\xef\xbb\xbf"), ("utf-8",), "DS file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); the file may be cut short: export it again") from None
    segments = [data] if isinstance(data, dict) else data
    if not isinstance(segments, list) or not segments or not all(isinstance(s, dict) for s in segments):
        raise UserInputError(f"{path}: a DS file is a JSON list of segment objects (offset, text, note_seq, note_dur ...); this one is not")
    return segments


def _sequence(path: Path, where: str, segment: dict, key: str, kind=str, required: bool = True) -> list:
    value = segment.get(key)
    if value is None:
        if required:
            raise UserInputError(f"{path}: {where} has no {key!r}; a DS segment needs note_seq, note_dur and text (its lyrics)")
        return []
    items = value.split() if isinstance(value, str) else list(value)
    if kind is str:
        return [str(item) for item in items]
    try:
        numbers = [kind(item) for item in items]
    except (TypeError, ValueError):
        raise UserInputError(f"{path}: {where}: {key} holds a value that is not a number; fix it") from None
    for index, number in enumerate(numbers):
        if not math.isfinite(number) or number < 0:
            raise UserInputError(f"{path}: {where}: {key} item {index + 1} is {number}; durations and F0 must be finite and >= 0")
    return numbers


def read_ds_score(path: Path, track: int | None = None, monophonic: str = "strict", min_rest_seconds: float = 0.0) -> Score:
    """A DiffSinger DS file as a `Score` with its phonemes and F0 curves (see the module doc)."""
    path = Path(path)
    if track not in (None, 0):
        raise UserInputError(f"{path}: a DS file holds one voice, so --track {track} does not exist; leave --track out")
    segments = _load(path)
    notes: list[TimedNote] = []
    phonemes: list[TimedPhoneme] = []
    curves: list[F0Curve] = []
    phrase_starts: list[float] = []
    previous_end = 0.0
    for number, segment in enumerate(segments, start=1):
        where = f"segment {number}"
        try:
            offset = float(segment.get("offset", 0.0))
        except (TypeError, ValueError):
            raise UserInputError(f"{path}: {where}: offset {segment.get('offset')!r} is not a number of seconds; fix it") from None
        names = _sequence(path, where, segment, "note_seq")
        durations = _sequence(path, where, segment, "note_dur", float)
        slurs = _sequence(path, where, segment, "note_slur", int, required=False) or [0] * len(names)
        if "text" not in segment or not str(segment["text"]).split():
            raise UserInputError(f"{path}: {where} has no lyrics (no 'text'); write the segment's syllables in 'text', one word per sung note")
        words = str(segment["text"]).split()
        if not (len(names) == len(durations) == len(slurs)):
            raise UserInputError(f"{path}: {where}: note_seq has {len(names)} items, note_dur {len(durations)}, note_slur {len(slurs)}; give them one item per note")
        if not names:
            raise UserInputError(f"{path}: {where} has no notes; write the melody in note_seq/note_dur")
        if offset < previous_end - 1e-6:
            raise UserInputError(f"{path}: {where} starts at {offset:.3f} s, before {'segment ' + str(number - 1)} ends ({previous_end:.3f} s); move its offset")
        phrase_starts.append(offset)
        time = offset
        word = 0
        for index, (name, duration, slur) in enumerate(zip(names, durations, slurs)):
            note_where = f"{where} note {index + 1} ({name})"
            try:
                pitch = note_number(name)
            except ValueError:
                raise UserInputError(f"{path}: {note_where}: {name!r} is not a note name; write C4, D#4, Eb4 or rest") from None
            start, time = time, time + duration
            if pitch is None:
                if word < len(words) and words[word] in (REST, BREATH):
                    if words[word] == BREATH and duration > 0:
                        notes.append(TimedNote(start, time, 0, BREATH, note_where))
                    word += 1
                continue
            if slur:
                lyric = CONTINUATION
            elif word < len(words):
                lyric = words[word]
                word += 1
                if lyric in (REST, BREATH):
                    raise UserInputError(f"{path}: {note_where}: the lyric for this sung note is {lyric}; words and notes are out of step in 'text'")
            else:
                raise UserInputError(f"{path}: {note_where}: 'text' has {len(words)} words, too few for the notes; write one word per sung note (slurred notes take none)")
            if duration > 0:
                notes.append(TimedNote(start, time, pitch, lyric, note_where))
        if word != len(words):
            raise UserInputError(f"{path}: {where}: 'text' has {len(words)} words but the notes use {word}; write one word per sung note (and SP/AP for rests)")
        ph_seq = _sequence(path, where, segment, "ph_seq", required=False)
        if ph_seq:
            ph_dur = _sequence(path, where, segment, "ph_dur", float)
            if len(ph_dur) != len(ph_seq):
                raise UserInputError(f"{path}: {where}: ph_seq has {len(ph_seq)} phonemes but ph_dur {len(ph_dur)} durations; give one duration per phoneme")
            ph_num = _sequence(path, where, segment, "ph_num", int, required=False)
            if ph_num and sum(ph_num) != len(ph_seq):
                raise UserInputError(f"{path}: {where}: ph_num adds up to {sum(ph_num)} phonemes but ph_seq has {len(ph_seq)}; fix ph_num")
            if abs(sum(ph_dur) - sum(durations)) > DURATION_TOLERANCE_SECONDS:
                raise UserInputError(
                    f"{path}: {where}: the phoneme durations add up to {sum(ph_dur):.3f} s but the notes to {sum(durations):.3f} s; "
                    f"make ph_dur and note_dur cover the same time"
                )
            ph_time = offset
            for phoneme, duration in zip(ph_seq, ph_dur):
                phonemes.append(TimedPhoneme(ph_time, ph_time + duration, phoneme))
                ph_time += duration
        f0 = _sequence(path, where, segment, "f0_seq", float, required=False)
        if f0:
            try:
                step = float(segment.get("f0_timestep"))
            except (TypeError, ValueError):
                raise UserInputError(f"{path}: {where}: f0_seq needs f0_timestep (seconds between F0 values); add it") from None
            if not step > 0:
                raise UserInputError(f"{path}: {where}: f0_timestep is {step}; give a positive number of seconds")
            curves.append(F0Curve(offset, step, tuple(f0)))
        previous_end = time
    if not notes:
        raise UserInputError(f"{path}: no sung notes in any segment; write one Hangul syllable per note in 'text'")
    score = build_score(path, notes, track=0, monophonic=monophonic, min_rest_seconds=min_rest_seconds, phrase_start_times=phrase_starts)
    return replace(score, f0_curves=tuple(curves), phonemes=tuple(phonemes))
