"""Your own recordings: the two generic dataset layouts beside CSD's (`dataset.layout`).

``folder``: `raw_data_dir` holds recordings (``NAME.wav``, ``.flac`` or ``.ogg``), each with one score
beside it, ``NAME.<ext>`` in any format `preprocessor.scores.dispatch.read_any_score` reads (MIDI,
MusicXML, UST, USTX, DS), and for a MIDI without lyric events a ``NAME.txt`` of Hangul lyrics (one
syllable per note, lines are phrases: the `--lyrics` file of inference). The score's times are the
recording's. The Korean frontend pronounces the lyrics, as for CSD.

``diffsinger``: DiffSinger's raw dataset (its docs/BestPractices.md): ``wavs/NAME.wav`` and one
``transcriptions.csv`` with the columns ``name, ph_seq, ph_dur, ph_num, note_seq, note_dur`` (and
optionally ``note_slur``), sequences separated by spaces, durations in seconds from the start of the
wav. The phonemes are sung as written: they must be this project's phones, by their names in
``phone_set.json`` (``onset_g nucleus_a coda_ng``, ``SP``, ``AP``; the jamo symbols also do). They are
read as syllables (an onset, a nucleus, an optional coda; ``SP``/``AP`` alone), so both DiffSinger's
word convention (a word starts at its vowel and ends with the next word's onset) and onset-first words
give the same syllables; ``ph_num`` is checked (it must add up to the phonemes). Syllable ``k`` is sung
on non-slur note ``k`` and held over the ``note_slur`` = 1 notes after it (its coda on the last one);
``rest`` notes take ``SP``/``AP``. Note names: ``C4``, ``D#4``, ``Eb4`` (cents rounded), ``rest``. The
frame rule places the phonemes inside the notes, as for every dataset here: ``ph_dur`` is checked to
cover the same time as ``note_dur`` but not used for frames.

Recordings are their own songs for the split lists (`valid_songs`, `test_songs` name file stems).
Every mismatch is one `UserInputError` naming the file and the recording or row.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

from jamo import j2h

from config.errors import UserInputError
from preprocessor.csd_reader import Recording, list_recordings, read_lyric_lines, read_recording
from preprocessor.score import BREATH, REST, Note, validate_notes
from preprocessor.text.korean import NotePhonemes, sustained_vowel
from preprocessor.text.phone_set import CODAS, NUCLEI, ONSETS, PHONE_SET, SILENT_ONSET, phone_name

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
TRANSCRIPTIONS = "transcriptions.csv"
REQUIRED_COLUMNS = ("name", "ph_seq", "ph_dur", "ph_num", "note_seq", "note_dur")
DURATION_TOLERANCE_SECONDS = 0.01
GENERIC_LAYOUTS = ("folder", "diffsinger")
_PHONE_BY_NAME = {**{phone_name(p): p for p in PHONE_SET[1:]}, **{p: p for p in PHONE_SET[1:]}}


def list_any_recordings(raw_dir: Path, layout: str) -> tuple[str, list[str]]:
    """The layout and the sorted recording ids under `raw_dir`, for every layout (CSD's through `csd_reader`)."""
    if layout not in GENERIC_LAYOUTS:
        return list_recordings(raw_dir, layout)
    if not raw_dir.is_dir():
        raise UserInputError(f"{raw_dir}: raw data folder not found; set dataset.raw_data_dir (or --hparams dataset.raw_data_dir=PATH)")
    if layout == "folder":
        return layout, sorted(folder_recordings(raw_dir))
    return layout, [row.name for row in read_transcriptions(raw_dir)]


def read_any_recording(raw_dir: Path, layout: str, recording_id: str) -> Recording:
    if layout == "folder":
        return read_folder_recording(raw_dir, recording_id)
    if layout == "diffsinger":
        rows = {row.name: row for row in read_transcriptions(raw_dir)}
        return rows[recording_id].recording
    return read_recording(raw_dir, layout, recording_id)


# ---- folder: recordings with a score each ------------------------------------------------------------


def folder_recordings(raw_dir: Path) -> dict[str, tuple[Path, Path]]:
    """`{stem: (audio, score)}`; a recording without a score, a score without a recording and two
    scores for one recording are errors naming the file."""
    from preprocessor.scores.dispatch import SCORE_SUFFIXES

    files = sorted(p for p in raw_dir.iterdir() if p.is_file())
    audio = {p.stem: p for p in files if p.suffix.lower() in AUDIO_SUFFIXES}
    scores: dict[str, list[Path]] = {}
    for path in files:
        if path.suffix.lower() in SCORE_SUFFIXES:
            scores.setdefault(path.stem, []).append(path)
    if not audio:
        raise UserInputError(f"{raw_dir}: no recordings ({', '.join(AUDIO_SUFFIXES)}); the folder layout keeps NAME.wav beside its score NAME.mid (or .musicxml, .ust, .ustx, .ds)")
    for stem, path in audio.items():
        found = scores.get(stem, [])
        if not found:
            raise UserInputError(f"{path}: no score beside it; add {stem}.mid (or .musicxml, .ust, .ustx, .ds) with its notes and lyrics, or move the recording out")
        if len(found) > 1:
            raise UserInputError(f"{path}: two scores for it ({', '.join(p.name for p in found)}); keep one")
    for stem, found in scores.items():
        if stem not in audio:
            raise UserInputError(f"{found[0]}: no recording {stem}.wav (or .flac, .ogg) beside it; add it or move the score out")
    return {stem: (path, scores[stem][0]) for stem, path in audio.items()}


def read_folder_recording(raw_dir: Path, recording_id: str) -> Recording:
    from preprocessor.scores.dispatch import MIDI_SUFFIXES, read_any_score

    audio_path, score_path = folder_recordings(raw_dir)[recording_id]
    lyrics_path = raw_dir / f"{recording_id}.txt"
    is_midi = score_path.suffix.lower() in MIDI_SUFFIXES
    if lyrics_path.is_file() and not is_midi:
        raise UserInputError(f"{lyrics_path}: a lyrics file goes with a MIDI score only; {score_path.name} carries its own lyrics, so remove the .txt")
    score = read_any_score(score_path, lyrics_path=lyrics_path if lyrics_path.is_file() else None)
    notes = list(score.notes)
    while notes and notes[0].is_rest:
        notes.pop(0)
    while notes and notes[-1].is_rest:
        notes.pop()
    if not notes:
        raise UserInputError(f"{score_path}: no sung notes; the score must hold the melody with its lyrics")
    lines = read_lyric_lines(lyrics_path) if lyrics_path.is_file() else _phrase_lines(notes)
    return Recording(recording_id, recording_id, audio_path, tuple(notes), tuple(lines), score_path)


def _phrase_lines(notes: list[Note]) -> list[str]:
    """One lyric line per run of sung notes (no spaces: each phrase is pronounced as one word, as inference does)."""
    lines, current = [], []
    for note in notes:
        if note.is_rest:
            if current:
                lines.append("".join(current))
            current = []
        else:
            current.append(note.lyric)
    if current:
        lines.append("".join(current))
    return lines


# ---- diffsinger: transcriptions.csv + wavs/ ------------------------------------------------------------


class TranscriptionRow(NamedTuple):
    """One row of `transcriptions.csv` read and checked: `name` and its `recording` (notes + phonemes)."""

    name: str
    recording: Recording


def read_transcriptions(raw_dir: Path) -> list[TranscriptionRow]:
    """Every row of `raw_dir/transcriptions.csv`, checked (the first mismatch is one line naming the row)."""
    path = raw_dir / TRANSCRIPTIONS
    if not path.is_file():
        raise UserInputError(f"{path}: not found; the diffsinger layout keeps transcriptions.csv beside wavs/ (DiffSinger's raw dataset)")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            table = list(csv.reader(handle))
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    if not table:
        raise UserInputError(f"{path}: empty; line 1 must name the columns ({', '.join(REQUIRED_COLUMNS)})")
    header = [cell.strip() for cell in table[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UserInputError(f"{path}: line 1 lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; the columns are {', '.join(REQUIRED_COLUMNS)} (and optionally note_slur)")
    rows, seen = [], {}
    for line_number, cells in enumerate(table[1:], start=2):
        if not "".join(cells).strip():
            continue
        if len(cells) != len(header):
            raise UserInputError(f"{path}: line {line_number} has {len(cells)} fields, the header {len(header)}; quote fields that hold commas")
        fields = dict(zip(header, (cell.strip() for cell in cells)))
        name = fields["name"]
        where = f"{path}: line {line_number} ({name or 'no name'})"
        if not name:
            raise UserInputError(f"{path}: line {line_number}: empty name; give the wav's file name without .wav")
        if name in seen:
            raise UserInputError(f"{where}: the name is also on line {seen[name]}; each recording once")
        seen[name] = line_number
        wav_path = raw_dir / "wavs" / f"{name}.wav"
        if not wav_path.is_file():
            raise UserInputError(f"{where}: {wav_path} not found; put the recording there or fix the name")
        rows.append(TranscriptionRow(name, _transcription_recording(fields, where, wav_path, path)))
    if not rows:
        raise UserInputError(f"{path}: no rows; add one per recording in wavs/")
    return rows


def _numbers(fields: dict[str, str], key: str, where: str, kind: type) -> list:
    values = []
    for index, text in enumerate(fields[key].split()):
        try:
            value = kind(text)
        except ValueError:
            raise UserInputError(f"{where}: {key} item {index + 1} is {text!r}, not a{'n integer' if kind is int else ' number'}; fix the row") from None
        if kind is float and (not math.isfinite(value) or value < 0):
            raise UserInputError(f"{where}: {key} item {index + 1} is {text}; durations are finite seconds >= 0")
        values.append(value)
    return values


def _syllables(phones: list[str], where: str) -> list[tuple[str, ...]]:
    """`ph_seq` as syllables: (onset?, nucleus, coda?) or (SP,) / (AP,)."""
    syllables: list[tuple[str, ...]] = []
    index = 0
    while index < len(phones):
        phone = phones[index]
        if phone in (REST, BREATH):
            syllables.append((phone,))
            index += 1
            continue
        start = index
        if phone in ONSETS:
            index += 1
        if index >= len(phones) or phones[index] not in NUCLEI:
            bad = min(index, len(phones) - 1)
            raise UserInputError(
                f"{where}: ph_seq item {bad + 1} ({phone_name(phones[bad])}) is out of place: "
                "each syllable is [onset_*] nucleus_* [coda_*], or SP/AP alone"
            )
        index += 1
        if index < len(phones) and phones[index] in CODAS:
            index += 1
        syllables.append(tuple(phones[start:index]))
    return syllables


def _transcription_recording(fields: dict[str, str], where: str, wav_path: Path, csv_path: Path) -> Recording:
    from preprocessor.scores.ds_reader import note_number

    phones = []
    for index, token in enumerate(fields["ph_seq"].split()):
        if token not in _PHONE_BY_NAME:
            raise UserInputError(
                f"{where}: ph_seq item {index + 1} {token!r} is not a phoneme of this project; "
                "use the names of phone_set.json (onset_g, nucleus_a, coda_ng, ..., SP, AP)"
            )
        phones.append(_PHONE_BY_NAME[token])
    ph_dur = _numbers(fields, "ph_dur", where, float)
    ph_num = _numbers(fields, "ph_num", where, int)
    note_dur = _numbers(fields, "note_dur", where, float)
    note_names = fields["note_seq"].split()
    if not phones:
        raise UserInputError(f"{where}: ph_seq is empty; write the recording's phonemes")
    if len(ph_dur) != len(phones):
        raise UserInputError(f"{where}: ph_seq has {len(phones)} phonemes but ph_dur {len(ph_dur)} durations; one duration per phoneme")
    if sum(ph_num) != len(phones) or any(n < 1 for n in ph_num):
        raise UserInputError(f"{where}: ph_num adds up to {sum(ph_num)} but ph_seq has {len(phones)} phonemes; ph_num counts the phonemes of each word (each >= 1)")
    if len(note_names) != len(note_dur) or not note_names:
        raise UserInputError(f"{where}: note_seq has {len(note_names)} notes but note_dur {len(note_dur)} durations; one duration per note")
    pitches = []
    for index, name in enumerate(note_names):
        try:
            number = note_number(name)
        except ValueError:
            raise UserInputError(f"{where}: note_seq item {index + 1} {name!r} is not a note name; write C4, D#4, Eb4 or rest") from None
        if number is not None and not 1 <= number <= 127:
            raise UserInputError(f"{where}: note_seq item {index + 1} {name!r} is outside MIDI 1..127")
        pitches.append(0 if number is None else number)
    if "note_slur" in fields and fields["note_slur"]:
        slurs = _numbers(fields, "note_slur", where, int)
        if len(slurs) != len(pitches) or any(s not in (0, 1) for s in slurs) or slurs[0] == 1:
            raise UserInputError(f"{where}: note_slur must be one 0/1 per note (the first 0); it has {len(slurs)} values for {len(pitches)} notes")
    else:
        slurs = [0] * len(pitches)
    if abs(sum(ph_dur) - sum(note_dur)) > DURATION_TOLERANCE_SECONDS:
        raise UserInputError(
            f"{where}: ph_dur adds up to {sum(ph_dur):.3f} s but note_dur to {sum(note_dur):.3f} s; both must cover the same recording"
        )
    syllables = _syllables(phones, where)
    heads = [i for i, s in enumerate(slurs) if not s]
    if len(ph_num) != len(heads):
        raise UserInputError(f"{where}: ph_num has {len(ph_num)} words but note_seq {len(heads)} notes that start one (note_slur 0); one word per such note")
    if len(syllables) != len(heads):
        raise UserInputError(
            f"{where}: ph_seq holds {len(syllables)} syllables (SP/AP included) but note_seq {len(heads)} notes that start one "
            "(notes without note_slur = 1); one syllable per such note"
        )
    notes, phonemes, places = [], [], []
    time = 0.0
    groups = [range(head, heads[k + 1] if k + 1 < len(heads) else len(pitches)) for k, head in enumerate(heads)]
    for syllable, group in zip(syllables, groups):
        unit = syllable[0] in (REST, BREATH)
        for position, index in enumerate(group):
            start, time = time, time + note_dur[index]
            if note_dur[index] <= 0:
                raise UserInputError(f"{where}: note_dur item {index + 1} is 0; every note needs a duration > 0")
            if unit != (pitches[index] == 0):
                raise UserInputError(
                    f"{where}: note_seq item {index + 1} ({note_names[index]}) meets syllable {'/'.join(phone_name(p) for p in syllable)}; "
                    "rest notes take SP/AP and sung notes a syllable"
                )
            places.append(f"note {index + 1}")
            if unit:
                notes.append(Note(round(start, 6), round(time, 6), 0, syllable[0]))
                phonemes.append(NotePhonemes(syllable[0], syllable, False))
                continue
            onset = syllable[0] if syllable[0] in ONSETS else None
            nucleus = syllable[1 if onset else 0]
            coda = syllable[-1] if syllable[-1] in CODAS else None
            last = position == len(group) - 1
            if position == 0:
                phones_here = tuple(p for p in (onset, nucleus, coda if last else None) if p)
                pronounced = j2h(onset or SILENT_ONSET, nucleus, coda) if last and coda else j2h(onset or SILENT_ONSET, nucleus)
                lyric = j2h(onset or SILENT_ONSET, nucleus, coda) if coda else j2h(onset or SILENT_ONSET, nucleus)
            else:  # a melisma note: the held vowel, the coda on the last note
                vowel = sustained_vowel(nucleus)
                phones_here = (vowel, coda) if last and coda else (vowel,)
                pronounced = j2h(SILENT_ONSET, vowel, coda) if last and coda else j2h(SILENT_ONSET, vowel)
                lyric = "-"
            notes.append(Note(round(start, 6), round(time, 6), pitches[index], lyric))
            phonemes.append(NotePhonemes(pronounced, phones_here, position > 0))
    validate_notes(notes, csv_path, [f"{where.split(': ', 1)[1]} {p}" for p in places])
    while notes and notes[0].is_rest:  # the recording's notes start at the first sung note (as CSD's)
        notes.pop(0)
        phonemes.pop(0)
    while notes and notes[-1].is_rest:
        notes.pop()
        phonemes.pop()
    if not notes:
        raise UserInputError(f"{where}: only rests; a recording needs sung notes")
    return Recording(fields["name"], fields["name"], wav_path, tuple(notes), tuple(_phrase_lines(notes)), csv_path, tuple(phonemes))


def write_transcriptions(path: Path, rows: list[dict[str, str]]) -> None:
    """Write `rows` (dicts with the `REQUIRED_COLUMNS`, optionally `note_slur`) as a transcriptions.csv, atomically."""
    import io

    from preprocessor.atomic_io import write_text_atomic

    columns = list(REQUIRED_COLUMNS) + (["note_slur"] if any("note_slur" in r for r in rows) else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    write_text_atomic(path, buffer.getvalue())
