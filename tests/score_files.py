"""Write one small song in every score format, with each format's own library where it has one.

A song is a list of `Step`s (a note or a rest, in quarter notes) and tempo marks at quarter-note
positions that fall on step boundaries (UST can change tempo only at a note). Writers:
MIDI (mido, via tests/inference/midi_factory), MusicXML and .mxl (music21), UST (utaupy),
USTX (PyYAML in OpenUtau's layout: OpenUtau itself is a C# program) and DS (json, DiffSinger's layout).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.inference.midi_factory import TICKS_PER_BEAT, Meta, N, write_melody


@dataclass(frozen=True)
class Step:
    """A note (pitch, lyric; lyric ``-`` = melisma) or a rest (pitch None) lasting `quarters`."""

    pitch: int | None
    lyric: str | None
    quarters: float


# 가 나-(melisma) rest 다 라, with a tempo change from 100 to 75 BPM at quarter 4.
SONG = (Step(60, "가", 1), Step(62, "나", 1), Step(64, "-", 1), Step(None, None, 1), Step(65, "다", 2), Step(67, "라", 1))
SONG_TEMPOS = ((0.0, 100.0), (4.0, 75.0))


def expected_notes(steps=SONG, tempos=SONG_TEMPOS) -> list[tuple[float, float, int, str]]:
    """(start, end, pitch, lyric) in seconds, rests as (.., 0, "SP"), as every reader should give."""
    def seconds(quarter: float) -> float:
        total, last_q, last_bpm = 0.0, 0.0, tempos[0][1]
        for at, bpm in tempos[1:]:
            if quarter <= at:
                break
            total += (at - last_q) * 60 / last_bpm
            last_q, last_bpm = at, bpm
        return total + (quarter - last_q) * 60 / last_bpm

    out, quarter = [], 0.0
    for step in steps:
        start, end = seconds(quarter), seconds(quarter + step.quarters)
        out.append((start, end, step.pitch or 0, step.lyric if step.pitch is not None else "SP"))
        quarter += step.quarters
    return out


def write_midi_song(path: Path, steps=SONG, tempos=SONG_TEMPOS) -> Path:
    notes, tick = [], 0
    for step in steps:
        length = round(step.quarters * TICKS_PER_BEAT)
        if step.pitch is not None:
            notes.append(N(tick, tick + length, step.pitch, step.lyric))
        tick += length
    metas = [Meta(round(q * TICKS_PER_BEAT), "set_tempo", round(60e6 / bpm)) for q, bpm in tempos[1:]]
    return write_melody(path, notes, tempo=round(60e6 / tempos[0][1]), metas=metas)


def music21_song(steps=SONG, tempos=SONG_TEMPOS, second_part: bool = False):
    """A music21 Score of the song (melisma notes under a slur, without a lyric)."""
    import music21

    part = music21.stream.Part()
    part.partName = "Voice"
    quarter, slur_notes, elements = 0.0, [], []
    for at, bpm in tempos:
        part.insert(at, music21.tempo.MetronomeMark(number=bpm))
    for step in steps:
        element = music21.note.Rest(quarterLength=step.quarters) if step.pitch is None else music21.note.Note(step.pitch, quarterLength=step.quarters)
        if step.pitch is not None and step.lyric != "-":
            element.lyric = step.lyric
        part.insert(quarter, element)
        elements.append((step, element))
        quarter += step.quarters
    for index, (step, element) in enumerate(elements):
        if step.lyric == "-":
            slur_notes.append((elements[index - 1][1], element))
    for first, last in slur_notes:
        part.insert(0, music21.spanner.Slur(first, last))
    score = music21.stream.Score()
    score.insert(0, part)
    if second_part:
        piano = music21.stream.Part()
        piano.partName = "Piano"
        piano.insert(0, music21.note.Note(48, quarterLength=quarter))
        score.insert(0, piano)
    return score


def write_musicxml_song(path: Path, steps=SONG, tempos=SONG_TEMPOS, second_part: bool = False) -> Path:
    """``.musicxml`` or compressed ``.mxl`` (by the suffix), written by music21."""
    score = music21_song(steps, tempos, second_part)
    fmt = "mxl" if Path(path).suffix == ".mxl" else "musicxml"
    written = Path(score.makeNotation().write(fmt, fp=str(path)))
    assert written == Path(path), written
    return written


def write_ust_song(path: Path, steps=SONG, tempos=SONG_TEMPOS, encoding: str = "utf-8") -> Path:
    """A UST written by utaupy: R rests, '-' melisma, the global tempo and per-note Tempo= changes."""
    import utaupy.ust

    ust = utaupy.ust.Ust()
    ust.setting["Tempo"] = tempos[0][1]
    changes = dict(tempos[1:])
    quarter = 0.0
    for index, step in enumerate(steps):
        note = utaupy.ust.Note(tag=f"[#{index:04d}]")
        note.lyric = "R" if step.pitch is None else step.lyric
        note.notenum = step.pitch or 60
        note.length = round(step.quarters * 480)
        if quarter in changes:
            note["Tempo"] = changes[quarter]
        ust.notes.append(note)
        quarter += step.quarters
    ust.write(str(path), encoding=encoding)
    return Path(path)


def ustx_project(steps=SONG, tempos=SONG_TEMPOS, continuation: str = "+~") -> dict:
    """An OpenUtau 0.6-style project: one track, one part (at bar 1), melisma as `continuation`."""
    notes, tick = [], 0
    for step in steps:
        length = round(step.quarters * 480)
        if step.pitch is not None:
            lyric = continuation if step.lyric == "-" else step.lyric
            notes.append({"position": tick, "duration": length, "tone": step.pitch, "lyric": lyric, "pitch": {"data": [], "snap_first": True}})
        tick += length
    return {
        "name": "test", "ustx_version": "0.6", "resolution": 480, "bpm": tempos[0][1],
        "beat_per_bar": 4, "beat_unit": 4,
        "time_signatures": [{"bar_position": 0, "beat_per_bar": 4, "beat_unit": 4}, {"bar_position": 1, "beat_per_bar": 3, "beat_unit": 4}],
        "tempos": [{"position": round(q * 480), "bpm": bpm} for q, bpm in tempos],
        "tracks": [{"track_name": "Track1", "phonemizer": "OpenUtau.Core.DefaultPhonemizer", "mute": False}],
        "voice_parts": [{"name": "Part1", "track_no": 0, "position": 0, "duration": tick, "notes": notes}],
        "wave_parts": [],
    }  # fmt: skip


def write_ustx_song(path: Path, steps=SONG, tempos=SONG_TEMPOS, project: dict | None = None) -> Path:
    Path(path).write_text(yaml.safe_dump(project or ustx_project(steps, tempos), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return Path(path)


def write_ds(path: Path, segments: list[dict]) -> Path:
    Path(path).write_text(json.dumps(segments, ensure_ascii=False, indent=1), encoding="utf-8")
    return Path(path)


def ds_segment(offset: float, notes: list[tuple[str, float, int]], words: str, phonemes: list[tuple[str, float]] | None = None, f0: tuple[float, list[float]] | None = None) -> dict:
    """One DS segment: notes as (name, seconds, slur), words as 'text'; phonemes and (timestep, values) optional."""
    segment = {
        "offset": offset,
        "text": words,
        "note_seq": " ".join(n for n, _, _ in notes),
        "note_dur": " ".join(f"{d:g}" for _, d, _ in notes),
        "note_slur": " ".join(str(s) for _, _, s in notes),
    }
    if phonemes:
        segment["ph_seq"] = " ".join(p for p, _ in phonemes)
        segment["ph_dur"] = " ".join(f"{d:g}" for _, d in phonemes)
    if f0:
        segment["f0_timestep"] = str(f0[0])
        segment["f0_seq"] = " ".join(f"{v:.1f}" for v in f0[1])
    return segment
