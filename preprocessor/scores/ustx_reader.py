"""OpenUtau projects (``.ustx``, YAML) into the note list every reader gives (`preprocessor.scores.assemble`).

Read by hand on PyYAML's `safe_load`: a USTX file is plain YAML whose layout is short and stable
(``resolution``, ``tempos``/``bpm``, ``time_signatures``, ``tracks``, ``voice_parts`` with ``notes``).
The libraries that read it (libresvip) pull in some thirty packages (pydantic, construct, ...) and
would downgrade a pinned one of this project, for a dozen lines of dictionary walking.

Rules:
- Time: ticks at ``resolution`` per quarter note (480 by default); the tempo map is ``tempos``
  (``position``, ``bpm``; OpenUtau 0.6+) or the single ``bpm`` of older files; ``time_signatures``
  (``bar_position``, ``beat_per_bar``, ``beat_unit``) only place bar:beat in messages.
- A note sits at ``part.position + note.position`` for ``duration`` ticks at MIDI pitch ``tone``.
- Track: ``track=N`` takes the notes of the parts with ``track_no: N``; by default the track with the
  most lyric-bearing notes (a warning names the others that have notes). All parts of the track are
  merged in time; overlapping notes are an error, as in every reader.
- Lyrics: OpenUtau's extension lyrics (``+``, ``+~``, ``+*``, ``-`` ...) continue the previous
  syllable; ``R`` is a rest. Phonemizer prefixes are not interpreted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from config.errors import UserInputError
from preprocessor.scores.assemble import CONTINUATION, TimedNote, build_score, decode_text
from preprocessor.scores.midi_reader import Score, Timeline
from preprocessor.scores.ust_reader import REST_LYRICS, is_continuation_lyric

DEFAULT_RESOLUTION = 480
DEFAULT_BPM = 120.0


def _number(path: Path, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"{path}: {what} is {value!r}, not a number; fix it in OpenUtau or in the file")
    return float(value)


def _load(path: Path) -> dict:
    if not path.is_file():
        raise UserInputError(f"{path}: USTX file not found; check the path")
    text, _ = decode_text(path, path.read_bytes().removeprefix(b"\xef\xbb\xbf"), ("utf-8",), "USTX project")
    try:
        project = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = getattr(error, "problem", None) or type(error).__name__
        raise UserInputError(f"{path}: {place}: not readable YAML ({problem}); the file may be cut short: save the project again in OpenUtau") from None
    if not isinstance(project, dict) or "voice_parts" not in project:
        raise UserInputError(f"{path}: no voice_parts in the file; this is not an OpenUtau project (save it from OpenUtau as .ustx)")
    return project


def _timeline(path: Path, project: dict, resolution: int) -> Timeline:
    tempos = project.get("tempos") or [{"position": 0, "bpm": project.get("bpm", DEFAULT_BPM)}]
    tempo_events = []
    for number, tempo in enumerate(tempos, start=1):
        position = _number(path, tempo.get("position", 0), f"tempo {number}'s position")
        bpm = _number(path, tempo.get("bpm"), f"tempo {number}'s bpm")
        if not bpm > 0:
            raise UserInputError(f"{path}: tempo {number} is {bpm} BPM; give every tempo mark a positive BPM")
        tempo_events.append((position, 60e6 / bpm))
    signatures = project.get("time_signatures") or [
        {"bar_position": 0, "beat_per_bar": project.get("beat_per_bar", 4), "beat_unit": project.get("beat_unit", 4)}
    ]
    signature_events = []
    tick, bar, ticks_per_bar = 0.0, 0, 4 * resolution
    for signature in sorted(signatures, key=lambda s: s.get("bar_position", 0)):
        bar_position = int(_number(path, signature.get("bar_position", 0), "a time signature's bar_position"))
        tick += (bar_position - bar) * ticks_per_bar
        bar = bar_position
        beats = int(_number(path, signature.get("beat_per_bar", 4), "beat_per_bar"))
        unit = int(_number(path, signature.get("beat_unit", 4), "beat_unit"))
        ticks_per_bar = beats * resolution * 4 / unit
        signature_events.append((tick, beats, unit))
    return Timeline(resolution, tempo_events, signature_events)


def read_ustx_score(path: Path, track: int | None = None, monophonic: str = "strict", min_rest_seconds: float = 0.0) -> Score:
    """An OpenUtau project as a `Score` (see the module doc)."""
    path = Path(path)
    project = _load(path)
    resolution = int(_number(path, project.get("resolution", DEFAULT_RESOLUTION), "resolution"))
    if resolution <= 0:
        raise UserInputError(f"{path}: resolution {resolution}; save the project again in OpenUtau")
    timeline = _timeline(path, project, resolution)
    by_track: dict[int, list[tuple[str, dict, int]]] = {}
    for part_number, part in enumerate(project.get("voice_parts") or [], start=1):
        if not isinstance(part, dict):
            raise UserInputError(f"{path}: voice part {part_number} is not a mapping; save the project again in OpenUtau")
        name = f"part {part_number} ({part.get('name', '')!r})"
        offset = int(_number(path, part.get("position", 0), f"{name}'s position"))
        by_track.setdefault(int(part.get("track_no", 0)), []).extend((name, note, offset) for note in part.get("notes") or [])

    def lyric_notes(number: int) -> int:
        return sum(1 for _, note, _ in by_track[number] if str(note.get("lyric", "")).strip() not in ("", *REST_LYRICS) and not is_continuation_lyric(str(note.get("lyric", ""))))

    if not by_track or not any(by_track.values()):
        raise UserInputError(f"{path}: the project has no notes; write the melody in a voice part")
    warnings = []
    if track is None:
        chosen = max(sorted(by_track), key=lambda n: (lyric_notes(n) > 0, lyric_notes(n), len(by_track[n]), -n))
        others = [n for n in sorted(by_track) if n != chosen and by_track[n]]
        if others:
            warnings.append(f"{path}: sang track {chosen}, the one with the most lyrics; ignored track(s) {others} (pass --track N to choose)")
    elif track not in by_track:
        raise UserInputError(f"{path}: --track {track}: the project has note tracks {sorted(by_track)}; pass one of them")
    else:
        chosen = track
    notes = []
    for name, note, offset in by_track[chosen]:
        start_tick = offset + _number(path, note.get("position"), f"track {chosen} {name}: a note's position")
        where_tick = f"track {chosen} {name} note at bar:beat {timeline.location(start_tick)}"
        duration = _number(path, note.get("duration"), f"{where_tick}: duration")
        tone = int(_number(path, note.get("tone"), f"{where_tick}: tone"))
        lyric = str(note.get("lyric", "")).strip()
        if not lyric:
            raise UserInputError(f"{path}: {where_tick} has no lyric; write one Hangul syllable (or + to hold the previous one)")
        if lyric in REST_LYRICS:
            continue
        lyric = CONTINUATION if is_continuation_lyric(lyric) else lyric
        notes.append(TimedNote(timeline.seconds(start_tick), timeline.seconds(start_tick + duration), tone, lyric, where_tick))
    if not notes:
        raise UserInputError(f"{path}: track {chosen} has no sung notes; write one Hangul syllable per note")
    return build_score(path, notes, track=chosen, monophonic=monophonic, min_rest_seconds=min_rest_seconds, warnings=warnings)
