"""The editable render: `--dump FILE.json` writes what the generator was given, `--score FILE.json` sings it back.

A dump holds, per phrase, the phonemes with their frame counts, the notes they belong to (lyric,
pitch) and, per phoneme, the predicted F0 and voicing of each of its frames. Rendering a dump
unchanged gives the same audio bit for bit (the F0 values are float32 written exactly; the seed and
noise scale are kept). Edits are respected:
- a phoneme's ``frames`` changed: the phoneme lasts that long, and its F0 curve is stretched
  linearly to the new length (voicing by nearest frame) unless it was given exactly that many values;
  everything after it moves;
- ``f0_hz``/``voiced`` changed: sung as written (``voiced`` 0 = unvoiced; ``f0_hz`` null = let the
  model predict that phoneme's F0 from the score);
- a note's ``pitch`` changed: the score the model reads changes; its F0 follows only where ``f0_hz``
  is null (set it to null to let the model re-predict the moved note);
- a note moved in time: give its phonemes (and the neighbouring rest's) other frame counts;
- ``energy_db``/``breathiness_db`` (written by a model with expressive controls, `modules.variance`):
  the loudness and breathiness each frame is sung with, in dB, stretched like ``f0_hz`` when the
  phoneme's frames change; null = let the model predict them; an offset given when singing the file
  (``--energy_db``) is added on top.
The format is described in the README ("Editable render").
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from config.errors import UserInputError
from inference.speakers import SpeakerValue
from inference.synthesis import PhrasePlan, RenderPlan, SynthesisResult
from preprocessor.atomic_io import write_text_atomic
from preprocessor.score import REST, Note
from preprocessor.text.frame_rule import PhonemeScore
from preprocessor.text.korean import NotePhonemes
from preprocessor.text.phone_set import PHONE_SET, phone_name, phone_to_id

DUMP_FORMAT = "korean-visinger-render"
DUMP_VERSION = 1
_SYMBOL_OF_NAME = {phone_name(symbol): symbol for symbol in PHONE_SET}


VARIANCE_KEYS = ("energy_db", "breathiness_db")  # per phoneme, in the order of modules.variance.VARIANCE_NAMES


def dump_render(path: Path, plan: RenderPlan, result: SynthesisResult, *, source: str, speaker: SpeakerValue, seed: int | None, noise_scale: float) -> None:
    """Write `plan` with the F0 `result` predicted for it (and the energy and breathiness sung, for a model with them), as JSON (atomically)."""
    phrases = []
    variances = result.phrase_variance_db or (None,) * len(plan.phrases)
    for phrase, predicted, variance in zip(plan.phrases, result.phrase_f0_hz, variances):
        sung = predicted if phrase.f0_hz is None else np.where(np.isnan(np.asarray(phrase.f0_hz, np.float32)), predicted, np.asarray(phrase.f0_hz, np.float32))
        phonemes, frame = [], 0
        for symbol_id, frames, note in zip(phrase.score.phone_ids, phrase.score.phone_frames, phrase.phone_note):
            curve = sung[frame : frame + frames]
            phonemes.append({
                "phone": phone_name(PHONE_SET[symbol_id]), "note": note, "frames": int(frames),
                "f0_hz": [float(v) for v in curve], "voiced": [int(v > 0) for v in curve],
            })  # fmt: skip
            if variance is not None:
                for key, row in zip(VARIANCE_KEYS, variance):
                    phonemes[-1][key] = [float(v) for v in np.asarray(row[frame : frame + frames], np.float32)]
            frame += frames
        notes = [
            {"lyric": note.lyric, "pronounced": phones.pronounced, "pitch": note.pitch, "slur": int(phones.is_slur)}
            for note, phones in zip(phrase.notes, phrase.phonemes)
        ]
        phrases.append({"trim_start": phrase.trim_start, "trim_end": phrase.trim_end, "tail_frames": phrase.tail_frames, "notes": notes, "phonemes": phonemes})
    document = {
        "format": DUMP_FORMAT, "version": DUMP_VERSION, "source": source,
        "sample_rate": result.sample_rate, "hop_size": result.hop_size,
        "speaker": list(speaker) if isinstance(speaker, tuple) else speaker, "seed": seed, "noise_scale": noise_scale, "phrases": phrases,
    }  # fmt: skip
    write_text_atomic(Path(path), json.dumps(document, ensure_ascii=False, indent=1) + "\n")


def is_render_dump(path: Path) -> bool:
    return Path(path).suffix.lower() == ".json"


@dataclass(frozen=True)
class RenderDump:
    """A dump read back: the plan to render and the settings it was made with."""

    plan: RenderPlan
    speaker: SpeakerValue
    seed: int | None
    noise_scale: float
    source: str


def _speaker(path: Path, value: Any) -> SpeakerValue:
    """An id, or a list of mix weights (one per speaker of the model; checked against it when sung)."""
    if isinstance(value, list):
        if not value or not all(not isinstance(w, bool) and isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in value):
            raise UserInputError(f"{path}: top level: speaker is {value!r}; write an id or a list of weights >= 0, one per speaker")
        return tuple(float(w) for w in value)
    return _integer(path, "top level", value, "speaker")


def _integer(path: Path, where: str, value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(f"{path}: {where}: {what} is {value!r}; write a whole number >= {minimum}")
    return value


def _stretch(values: np.ndarray, frames: int, nearest: bool) -> np.ndarray:
    """`values` resampled to `frames` points over the same span (linear, or nearest for voicing)."""
    if len(values) == frames:
        return values
    if frames == 0:
        return values[:0]
    if len(values) == 0:
        return np.full(frames, np.nan, dtype=np.float32)
    positions = (np.arange(frames) + 0.5) * len(values) / frames - 0.5
    if nearest:
        return values[np.clip(np.rint(positions).astype(int), 0, len(values) - 1)]
    return np.interp(positions, np.arange(len(values)), values).astype(np.float32)


def _phrase(path: Path, number: int, entry: Any) -> PhrasePlan:
    where = f"phrase {number}"
    if not isinstance(entry, dict) or not isinstance(entry.get("phonemes"), list) or not isinstance(entry.get("notes"), list):
        raise UserInputError(f"{path}: {where} needs 'notes' and 'phonemes' lists; write it as --dump does")
    notes_in = entry["notes"]
    notes, phonemes_of_notes = [], []
    for index, note in enumerate(notes_in):
        note_where = f"{where} note {index}"
        if not isinstance(note, dict):
            raise UserInputError(f"{path}: {note_where} is not an object; write it as --dump does")
        pitch = _integer(path, note_where, note.get("pitch"), "pitch")
        if pitch > 127:
            raise UserInputError(f"{path}: {note_where}: pitch {pitch} is outside MIDI 0..127; fix it")
        lyric = str(note.get("lyric", ""))
        notes.append(Note(0.0, 0.0, pitch, lyric))
        phonemes_of_notes.append([])
    ids, frames, note_of, f0 = [], [], [], []
    variance: list[list[np.ndarray]] = [[] for _ in VARIANCE_KEYS]
    for index, phoneme in enumerate(entry["phonemes"]):
        phone_where = f"{where} phoneme {index}"
        if not isinstance(phoneme, dict):
            raise UserInputError(f"{path}: {phone_where} is not an object; write it as --dump does")
        name = phoneme.get("phone")
        if name not in _SYMBOL_OF_NAME:
            raise UserInputError(f"{path}: {phone_where}: unknown phone {name!r}; use a name of this model's phone set (e.g. onset_g, nucleus_a, coda_n, rest)")
        note = _integer(path, phone_where, phoneme.get("note"), "note")
        if note >= len(notes):
            raise UserInputError(f"{path}: {phone_where}: note {note} does not exist ({len(notes)} notes in the phrase); fix 'note'")
        count = _integer(path, phone_where, phoneme.get("frames"), "frames")
        curve = phoneme.get("f0_hz")
        if curve is None:
            values = np.full(count, np.nan, dtype=np.float32)
        else:
            if not isinstance(curve, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in curve):
                raise UserInputError(f"{path}: {phone_where}: f0_hz must be a list of finite numbers >= 0 (Hz) or null; fix it")
            voiced = phoneme.get("voiced", [1] * len(curve))
            if not isinstance(voiced, list) or len(voiced) != len(curve) or not all(v in (0, 1) for v in voiced):
                raise UserInputError(f"{path}: {phone_where}: voiced must be a list of 0/1, as long as f0_hz ({len(curve)}); fix it")
            hz = _stretch(np.asarray(curve, dtype=np.float32), count, nearest=False)
            on = _stretch(np.asarray(voiced, dtype=np.int8), count, nearest=True)
            values = np.where(on > 0, hz, np.float32(0.0)).astype(np.float32)
        for row, key in zip(variance, VARIANCE_KEYS):
            row.append(_variance_curve(path, phone_where, key, phoneme.get(key), count))
        ids.append(phone_to_id(_SYMBOL_OF_NAME[name]))
        frames.append(count)
        note_of.append(note)
        phonemes_of_notes[note].append(_SYMBOL_OF_NAME[name])
        f0.append(values)
    if not ids:
        raise UserInputError(f"{path}: {where} has no phonemes; remove the phrase or write it as --dump does")
    missing = [i for i, phones in enumerate(phonemes_of_notes) if not phones]
    if missing:
        raise UserInputError(f"{path}: {where}: note {missing[0]} has no phoneme; remove the note or give it phonemes")
    if note_of != sorted(note_of):
        raise UserInputError(f"{path}: {where}: phonemes must follow their notes in order ('note' went back); fix the order")
    note_frames = [0] * len(notes)
    for note, count in zip(note_of, frames):
        note_frames[note] += count
    slurs = [_integer(path, f"{where} note {i}", n.get("slur", 0), "slur") for i, n in enumerate(notes_in)]
    score = PhonemeScore(ids, frames, [notes[n].pitch for n in note_of], [note_frames[n] for n in note_of], [slurs[n] for n in note_of])
    trims = [_integer(path, where, entry.get(key), key) for key in ("trim_start", "trim_end", "tail_frames")]
    if sum(frames) <= sum(trims):
        raise UserInputError(f"{path}: {where}: its phonemes last {sum(frames)} frames, not more than trim_start + trim_end + tail_frames = {sum(trims)}; give it more frames")
    phones = tuple(NotePhonemes(str(n.get("pronounced", notes[i].lyric)), tuple(phonemes_of_notes[i]), bool(slurs[i])) for i, n in enumerate(notes_in))
    all_f0 = np.concatenate(f0)
    f0_hz = None if np.isnan(all_f0).all() else tuple(float(v) for v in all_f0)
    curves = [np.concatenate(row) for row in variance]
    variance_db = None if all(np.isnan(c).all() for c in curves) else tuple(tuple(float(v) for v in c) for c in curves)
    return PhrasePlan(tuple(notes), phones, score, tuple(note_of), trims[0], trims[1], trims[2], f0_hz, variance_db)


def _variance_curve(path: Path, where: str, key: str, curve: Any, frames: int) -> np.ndarray:
    """A phoneme's `energy_db`/`breathiness_db` list stretched to `frames` (NaN = predicted, when absent or null)."""
    if curve is None:
        return np.full(frames, np.nan, dtype=np.float32)
    if not isinstance(curve, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in curve):
        raise UserInputError(f"{path}: {where}: {key} must be a list of finite numbers (dB) or null; fix it")
    return _stretch(np.asarray(curve, dtype=np.float32), frames, nearest=False)


def _song_notes(phrases: list[PhrasePlan], frame_seconds: float) -> tuple[tuple[Note, ...], tuple[int, ...]]:
    """The song's notes in seconds, from the phrases' frames (trims dropped, cut rests joined)."""
    notes: list[Note] = []
    counts: list[int] = []
    frame = 0
    for phrase in phrases:
        per_note = phrase.note_frame_counts
        drop_start, drop_end = phrase.trim_start, phrase.trim_end + phrase.tail_frames
        for index in range(len(per_note)):
            take = min(per_note[index], drop_start)
            per_note[index] -= take
            drop_start -= take
        for index in reversed(range(len(per_note))):
            take = min(per_note[index], drop_end)
            per_note[index] -= take
            drop_end -= take
        for note, count in zip(phrase.notes, per_note):
            if count == 0:
                continue
            if notes and note.lyric == REST and notes[-1].lyric == REST:
                notes[-1] = Note(notes[-1].start, (frame + count) * frame_seconds, 0, REST)
                counts[-1] += count
            else:
                notes.append(Note(frame * frame_seconds, (frame + count) * frame_seconds, note.pitch, note.lyric))
                counts.append(count)
            frame += count
    return tuple(notes), tuple(counts)


def read_render_dump(path: Path, sample_rate: int, hop_size: int) -> RenderDump:
    """A dump written by `dump_render` (and maybe edited), checked against the model's audio settings."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: render file not found; write one with --dump FILE.json")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not UTF-8 text; save the render file as UTF-8") from None
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); fix the edit or write the file again with --dump") from None
    if not isinstance(document, dict) or document.get("format") != DUMP_FORMAT:
        raise UserInputError(f"{path}: not a render file (no \"format\": \"{DUMP_FORMAT}\"); write one with --dump, or give a score (.mid, .musicxml, .ust, .ustx, .ds)")
    if document.get("version") != DUMP_VERSION:
        raise UserInputError(f"{path}: render format version {document.get('version')!r}; this code reads version {DUMP_VERSION}: write it again with --dump")
    if (document.get("sample_rate"), document.get("hop_size")) != (sample_rate, hop_size):
        raise UserInputError(
            f"{path}: written for {document.get('sample_rate')} Hz / hop {document.get('hop_size')}, but this model renders "
            f"{sample_rate} Hz / hop {hop_size}; render it with the model it was dumped from"
        )
    entries = document.get("phrases")
    if not isinstance(entries, list) or not entries:
        raise UserInputError(f"{path}: no phrases; write the file with --dump")
    phrases = [_phrase(path, number, entry) for number, entry in enumerate(entries)]
    notes, counts = _song_notes(phrases, hop_size / sample_rate)
    seed = document.get("seed", 0)
    speaker = _speaker(path, document.get("speaker", 0))
    noise_scale = document.get("noise_scale", 0.667)
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, (int, float)) or not math.isfinite(noise_scale) or noise_scale < 0:
        raise UserInputError(f"{path}: noise_scale is {noise_scale!r}; write a number >= 0")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UserInputError(f"{path}: seed is {seed!r}; write a whole number or null")
    return RenderDump(RenderPlan(tuple(phrases), notes, counts), speaker, seed, float(noise_scale), str(document.get("source", path)))
