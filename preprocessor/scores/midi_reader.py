"""The score reader for inference: a MIDI file into a monophonic list of `preprocessor.score.Note`.

Two inputs are accepted:
- a MIDI file whose notes carry Korean lyrics (``lyrics`` meta events; when no track has any, ``text``
  meta events that sit on note onsets, as in karaoke files);
- a MIDI file without lyrics plus a Hangul text file (`read_lyrics_lines`): one syllable per note,
  lines are phrases. This is the form of the early CSD release (`read_csd_early_score`).

The rules, each applied in one place below:
- Text bytes. mido decodes meta text with a module-global charset (``mido.midifiles.meta._charset``,
  set by ``MidiFile(charset=...)`` through a context manager without ``try/finally``, so a failed decode
  would leave it changed). The file is therefore read with ``latin-1``, which maps every byte to one
  character and cannot fail, and the global is restored in a ``finally``; the raw bytes are recovered
  with ``text.encode("latin-1")`` and decoded here, with one encoding for all lyric events of the
  file (`preprocessor.scores.text_encoding`: UTF-8 or CP949, a superset of EUC-KR, the encoding of
  older Korean files; per event, 345 CP949 syllables would pass as wrong UTF-8), else a
  `UserInputError` naming the first event each encoding fails on. Lyrics text files likewise.
- Onset tolerance. A lyric belongs to the note whose onset is nearest, within ``ticks_per_beat / 32``
  ticks (a 128th note; at least 1 tick). The same tolerance decides when two notes "start together".
- Track choice. The lyric track is the track with the most lyric events (ties: a track with notes,
  then the lowest index). The melody is that track's notes if it has any, else the notes of the only
  track with (non-drum) notes; ``track=N`` names the melody track. Drum notes (MIDI channel 10, i.e.
  channel index 9) are never melody.
- Time. Ticks become seconds through the file's tempo map (all ``set_tempo`` events of a type-0/1
  file, 120 bpm until the first); bar:beat positions in messages use the time-signature map (4/4
  until the first ``time_signature``).
- One voice. Notes starting within the onset tolerance of each other form a chord; a note starting
  while the previous one still sounds overlaps it. A small overlap is legato, not polyphony: when the
  later note also ends later and the overlap is shorter than both ``legato_max_overlap_seconds``
  (50 ms) and 30 % of the earlier note, the earlier note is clipped to end where the later starts
  (real CSD MIDIs have such 1-19 ms tails). A same-pitch overlap is a re-strike (the earlier note is
  cut) and an exact duplicate is merged, both with a warning. Any other overlap is an error with
  ``monophonic="strict"``; with ``monophonic="top"`` the highest note wins: in a chord the highest
  note is kept with its own length, a higher note cuts a sounding lower one at its onset, and a lower
  note that starts under a sounding higher one is dropped entirely (even if it outlasts it).
- Lyrics. Whitespace and punctuation (Unicode category P*, except ``-``) are removed and the text is
  NFC-normalized; nothing else is validated here (the Korean frontend does that). ``-``/``+`` mark a
  melisma and are kept as lyric ``-``/``+``. A lyric of several Hangul syllables (``사랑``) is spread
  one per note over the following notes, which must have no lyric of their own. A note whose lyric is
  ``SP`` or ``AP`` becomes a rest/breath (pitch 0). Karaoke line marks start a phrase: a lyric that
  begins with ``/`` or ``\\``, or a note after a lyric that ends in a line break.
- Rests. A gap between notes longer than ``max(1 ms, min_rest_seconds)`` becomes an ``SP`` note
  (pitch 0); a shorter gap is absorbed by extending the earlier note. A leading rest covers 0 to the
  first note, so the score spans 0 .. the end of the last note with no holes.
"""
from __future__ import annotations

import bisect
import struct
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import mido
import mido.midifiles.meta as mido_meta

from config.errors import UserInputError
from preprocessor.score import BREATH, CONTINUATION_MARKS, REST, Note, validate_notes
from preprocessor.scores.text_encoding import choose_encoding, decode_file_text
from preprocessor.text.korean import is_hangul_syllable

GAP_EPSILON_SECONDS = 0.001  # gaps up to this are rounding noise, never a rest
ONSET_TOLERANCE_DIVISOR = 32  # tolerance = ticks_per_beat / 32 (a 128th note)
LEGATO_MAX_FRACTION = 0.3  # a legato overlap is under 30 % of the earlier note...
LEGATO_MAX_OVERLAP_SECONDS = 0.05  # ...and under 50 ms
DRUM_CHANNEL = 9  # General MIDI channel 10
DEFAULT_TEMPO = 500_000  # microseconds per beat (120 bpm), the MIDI default
MAX_LISTED = 5  # notes listed in an error message
MONOPHONIC_MODES = ("strict", "top")
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class F0Curve:
    """A pitch curve a score file carries (DiffSinger's ``f0_seq``): ``hz[i]`` at ``start + i * step`` seconds (0 = unvoiced)."""

    start: float
    step: float
    hz: tuple[float, ...]


@dataclass(frozen=True)
class TimedPhoneme:
    """A phoneme with its time, as a score file gives it (DiffSinger's ``ph_seq``/``ph_dur``), seconds from the song start."""

    start: float
    end: float
    phoneme: str


@dataclass(frozen=True)
class Score:
    """A monophonic score read for inference.

    notes: sung notes and ``SP`` rests, contiguous from time 0 to `total_seconds`.
    locations: ``"bar:beat"`` (1-based) of each note's start, parallel to `notes`, for messages.
    phrase_starts: indices into `notes` of the first note of each phrase (lyric-file lines or karaoke
        line marks); empty when the source marks no phrases.
    source: the score file; lyrics_source: the lyrics text file, if one was given (MIDI only).
    melody_track: the MIDI track, MusicXML part or USTX track the notes came from (0 for one-track formats).
    clipped_overlaps: how many legato overlaps were clipped.
    warnings: one line each, for the user (ignored tracks, dropped notes, clipped overlaps ...).
    f0_curves, phonemes: what a DS file gives besides notes (empty for the other formats).
    """

    notes: tuple[Note, ...]
    locations: tuple[str, ...]
    phrase_starts: tuple[int, ...]
    source: Path
    lyrics_source: Path | None
    melody_track: int
    total_seconds: float
    clipped_overlaps: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    f0_curves: tuple["F0Curve", ...] = field(default_factory=tuple)
    phonemes: tuple["TimedPhoneme", ...] = field(default_factory=tuple)

    @property
    def sung_notes(self) -> tuple[Note, ...]:
        return tuple(note for note in self.notes if not note.is_rest)


# ---------------------------------------------------------------------------------------------
# Lyrics text files


def read_lyrics_lines(path: Path) -> list[list[str]]:
    """The syllables of a Hangul lyrics file, one list per non-blank line (a line is a phrase).

    Every character is one note except whitespace and punctuation (category P*, ``-`` excepted);
    ``-``/``+`` are melisma marks, each one note. Text is NFC-normalized. UTF-8 (with or without a
    BOM) or CP949.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: lyrics file not found; pass an existing Hangul text file (one syllable per note, one phrase per line)")
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    text = decode_file_text([raw], path, lambda _: "the file", "save the lyrics file as UTF-8").texts[0]
    lines = [_lyric_characters(line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise UserInputError(f"{path}: no lyrics in the file; write one Hangul syllable per note, one phrase per line")
    return lines


def _lyric_characters(text: str) -> list[str]:
    """NFC characters of `text` without whitespace and punctuation (``-`` is a melisma mark, kept)."""
    text = unicodedata.normalize("NFC", text)
    return [c for c in text if not c.isspace() and not (unicodedata.category(c).startswith("P") and c != "-")]


def _lyric_tokens(text: str) -> list[str]:
    """The syllables one lyric event puts on consecutive notes (usually one)."""
    characters = _lyric_characters(text)
    joined = "".join(characters)
    if not joined:
        return []
    if joined in (REST, BREATH):
        return [joined]
    if all(is_hangul_syllable(c) or c in CONTINUATION_MARKS for c in characters):
        return characters
    return [joined]  # not Hangul: one note's lyric, left for the frontend to judge


def _decode_bytes(raw: bytes) -> str | None:
    decoded = choose_encoding([raw])
    return decoded.texts[0] if decoded else None


# ---------------------------------------------------------------------------------------------
# MIDI parsing


class _Timeline:
    """Ticks to seconds (tempo map) and to ``"bar:beat"`` (time-signature map) for one MIDI file."""

    def __init__(self, ticks_per_beat: int, tempos: list[tuple[int, int]], signatures: list[tuple[int, int, int]]):
        self.ticks_per_beat = ticks_per_beat
        self._ticks, self._seconds, self._seconds_per_tick = [0], [0.0], [DEFAULT_TEMPO / 1e6 / ticks_per_beat]
        for tick, tempo in sorted(tempos, key=lambda item: item[0]):  # stable: file order within a tick
            at = self.seconds(tick)
            if tick == self._ticks[-1]:
                self._seconds_per_tick[-1] = tempo / 1e6 / ticks_per_beat
            else:
                self._ticks.append(tick)
                self._seconds.append(at)
                self._seconds_per_tick.append(tempo / 1e6 / ticks_per_beat)
        # Time-signature segments: (start tick, ticks per bar, ticks per beat, bar number at start).
        self._bars: list[tuple[int, float, float, int]] = [(0, 4.0 * ticks_per_beat, float(ticks_per_beat), 1)]
        for tick, numerator, denominator in sorted(signatures, key=lambda item: item[0]):
            beat = ticks_per_beat * 4.0 / denominator
            start, bar_ticks, _, bar = self._bars[-1]
            if tick == start:
                self._bars[-1] = (start, numerator * beat, beat, bar)
                continue
            elapsed = (tick - start) / bar_ticks
            # A change in the middle of a bar closes that bar; the new metre starts a new one.
            new_bar = bar + int(elapsed) + (0 if float(elapsed).is_integer() else 1)
            self._bars.append((tick, numerator * beat, beat, new_bar))
        self._bar_starts = [segment[0] for segment in self._bars]

    def seconds(self, tick: int) -> float:
        index = bisect.bisect_right(self._ticks, tick) - 1
        return self._seconds[index] + (tick - self._ticks[index]) * self._seconds_per_tick[index]

    def location(self, tick: int) -> str:
        index = bisect.bisect_right(self._bar_starts, tick) - 1
        start, bar_ticks, beat_ticks, bar = self._bars[index]
        bars, within = divmod(tick - start, bar_ticks)
        beat = f"{1 + within / beat_ticks:.2f}".rstrip("0").rstrip(".")
        return f"{bar + int(bars)}:{beat}"

    def where(self, tick: int) -> str:
        """``bar:beat 3:2 (2.500 s)`` for messages."""
        return f"bar:beat {self.location(tick)} ({self.seconds(tick):.3f} s)"


Timeline = _Timeline  # the tempo and bar:beat maps, shared by the UST/USTX readers


@dataclass(frozen=True)
class _RawNote:
    start: int  # ticks
    end: int
    pitch: int


@dataclass(frozen=True)
class _TextEvent:
    tick: int
    raw: bytes  # the meta event's bytes as stored in the file


@dataclass
class _Track:
    index: int
    name: str
    notes: list[_RawNote]
    drum_notes: int
    lyrics: list[_TextEvent]
    texts: list[_TextEvent]
    unclosed: int
    zero_length: int

    @property
    def label(self) -> str:
        return f"track {self.index}" + (f" ({self.name!r})" if self.name else "")


class _Midi(NamedTuple):
    tracks: list[_Track]
    timeline: _Timeline
    tolerance: int  # onset tolerance in ticks


def _load_midi(path: Path) -> mido.MidiFile:
    if not path.is_file():
        raise UserInputError(f"{path}: MIDI file not found; check the path")
    saved_charset = mido_meta._charset  # mido's own context manager does not restore it on errors
    try:
        return mido.MidiFile(path, charset="latin-1")
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, struct.error) as error:
        detail = "the file ends too early" if isinstance(error, EOFError) else str(error) or type(error).__name__
        raise UserInputError(f"{path}: not a readable MIDI file ({detail}); export the score as a standard MIDI file (.mid)") from None
    finally:
        mido_meta._charset = saved_charset


def _parse_midi(path: Path, midi: mido.MidiFile) -> _Midi:
    if midi.type == 2:
        raise UserInputError(f"{path}: MIDI type 2 (independent sequences) is not supported; save it as MIDI type 0 or 1")
    if midi.ticks_per_beat <= 0:
        raise UserInputError(f"{path}: SMPTE time division is not supported; save the MIDI with beat-based (PPQ) timing")
    tempos: list[tuple[int, int]] = []
    signatures: list[tuple[int, int, int]] = []
    tracks = []
    for index, track in enumerate(midi.tracks):
        parsed = _parse_track(index, track, tempos, signatures)
        tracks.append(parsed)
    for tick, tempo in tempos:
        if tempo <= 0:
            raise UserInputError(f"{path}: a set_tempo event at tick {tick} has tempo {tempo}; fix the tempo in the MIDI editor")
    return _Midi(tracks, _Timeline(midi.ticks_per_beat, tempos, signatures), max(1, round(midi.ticks_per_beat / ONSET_TOLERANCE_DIVISOR)))


def _parse_track(index: int, track: mido.MidiTrack, tempos: list, signatures: list) -> _Track:
    """Notes (paired first-in-first-out per channel and pitch), lyric and text events of one track."""
    tick, name = 0, ""
    open_notes: dict[tuple[int, int], list[int]] = {}
    notes: list[_RawNote] = []
    lyrics, texts = [], []
    drum_notes = zero_length = 0
    for message in track:
        tick += message.time
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            open_notes.setdefault((message.channel, message.note), []).append(tick)
        elif kind in ("note_off", "note_on"):
            starts = open_notes.get((message.channel, message.note))
            if not starts:
                continue  # a note-off without a note-on: nothing to close
            start = starts.pop(0)
            if message.channel == DRUM_CHANNEL:
                drum_notes += 1
            elif tick == start:
                zero_length += 1
            else:
                notes.append(_RawNote(start, tick, message.note))
        elif kind == "lyrics":
            lyrics.append(_TextEvent(tick, message.text.encode("latin-1")))
        elif kind == "text":
            texts.append(_TextEvent(tick, message.text.encode("latin-1")))
        elif kind == "set_tempo":
            tempos.append((tick, message.tempo))
        elif kind == "time_signature":
            signatures.append((tick, message.numerator, message.denominator))
        elif kind == "track_name" and not name:
            raw = message.name.encode("latin-1")
            name = (_decode_bytes(raw) or raw.decode("latin-1")).strip()
    unclosed = 0
    for (channel, pitch), starts in open_notes.items():
        for start in starts:  # a note still held at the end of the track ends there
            unclosed += 1
            if channel != DRUM_CHANNEL and tick > start:
                notes.append(_RawNote(start, tick, pitch))
            elif channel == DRUM_CHANNEL:
                drum_notes += 1
    return _Track(index, name, notes, drum_notes, lyrics, texts, unclosed, zero_length)


def _has_text(event: _TextEvent) -> bool:
    return bool(event.raw.strip())


# ---------------------------------------------------------------------------------------------
# Track choice


class _Selection(NamedTuple):
    melody: _Track
    lyric_events: list[_TextEvent]
    lyric_kind: str  # "lyrics", "text" or "file"
    lyric_track: _Track | None
    warnings: list[str]


def _select(path: Path, midi: _Midi, track: int | None, use_midi_lyrics: bool) -> _Selection:
    tracks = midi.tracks
    melodic = [t for t in tracks if t.notes]
    if not melodic:
        if any(t.drum_notes for t in tracks):
            raise UserInputError(f"{path}: only drum notes (MIDI channel 10); the melody must be on another channel")
        raise UserInputError(f"{path}: the MIDI has no notes; write the melody as notes (one per syllable)")
    warnings: list[str] = []
    if track is not None and not 0 <= track < len(tracks):
        raise UserInputError(f"{path}: there is no track {track} (the file has tracks 0..{len(tracks) - 1}); {_track_list(melodic)}")
    if track is not None and not tracks[track].notes:
        raise UserInputError(f"{path}: {tracks[track].label} has no (non-drum) notes; pick another track: {_track_list(melodic)}")

    with_lyrics = [t for t in tracks if any(map(_has_text, t.lyrics))]
    if not use_midi_lyrics:
        if with_lyrics:
            warnings.append(f"{path}: lyric events in the MIDI were ignored; the lyrics file gives the lyrics")
        melody = tracks[track] if track is not None else _only_melodic(path, melodic, "no track carries lyrics")
        return _Selection(melody, [], "file", None, warnings + _ignored(melodic, melody))

    if with_lyrics:
        kind = "lyrics"
        count = {t.index: sum(map(_has_text, t.lyrics)) for t in with_lyrics}
        lyric_track = max(with_lyrics, key=lambda t: (count[t.index], bool(t.notes), -t.index))
        if track is not None:
            melody = tracks[track]
            if count.get(track):
                lyric_track = melody
        elif lyric_track.notes:
            melody = lyric_track
        else:
            melody = _only_melodic(path, melodic, f"the lyrics ({lyric_track.label}) are in a track without notes")
        others = [t.label for t in with_lyrics if t is not lyric_track]
        if others:
            warnings.append(f"{path}: lyric events in {', '.join(others)} were ignored; the lyrics of {lyric_track.label} were used")
        events = [e for e in lyric_track.lyrics if _has_text(e)]
        return _Selection(melody, events, kind, lyric_track, warnings + _ignored(melodic, melody))

    # No lyric events anywhere: text events on note onsets stand in (karaoke files). Title and
    # header texts ("@T...") and texts between notes are not lyrics.
    texts = [e for t in tracks for e in t.texts if _has_text(e) and not e.raw.lstrip().startswith(b"@")]
    texts.sort(key=lambda e: e.tick)
    if track is not None:
        melody = tracks[track]
    elif len(melodic) == 1:
        melody = melodic[0]
    else:
        hits = {t.index: len(_on_onsets(texts, t.notes, midi.tolerance)) for t in melodic}
        best = max(melodic, key=lambda t: (hits[t.index], -t.index))
        if hits[best.index] == 0:
            raise UserInputError(
                f"{path}: the MIDI has no lyrics and several tracks with notes ({_track_list(melodic)}); "
                f"add lyric events to the melody, or pass a lyrics file and the melody track (--track N)"
            )
        melody = best
    events = _on_onsets(texts, melody.notes, midi.tolerance)
    return _Selection(melody, events, "text", None, warnings + _ignored(melodic, melody))


def _on_onsets(events: list[_TextEvent], notes: list[_RawNote], tolerance: int) -> list[_TextEvent]:
    onsets = sorted(n.start for n in notes)
    return [e for e in events if _nearest(onsets, e.tick, tolerance) is not None]


def _only_melodic(path: Path, melodic: list[_Track], why: str) -> _Track:
    if len(melodic) == 1:
        return melodic[0]
    raise UserInputError(f"{path}: {why} and several tracks have notes ({_track_list(melodic)}); name the melody track (track=N, --track N)")


def _track_list(tracks: list[_Track]) -> str:
    return "tracks with notes: " + ", ".join(f"{t.label} with {len(t.notes)} notes" for t in tracks)


def _ignored(melodic: list[_Track], melody: _Track) -> list[str]:
    others = [t for t in melodic if t is not melody]
    if not others:
        return []
    return [f"melody from {melody.label}; ignored the notes of " + ", ".join(f"{t.label} ({len(t.notes)} notes)" for t in others)]


# ---------------------------------------------------------------------------------------------
# One voice


class _Voice(NamedTuple):
    notes: list[_RawNote]  # sorted, non-overlapping
    dropped_onsets: list[int]  # ticks of notes dropped by monophonic="top"
    clipped: int
    warnings: list[str]


def _make_monophonic(path: Path, track: _Track, midi: _Midi, mode: str, legato_max_seconds: float) -> _Voice:
    timeline, tolerance = midi.timeline, midi.tolerance
    ordered = sorted(track.notes, key=lambda n: (n.start, -n.pitch, -n.end))
    kept: list[_RawNote] = []
    dropped: list[int] = []
    clipped_ticks: list[int] = []
    clipped_ms: list[float] = []
    restrikes = duplicates = 0
    for note in ordered:
        if not kept:
            kept.append(note)
            continue
        previous = kept[-1]
        if note.start - previous.start <= tolerance:  # starting together: a chord (or a duplicate)
            if note.pitch == previous.pitch:
                duplicates += 1
                kept[-1] = replace(previous, end=max(previous.end, note.end))
                continue
            if mode == "strict":
                chord = sorted({n.pitch for n in ordered if abs(n.start - previous.start) <= tolerance})
                raise UserInputError(
                    f"{path}: {track.label}: notes start together at {timeline.where(previous.start)} with pitches "
                    f"{', '.join(map(str, chord))} (a chord); keep one note per onset in the melody, or pass "
                    f"monophonic='top' (--monophonic top) to keep the highest"
                )
            if note.pitch > previous.pitch:
                kept[-1] = note
                dropped.append(previous.start)
            else:
                dropped.append(note.start)
            continue
        if note.start >= previous.end:
            kept.append(note)
            continue
        overlap = timeline.seconds(previous.end) - timeline.seconds(note.start)
        previous_seconds = timeline.seconds(previous.end) - timeline.seconds(previous.start)
        if note.end > previous.end and overlap < min(legato_max_seconds, LEGATO_MAX_FRACTION * previous_seconds):
            kept[-1] = replace(previous, end=note.start)  # legato: the earlier note's tail is cut
            kept.append(note)
            clipped_ticks.append(note.start)
            clipped_ms.append(overlap * 1000)
            continue
        if note.pitch == previous.pitch:
            kept[-1] = replace(previous, end=note.start)  # a re-strike of the held pitch
            kept.append(note)
            restrikes += 1
            continue
        if mode == "strict":
            raise UserInputError(
                f"{path}: {track.label}: pitch {note.pitch} starts at {timeline.where(note.start)} while pitch "
                f"{previous.pitch} (from {timeline.where(previous.start)}) still sounds for {overlap:.3f} s; "
                f"make the melody one voice, or pass monophonic='top' (--monophonic top) to keep the highest note"
            )
        if note.pitch > previous.pitch:
            kept[-1] = replace(previous, end=note.start)
            kept.append(note)
        else:
            dropped.append(note.start)

    warnings = []
    if track.zero_length:
        warnings.append(f"{path}: {track.label}: ignored {track.zero_length} zero-length notes")
    if track.unclosed:
        warnings.append(f"{path}: {track.label}: {track.unclosed} notes had no note-off and end at the end of the track")
    if duplicates:
        warnings.append(f"{path}: {track.label}: merged {duplicates} duplicated notes (same pitch, same onset)")
    if restrikes:
        warnings.append(f"{path}: {track.label}: {restrikes} notes overlapped a note of the same pitch; the earlier was cut at the re-strike")
    if clipped_ticks:
        places = ", ".join(timeline.location(t) for t in clipped_ticks[:MAX_LISTED])
        warnings.append(f"{path}: {track.label}: clipped {len(clipped_ticks)} legato overlaps (up to {max(clipped_ms):.1f} ms) at bar:beat {places}")
    if dropped:
        places = ", ".join(timeline.where(t) for t in sorted(dropped)[:MAX_LISTED])
        warnings.append(f"{path}: {track.label}: monophonic='top' dropped {len(dropped)} lower notes, first at {places}")
    return _Voice(kept, sorted(dropped), len(clipped_ticks), warnings)


# ---------------------------------------------------------------------------------------------
# Lyrics onto notes


class _Lyrics(NamedTuple):
    per_note: list[str]  # one lyric per kept note
    phrase_starts: list[int]  # indices into the kept notes; empty when the source marks none


def _nearest(onsets: list[int], tick: int, tolerance: int) -> int | None:
    """Index of the onset nearest to `tick` within `tolerance` ticks, else None."""
    index = bisect.bisect_left(onsets, tick)
    candidates = [i for i in (index - 1, index) if 0 <= i < len(onsets) and abs(onsets[i] - tick) <= tolerance]
    return min(candidates, key=lambda i: abs(onsets[i] - tick)) if candidates else None


def _lyrics_from_events(path: Path, selection: _Selection, voice: _Voice, midi: _Midi) -> _Lyrics:
    timeline, notes = midi.timeline, voice.notes
    onsets = [n.start for n in notes]
    where_from = selection.lyric_track.label if selection.lyric_track else "text events"
    own = [""] * len(notes)
    line_start = [False] * len(notes)
    line_end = [False] * len(notes)
    events = selection.lyric_events
    decoded = decode_file_text(
        [event.raw for event in events], path, lambda i: f"{where_from}, the lyric at {timeline.where(events[i].tick)}",
        "re-enter the lyrics in one encoding (UTF-8) in the MIDI editor",
    )
    for event, text in zip(events, decoded.texts):
        if not _lyric_tokens(text):
            continue  # blank or punctuation only: a spacer, not a syllable
        index = _nearest(onsets, event.tick, midi.tolerance)
        if index is None:
            if selection.lyric_kind == "text":
                continue  # a comment between notes, not a lyric
            hint = ""
            if _nearest(voice.dropped_onsets, event.tick, midi.tolerance) is not None:
                hint = " (the note there was dropped by monophonic='top')"
            raise UserInputError(
                f"{path}: {where_from}: lyric {text.strip()!r} at {timeline.where(event.tick)} is not on a note onset"
                f"{hint} (tolerance {midi.tolerance} ticks); move it onto the onset of its note"
            )
        own[index] += text
        stripped = text.strip(" \t")
        if stripped[:1] in ("/", "\\"):
            line_start[index] = True
        if stripped[-1:] in ("\r", "\n"):
            line_end[index] = True

    per_note: list[str | None] = [None] * len(notes)
    ends_phrase = [False] * len(notes)
    for index, text in enumerate(own):
        tokens = _lyric_tokens(text) if text else []
        for offset, token in enumerate(tokens):
            target = index + offset
            if target >= len(notes):
                raise UserInputError(
                    f"{path}: {where_from}: lyric {text.strip()!r} at {timeline.where(notes[index].start)} has "
                    f"{len(tokens)} syllables but only {len(notes) - index} notes remain; put one syllable on each note"
                )
            if offset > 0 and own[target]:
                raise UserInputError(
                    f"{path}: {where_from}: lyric {text.strip()!r} at {timeline.where(notes[index].start)} has "
                    f"{len(tokens)} syllables, but note {target + 1} at {timeline.where(notes[target].start)} has its "
                    f"own lyric {own[target].strip()!r}; put one syllable on each note"
                )
            per_note[target] = token
        if tokens and line_end[index]:
            ends_phrase[index + len(tokens) - 1] = True

    missing = [i for i, lyric in enumerate(per_note) if lyric is None]
    if missing:
        listed = ", ".join(f"note {i + 1} at {timeline.where(notes[i].start)}" for i in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        source = "has no lyric events" if not selection.lyric_events else f"has lyrics from {where_from}, but"
        raise UserInputError(
            f"{path}: {selection.melody.label} {source} {len(missing)} of {len(notes)} notes lack a lyric: {listed}{more}; "
            f"put one Hangul syllable (or '-' for a melisma) on every note, or pass a lyrics text file (--lyrics song.txt)"
        )
    phrase_starts: list[int] = []
    if any(line_start) or any(ends_phrase):
        phrase_starts = [i for i in range(len(notes)) if i == 0 or line_start[i] or ends_phrase[i - 1]]
    return _Lyrics([lyric for lyric in per_note if lyric is not None], phrase_starts)


def _lyrics_from_lines(midi_path: Path, lyrics_path: Path, lines: list[list[str]], voice: _Voice, midi: _Midi, rest_gap: float) -> _Lyrics:
    notes, timeline = voice.notes, midi.timeline
    syllables = [s for line in lines for s in line]
    if len(syllables) != len(notes):
        hint = _where_lines_part(lines, notes, timeline, rest_gap)
        raise UserInputError(
            f"{lyrics_path}: {len(syllables)} syllables but {midi_path.name} has {len(notes)} notes; {hint}; "
            f"give every note exactly one syllable (write a melisma as a repeated vowel, e.g. 바알, or as '-')"
        )
    starts, position = [], 0
    for line in lines:
        starts.append(position)
        position += len(line)
    return _Lyrics(syllables, starts)


def _where_lines_part(lines: list[list[str]], notes: list[_RawNote], timeline: _Timeline, rest_gap: float) -> str:
    """A hint for a count mismatch: the first lyric line whose end does not meet a rest in the MIDI.

    Phrase ends usually fall on rests, so while the counts still agree every line end lands on a
    rest (or on the last note); the first line that does not is the likely culprit.
    """
    rest_after = {len(notes) - 1} | {
        i for i in range(len(notes) - 1) if timeline.seconds(notes[i + 1].start) - timeline.seconds(notes[i].end) > rest_gap
    }
    end = 0
    for number, line in enumerate(lines, start=1):
        end += len(line)
        quoted = repr("".join(line)[:30])
        if end > len(notes):
            return f"line {number} ({quoted}) runs past the last note"
        if end - 1 not in rest_after:
            if number == 1:
                return "the place where they part is unknown (the line ends do not fall on rests in the MIDI)"
            return (
                f"line {number} ({quoted}) is the first whose end does not fall on a rest in the MIDI "
                f"(its last syllable lands on note {end} at {timeline.where(notes[end - 1].start)})"
            )
    return f"every line ends on a rest, but the MIDI goes on for {len(notes) - end} notes after the last syllable (from {timeline.where(notes[end].start)})"


# ---------------------------------------------------------------------------------------------
# Assembly


def _assemble(voice: _Voice, lyrics: _Lyrics, timeline: _Timeline, rest_gap: float) -> tuple[list[Note], list[str], list[int]]:
    """Seconds-based notes with SP rests in the gaps; returns (notes, locations, phrase starts)."""
    out: list[Note] = []
    locations: list[str] = []
    index_of: list[int] = []  # kept-note index -> its index in `out`
    previous_end, previous_end_tick = 0.0, 0
    for raw, lyric in zip(voice.notes, lyrics.per_note):
        start, end = timeline.seconds(raw.start), timeline.seconds(raw.end)
        gap = start - previous_end
        if gap > rest_gap:
            _append(out, locations, Note(previous_end, start, 0, REST), timeline.location(previous_end_tick))
        elif gap > 0 and out:  # a hair of a gap: the earlier note holds on
            out[-1] = Note(out[-1].start, start, out[-1].pitch, out[-1].lyric)
        elif gap > 0:  # the first note starts a hair after 0
            start = 0.0
        pitch = 0 if lyric in (REST, BREATH) else raw.pitch
        _append(out, locations, Note(start, end, pitch, lyric), timeline.location(raw.start))
        index_of.append(len(out) - 1)
        previous_end, previous_end_tick = end, raw.end
    return out, locations, [index_of[i] for i in lyrics.phrase_starts]


def _append(out: list[Note], locations: list[str], note: Note, location: str) -> None:
    if note.lyric == REST and out and out[-1].lyric == REST:  # two rests in a row are one rest
        out[-1] = Note(out[-1].start, note.end, 0, REST)
    else:
        out.append(note)
        locations.append(location)


# ---------------------------------------------------------------------------------------------
# Public API


def read_score(
    midi_path: Path,
    lyrics_path: Path | None = None,
    track: int | None = None,
    monophonic: str = "strict",
    min_rest_seconds: float = 0.0,
    *,
    legato_max_overlap_seconds: float = LEGATO_MAX_OVERLAP_SECONDS,
) -> Score:
    """Read a MIDI score (lyrics in the MIDI, or from `lyrics_path`) into a `Score` (see the module doc).

    track: the melody track index (default: chosen from where the lyrics are).
    monophonic: ``"strict"`` (overlapping notes are an error) or ``"top"`` (keep the highest voice).
    min_rest_seconds: gaps up to this length (at least 1 ms) are absorbed into the earlier note
        instead of becoming ``SP`` rests.
    legato_max_overlap_seconds: the longest overlap clipped as legato (also under 30 % of the note).
    Raises `UserInputError` for every problem with the files.
    """
    if monophonic not in MONOPHONIC_MODES:
        raise ValueError(f"monophonic must be one of {MONOPHONIC_MODES}, got {monophonic!r}")
    if min_rest_seconds < 0 or legato_max_overlap_seconds < 0:
        raise ValueError("min_rest_seconds and legato_max_overlap_seconds must be >= 0")
    midi_path = Path(midi_path)
    lyrics_path = Path(lyrics_path) if lyrics_path is not None else None
    rest_gap = max(GAP_EPSILON_SECONDS, min_rest_seconds)
    lines = read_lyrics_lines(lyrics_path) if lyrics_path is not None else None

    midi = _parse_midi(midi_path, _load_midi(midi_path))
    selection = _select(midi_path, midi, track, use_midi_lyrics=lines is None)
    voice = _make_monophonic(midi_path, selection.melody, midi, monophonic, legato_max_overlap_seconds)
    if lines is None:
        lyrics = _lyrics_from_events(midi_path, selection, voice, midi)
    else:
        lyrics = _lyrics_from_lines(midi_path, lyrics_path, lines, voice, midi, rest_gap)
    notes, locations, phrase_starts = _assemble(voice, lyrics, midi.timeline, rest_gap)
    validate_notes(notes, midi_path, [f"note {i + 1} at bar:beat {where}" for i, where in enumerate(locations)])
    return Score(
        notes=tuple(notes),
        locations=tuple(locations),
        phrase_starts=tuple(phrase_starts),
        source=midi_path,
        lyrics_source=lyrics_path,
        melody_track=selection.melody.index,
        total_seconds=notes[-1].end,
        clipped_overlaps=voice.clipped,
        warnings=tuple(selection.warnings + voice.warnings),
    )


def note_name(pitch: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation, MIDI 60 = middle C)."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def pitch_range_warnings(score: Score, low: int, high: int) -> list[str]:
    """One line per sung note outside the MIDI pitch range ``low..high`` (e.g. the range trained on)."""
    warnings = []
    for index, (note, location) in enumerate(zip(score.notes, score.locations)):
        if note.pitch == 0 or low <= note.pitch <= high:
            continue
        side = "below" if note.pitch < low else "above"
        warnings.append(
            f"{score.source}: note {index + 1} ({note.lyric!r}, pitch {note.pitch} = {note_name(note.pitch)}) at bar:beat "
            f"{location} ({note.start:.3f} s) is {side} the range {low}..{high} ({note_name(low)}..{note_name(high)}); "
            f"transpose the song or expect a poorer voice there"
        )
    return warnings


def csd_early_lyrics_path(midi_path: Path) -> Path:
    """The early CSD release keeps ``<root>/mid/<stem>.mid`` beside ``<root>/txt/<stem>.txt``."""
    midi_path = Path(midi_path)
    return midi_path.parent.parent / "txt" / f"{midi_path.stem}.txt"


def read_csd_early_score(midi_path: Path, lyrics_path: Path | None = None) -> Score:
    """A score of the early CSD release: notes from the MIDI (no lyric events), syllables from the Hangul txt."""
    midi_path = Path(midi_path)
    lyrics_path = Path(lyrics_path) if lyrics_path is not None else csd_early_lyrics_path(midi_path)
    if not lyrics_path.is_file():
        raise UserInputError(f"{lyrics_path}: lyrics file for {midi_path.name} not found; the early CSD layout keeps mid/<song>.mid beside txt/<song>.txt")
    return read_score(midi_path, lyrics_path=lyrics_path)


def list_csd_early_scores(root: Path) -> list[tuple[Path, Path]]:
    """The (MIDI, lyrics) pairs under an early CSD folder (``mid/`` and ``txt/``), sorted by name."""
    root = Path(root)
    midis = sorted((root / "mid").glob("*.mid"))
    if not midis:
        raise UserInputError(f"{root / 'mid'}: no .mid files; point to the early CSD folder that holds mid/ and txt/")
    pairs = []
    for midi in midis:
        text = csd_early_lyrics_path(midi)
        if not text.is_file():
            raise UserInputError(f"{text}: missing; every early CSD score needs mid/{midi.stem}.mid and txt/{midi.stem}.txt")
        pairs.append((midi, text))
    return pairs


def read_melody(midi_path: Path, track: int | None = None, monophonic: str = "top") -> list[Note]:
    """The melody's notes alone (no lyrics needed; lyric ``""``), in seconds: what autotuning to a score reads.

    track: the melody track (default: the only track with notes; an error naming them when several);
    monophonic: as `read_score` (``"top"`` keeps the highest voice of chords).
    """
    if monophonic not in MONOPHONIC_MODES:
        raise ValueError(f"monophonic must be one of {MONOPHONIC_MODES}, got {monophonic!r}")
    midi_path = Path(midi_path)
    midi = _parse_midi(midi_path, _load_midi(midi_path))
    selection = _select(midi_path, midi, track, use_midi_lyrics=False)
    voice = _make_monophonic(midi_path, selection.melody, midi, monophonic, LEGATO_MAX_OVERLAP_SECONDS)
    seconds = midi.timeline.seconds
    return [Note(seconds(note.start), seconds(note.end), note.pitch, "") for note in voice.notes]
