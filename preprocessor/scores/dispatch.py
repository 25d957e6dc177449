"""One entry point for every score format, chosen by the file's extension.

``.mid``/``.midi`` (with an optional Hangul lyrics file), ``.musicxml``/``.xml``/``.mxl``, ``.ust``,
``.ustx`` and ``.ds``. Each reader returns the same `Score` (see `preprocessor.scores.assemble` and
`preprocessor.scores.midi_reader`) and raises `UserInputError` with the file, the place and the fix.
"""
from __future__ import annotations

from pathlib import Path

from config.errors import UserInputError
from preprocessor.scores.midi_reader import Score, read_score

MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".musicxml", ".xml", ".mxl")
SCORE_SUFFIXES = MIDI_SUFFIXES + MUSICXML_SUFFIXES + (".ust", ".ustx", ".ds")


def is_score_file(path: Path) -> bool:
    return Path(path).suffix.lower() in SCORE_SUFFIXES


def read_any_score(
    path: Path,
    lyrics_path: Path | None = None,
    track: int | None = None,
    monophonic: str = "strict",
    min_rest_seconds: float = 0.0,
) -> Score:
    """The `Score` of a file in any supported format; `lyrics_path` is for a MIDI without lyric events only."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return read_score(path, lyrics_path=lyrics_path, track=track, monophonic=monophonic, min_rest_seconds=min_rest_seconds)
    if lyrics_path is not None:
        raise UserInputError(f"{lyrics_path}: a lyrics file goes with a MIDI score only; {path.name} carries its own lyrics, so leave --lyrics out")
    if suffix in MUSICXML_SUFFIXES:
        from preprocessor.scores.musicxml_reader import read_musicxml_score as reader
    elif suffix == ".ust":
        from preprocessor.scores.ust_reader import read_ust_score as reader
    elif suffix == ".ustx":
        from preprocessor.scores.ustx_reader import read_ustx_score as reader
    elif suffix == ".ds":
        from preprocessor.scores.ds_reader import read_ds_score as reader
    else:
        raise UserInputError(
            f"{path}: unknown score format {suffix or '(no extension)'!r}; give a file ending in {', '.join(SCORE_SUFFIXES)} "
            f"(or .json written by --dump)"
        )
    return reader(path, track=track, monophonic=monophonic, min_rest_seconds=min_rest_seconds)
