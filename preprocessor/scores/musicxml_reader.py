"""MusicXML (``.musicxml``, ``.xml``, compressed ``.mxl``) into the note list every reader gives.

music21 reads the notation: parts, measures, voices, durations in quarter notes, ties, slurs, chords,
lyrics and tempo marks (``metronomeMarkBoundaries`` covers both ``<metronome>`` and ``<sound tempo>``).
Done here, and why:
- ``<extend/>`` (a lyric held over the following notes) is dropped by music21's parser (a "TODO:
  extend" in ``xmlToM21.xmlToLyric``), so the XML is also walked with ElementTree to learn which
  notes carry one; the two are matched by measure, voice and position in the voice.
- The container and the XML are opened here first (zipfile, ElementTree), so that a truncated or
  broken file is one line with the line number instead of a music21 traceback.
- Tied notes are joined here (a tie start/continue followed by the same pitch) rather than with
  music21's ``stripTies``, which needs the whole part re-made and loses the voice of each note.

Rules:
- Part: ``track=N`` is the N-th part (0-based, in ``<part-list>`` order); by default the part with
  the most lyrics. In it, the voice with the most lyrics is sung (other voices: a warning).
- One lyric per note (the first verse). A note without a lyric continues the previous syllable
  (lyric ``-``) when it is under a slur that started on an earlier note, or when the previous lyric
  has ``<extend/>``; any other lyric-less note is an error naming bar and beat.
- Chords: the top note with ``monophonic="top"``, else an error. Grace notes are skipped.
- Time: quarter notes to seconds through the tempo marks (120 quarter notes per minute until the first).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from config.errors import UserInputError
from preprocessor.scores.assemble import CONTINUATION, TimedNote, build_score
from preprocessor.scores.midi_reader import Score, Timeline

CONTAINER = "META-INF/container.xml"
DEFAULT_QUARTER_BPM = 120.0


def _xml_bytes(path: Path) -> bytes:
    """The score's XML, unzipped from an ``.mxl`` container when it is one."""
    if not path.is_file():
        raise UserInputError(f"{path}: MusicXML file not found; check the path")
    raw = path.read_bytes()
    if not raw.startswith(b"PK"):
        if path.suffix.lower() == ".mxl":
            raise UserInputError(f"{path}: not a compressed MusicXML (.mxl is a zip file); export it again, or name an uncompressed file .musicxml")
        return raw
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
            root = None
            if CONTAINER in names:
                container = ElementTree.fromstring(archive.read(CONTAINER))
                rootfile = container.find(".//{*}rootfile")
                root = rootfile.get("full-path") if rootfile is not None else None
            if root is None:
                root = next((n for n in names if n.lower().endswith((".musicxml", ".xml")) and not n.startswith("META-INF/")), None)
            if root is None or root not in names:
                raise UserInputError(f"{path}: the .mxl archive holds no score ({CONTAINER} names none); export it again from the notation program")
            return archive.read(root)
    except (zipfile.BadZipFile, EOFError, ElementTree.ParseError, KeyError) as error:
        raise UserInputError(f"{path}: not a readable .mxl archive ({error}); the file may be cut short: export it again") from None


def _parse_xml(path: Path, data: bytes) -> ElementTree.Element:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        line, column = error.position
        raise UserInputError(f"{path}: line {line}, column {column}: not well-formed XML; the file may be cut short: export it again as MusicXML") from None
    tag = root.tag.rsplit("}", 1)[-1]
    if tag == "score-timewise":
        raise UserInputError(f"{path}: timewise MusicXML is not supported; export it as (partwise) MusicXML")
    if tag != "score-partwise":
        raise UserInputError(f"{path}: the root element is <{tag}>, not <score-partwise>; this is not a MusicXML score")
    return root


def _extends(root: ElementTree.Element) -> list[list[list[tuple[str, bool]]]]:
    """Per part (in file order, as music21's ``score.parts``; its part ids are not the file's), per measure (in order): (voice, lyric has <extend/>) of each note or rest, chord members left out."""
    out: list[list[list[tuple[str, bool]]]] = []
    for part in root.findall("part"):
        measures = []
        for measure in part.findall("measure"):
            entries = []
            for note in measure.findall("note"):
                if note.find("chord") is not None:
                    continue
                extend = any(e.get("type", "start") != "stop" for lyric in note.findall("lyric")[:1] for e in lyric.findall("extend"))
                entries.append((note.findtext("voice", "1").strip(), extend))
            measures.append(entries)
        out.append(measures)
    return out


def _xml_text(path: Path, data: bytes) -> str:
    """music21 parses text; ElementTree has already checked the bytes, so only the encoding is left."""
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: byte {error.start} is not {encoding.upper()}; export the MusicXML again (UTF-8)") from None


def _tempo_map(boundaries: list[tuple[float, float, object]]) -> Timeline:
    """Quarter-note offsets to seconds (the MIDI reader's tempo map, at one "tick" per quarter note)."""
    tempos = []
    for start, _, mark in boundaries:
        bpm = mark.getQuarterBPM() if mark is not None else None
        tempos.append((float(start), 60e6 / (bpm if bpm and bpm > 0 else DEFAULT_QUARTER_BPM)))
    return Timeline(1, tempos, [])


def _lyric(element) -> str:
    for lyric in element.lyrics:
        if lyric.text and lyric.text.strip():
            return lyric.text.strip()
    return ""


def _where(element) -> str:
    beat = element.beat
    beat_text = f"{float(beat):.2f}".rstrip("0").rstrip(".") if beat == beat else "?"
    return f"bar:beat {element.measureNumber}:{beat_text}"


def read_musicxml_score(path: Path, track: int | None = None, monophonic: str = "strict", min_rest_seconds: float = 0.0) -> Score:
    """A MusicXML score as a `Score` (see the module doc)."""
    import music21  # imported here: it takes about a second, and MIDI-only runs never need it

    path = Path(path)
    data = _xml_bytes(path)
    root = _parse_xml(path, data)
    extends = _extends(root)
    try:
        score = music21.converter.parseData(_xml_text(path, data), format="musicxml")
    except Exception as error:  # music21 raises many types (MusicXMLImportException, ValueError ...) on bad input
        raise UserInputError(f"{path}: music21 cannot read this MusicXML ({type(error).__name__}: {error}); export it again from the notation program") from None
    parts = list(score.parts)
    if not parts:
        raise UserInputError(f"{path}: the score has no parts; write the melody in a part")

    def lyric_count(part) -> int:
        return sum(1 for n in part.recurse().notes if _lyric(n))

    warnings: list[str] = []
    labels = [f"part {i} ({(p.partName or p.id)!r})" for i, p in enumerate(parts)]
    if track is None:
        counts = [lyric_count(p) for p in parts]
        chosen = max(range(len(parts)), key=lambda i: (counts[i], -i))
        if counts[chosen] == 0:
            raise UserInputError(f"{path}: no note in any part has a lyric; write one Hangul syllable under each note (Ctrl+L in MuseScore)")
        others = [labels[i] for i in range(len(parts)) if i != chosen and len(parts[i].recurse().notes)]
        if others:
            warnings.append(f"{path}: sang {labels[chosen]}, the part with lyrics; ignored {', '.join(others)} (pass --track N to choose)")
    elif not 0 <= track < len(parts):
        raise UserInputError(f"{path}: --track {track}: the score has {len(parts)} parts ({', '.join(labels)}); pass 0..{len(parts) - 1}")
    else:
        chosen = track
    part = parts[chosen]
    label = labels[chosen]
    raw_measures = extends[chosen] if chosen < len(extends) else []

    # Notes and rests per voice, in order, each with its <extend/> flag.
    voices: dict[str, list[tuple[object, bool]]] = {}
    for index, measure in enumerate(part.getElementsByClass(music21.stream.Measure)):
        raw = raw_measures[index] if index < len(raw_measures) else []
        groups = [(v.id, list(v.notesAndRests)) for v in measure.voices] or [("1", list(measure.notesAndRests))]
        for voice_id, elements in groups:
            voice_raw = [flag for voice, flag in raw if voice == str(voice_id)] if measure.voices else [flag for _, flag in raw]
            flags = voice_raw if len(voice_raw) == len(elements) else [False] * len(elements)
            voices.setdefault(str(voice_id), []).extend(zip(elements, flags))
    if not any(voices.values()):
        raise UserInputError(f"{path}: {label} has no notes; write the melody in it")
    voice_lyrics = {v: sum(1 for e, _ in items if not e.isRest and _lyric(e)) for v, items in voices.items()}
    sung_voice = max(sorted(voices), key=lambda v: (voice_lyrics[v], -len(voices[v])))
    ignored = [v for v in voices if v != sung_voice and any(not e.isRest for e, _ in voices[v])]
    if ignored:
        warnings.append(f"{path}: {label}: sang voice {sung_voice}; ignored voice(s) {', '.join(ignored)}")

    tempo = _tempo_map(score.metronomeMarkBoundaries())
    notes: list[TimedNote] = []
    tied_from: TimedNote | None = None
    extending = False
    missing: list[str] = []
    for element, extend in voices[sung_voice]:
        where = f"{label} {_where(element)}"
        if element.isRest:
            tied_from, extending = None, False
            continue
        if element.duration.isGrace or element.quarterLength == 0:
            continue
        if element.isChord:
            if monophonic == "strict":
                names = " ".join(p.nameWithOctave for p in element.pitches)
                raise UserInputError(f"{path}: {where}: a chord ({names}) in the sung voice; write one note, or pass --monophonic top to sing the top note")
            pitch = max(p.midi for p in element.pitches)
        else:
            pitch = element.pitch.midi
        start_q = float(element.getOffsetInHierarchy(part))
        start, end = tempo.seconds(start_q), tempo.seconds(start_q + float(element.quarterLength))
        tie = element.tie.type if element.tie is not None else None
        if tied_from is not None and tie in ("stop", "continue") and tied_from.pitch == pitch and abs(tied_from.end - start) < 1e-6:
            notes[-1] = TimedNote(tied_from.start, end, pitch, tied_from.lyric, tied_from.where)
            tied_from = notes[-1] if tie == "continue" else None
            continue
        lyric = _lyric(element)
        if lyric:
            extending = extend
        else:
            under_slur = any(isinstance(s, music21.spanner.Slur) and not s.isFirst(element) for s in element.getSpannerSites())
            if notes and (extending or under_slur) and abs(notes[-1].end - start) < 1e-6:
                lyric = CONTINUATION
            else:
                missing.append(where)
                lyric = ""
        notes.append(TimedNote(start, end, pitch, lyric, where))
        tied_from = notes[-1] if tie in ("start", "continue") else None
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UserInputError(
            f"{path}: {len(missing)} notes have no lyric and are not under a slur or a lyric extension: {', '.join(missing[:5])}{more}; "
            f"write one Hangul syllable under each note, or slur a melisma to its syllable"
        )
    if not notes:
        raise UserInputError(f"{path}: {label} has no sung notes; write the melody with one Hangul syllable per note")
    return build_score(path, notes, track=chosen, monophonic=monophonic, min_rest_seconds=min_rest_seconds, warnings=warnings)
