"""What the web page does, without the page: read a score, show and edit its lyrics by phrase, sing it.

`inference/webui.py` lays out the Gradio page and calls a `WebSinging`; the tests call it directly.
Everything goes through the command line's own code, so the page and `inference/visinger.py` agree:
a score is read by the project's score readers (`preprocessor.scores.dispatch`), an edited lyric is
checked by writing the lyrics as a lyrics text file (one line per phrase) and reading the score with
it, exactly as `--lyrics song.txt` would (other formats take no lyrics file: the lines' syllables
are put on the phrase's notes, one per note), then by the Korean frontend (Hangul check), and a
render is the CLI's `inference.render.render_score` of the score as read (and edited). A user's mistake is a `UserInputError`; `page_message` turns it into
the CLI's one line (`error: ...`) with the server's temporary paths cut down to file names.

Files: every file the page writes (uploads, edited lyrics, renders) lies under `work_dir`, a
temporary folder that `inference/webui.py` creates and removes at exit. Renders older than the last
`keep_renders` are deleted as new ones come (the page has already been handed its copy).

Concurrency: Gradio runs handlers in worker threads. Renders and lyric checks share one lock: the
model, the frontend (g2pk) and torch's global seed (`SingingSynthesizer` seeds it) are not made for
two threads at once, and two CPU renders side by side are no faster than one after the other.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from config.errors import UserInputError, error_line
from inference.metrics import TuningResult, in_tune_share
from inference.api import Singer
from inference.render import render_score
from preprocessor.atomic_io import write_text_atomic
from preprocessor.audio import extract_f0
from preprocessor.score import Note
from preprocessor.scores.dispatch import MIDI_SUFFIXES, SCORE_SUFFIXES, read_any_score
from preprocessor.scores.midi_reader import Score, note_name, read_lyrics_lines
from preprocessor.text.korean import KoreanFrontend

DEFAULT_NOISE_SCALE = 0.667  # inference/visinger.py's --noise_scale default
TABLE_HEADERS = ("phrase", "bar:beat", "start (s)", "notes", "lyrics")
LYRICS_COLUMN = TABLE_HEADERS.index("lyrics")


def speaker_choices(names: Sequence[str]) -> list[tuple[str, str]]:
    """The speaker menu's (label, value) pairs: each name as `--speaker` takes it, labelled with its id when it
    is not the id itself ("demo_low (1)"; an unnamed model's "1")."""
    return [(name if name == str(index) else f"{name} ({index})", name) for index, name in enumerate(names)]


def page_speaker(value: object) -> int | str:
    """The menu's value as `--speaker` takes it: a name, an id or a typed mix (empty = speaker 0)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value).strip()


@dataclass(frozen=True)
class Phrase:
    """The sung notes of one phrase: `note_indices` into `Score.notes`; `lyrics` one syllable per note."""

    note_indices: tuple[int, ...]
    location: str  # bar:beat of its first note
    start_seconds: float
    pitches: tuple[int, ...]
    lyrics: str


def phrases_of(score: Score) -> tuple[Phrase, ...]:
    """The score's sung notes grouped by phrase: the source's phrase marks (lyric-file lines, karaoke
    line marks) where it has them, else the runs of notes between rests."""
    sung = [index for index, note in enumerate(score.notes) if not note.is_rest]
    groups: list[list[int]] = []
    marks = set(score.phrase_starts)
    for position, index in enumerate(sung):
        previous = sung[position - 1] if position else None
        if marks:
            starts_phrase = previous is None or any(previous < mark <= index for mark in marks)
        else:
            starts_phrase = previous is None or index != previous + 1
        if starts_phrase:
            groups.append([])
        groups[-1].append(index)
    return tuple(
        Phrase(
            note_indices=tuple(group),
            location=score.locations[group[0]],
            start_seconds=score.notes[group[0]].start,
            pitches=tuple(score.notes[i].pitch for i in group),
            lyrics="".join(score.notes[i].lyric for i in group),
        )
        for group in groups
    )


@dataclass(frozen=True)
class ScoreView:
    """A score as the page shows it. `lyrics_path`: the edited lyrics file, None while the score's own lyrics are sung."""

    score_path: Path
    lyrics_path: Path | None
    score: Score
    phrases: tuple[Phrase, ...]

    @property
    def name(self) -> str:
        return self.score_path.name

    def rows(self) -> list[list[object]]:
        """One table row per phrase, columns `TABLE_HEADERS`."""
        return [
            [number, phrase.location, round(phrase.start_seconds, 2), " ".join(note_name(p) for p in phrase.pitches), phrase.lyrics]
            for number, phrase in enumerate(self.phrases, start=1)
        ]

    def summary(self) -> str:
        sung = sum(len(p.note_indices) for p in self.phrases)
        edited = " (lyrics edited)" if self.lyrics_path is not None else ""
        return f"{self.name}: {sung} notes in {len(self.phrases)} phrases, {self.score.total_seconds:.2f} s{edited}"


@dataclass(frozen=True)
class Rendering:
    """One render: the wav and its PNG (piano roll + F0, mel), and the measured F0's tuning against the score."""

    wav_path: Path
    plot_path: Path | None  # None when asked for no picture
    seconds: float
    sample_rate: int
    phrases: int
    in_tune: TuningResult  # F0 measured on the wav vs the (key-shifted) score, `inference.metrics.in_tune_share`
    warnings: tuple[str, ...]
    elapsed_seconds: float

    def summary(self) -> str:
        share = self.in_tune.in_tune_share
        tune = "no voiced frame under a note" if not np.isfinite(share) else f"{100 * share:.1f} % of {self.in_tune.frames} voiced frames"
        return (
            f"{self.seconds:.2f} s at {self.sample_rate} Hz, {self.phrases} phrases, rendered in {self.elapsed_seconds:.2f} s; "
            f"in tune (measured F0 within 50 cents of the note): {tune}"
        )


class WebSinging:
    """The page's state on the server: the loaded models, the frontend, the temporary folder.

    Args:
        models: name -> loaded singer (the page offers the names; the first is the default).
        work_dir: an existing folder the caller removes at exit; everything is written below it.
        frontend: a shared `KoreanFrontend` (its g2pk load costs seconds), else one is made.
        keep_renders: how many render folders to keep before deleting the oldest.
    """

    def __init__(
        self,
        models: Mapping[str, Singer],
        work_dir: Path,
        frontend: KoreanFrontend | None = None,
        keep_renders: int = 32,
    ) -> None:
        if not models:
            raise ValueError("no models")
        self.models = dict(models)
        self.work_dir = Path(work_dir)
        self.frontend = frontend or KoreanFrontend()
        for singer in self.models.values():
            singer.frontend = singer.frontend or self.frontend  # one g2pk load for the page and every model
        self.keep_renders = keep_renders
        self._lock = threading.Lock()
        self._renders: list[Path] = []

    def warm_up(self) -> None:
        """Load g2pk now (seconds), not on the first user's upload."""
        with self._lock:
            self.frontend.phonemize([Note(0.0, 0.5, 60, "가")], source="<warm-up>")

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    def speakers(self, model: str) -> tuple[str, ...]:
        """The model's speaker names in id order (`Singer.speakers`: the training data's names, else "0", "1", ...)."""
        return self._singer(model).speakers

    def _singer(self, model: str) -> Singer:
        if model not in self.models:
            raise UserInputError(f"model {model!r}: not loaded; pick one of {', '.join(self.models)}")
        return self.models[model]

    def _fresh_folder(self, kind: str) -> Path:
        (self.work_dir / kind).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.work_dir / kind))

    def open_score(self, path: Path) -> ScoreView:
        """Read `path` with the score readers and check its lyrics with the frontend (as a render would)."""
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: score file not found; upload a score or pick an example")
        score = read_any_score(path)
        self._check_lyrics(score)
        return ScoreView(path, None, score, phrases_of(score))

    def with_lyrics(self, view: ScoreView, lines: Sequence[str]) -> ScoreView:
        """`view` with phrase `i` sung to `lines[i]`, checked as `--lyrics` checks a lyrics file; `view` itself when nothing changed."""
        lines = [str(line).strip() for line in lines]
        if len(lines) != len(view.phrases):
            raise UserInputError(f"{view.name}: {len(lines)} lyric lines for {len(view.phrases)} phrases; edit the lyrics of a phrase, do not add or remove rows")
        if lines == [phrase.lyrics for phrase in view.phrases]:
            return view
        empty = next((number for number, line in enumerate(lines, start=1) if not line), None)
        if empty is not None:
            raise UserInputError(f"{view.name}: phrase {empty} has no lyrics; give each of its {len(view.phrases[empty - 1].note_indices)} notes one Hangul syllable")
        # The lyrics file is named after the score, so that the reader's messages read as the CLI's would.
        lyrics_path = self._fresh_folder("lyrics") / f"{view.score_path.stem}.txt"
        write_text_atomic(lyrics_path, "\n".join(lines) + "\n")
        syllables = read_lyrics_lines(lyrics_path)  # the CLI's reading of the text (encoding, blank file)
        if view.score_path.suffix.lower() in MIDI_SUFFIXES:
            score = read_any_score(view.score_path, lyrics_path=lyrics_path, track=view.score.melody_track)  # --lyrics
        else:  # the other formats carry their own lyrics (no --lyrics): put the syllables on the notes here
            score = _with_syllables(view, syllables, lyrics_path)
        self._check_lyrics(score)
        return ScoreView(view.score_path, lyrics_path, score, phrases_of(score))

    def _check_lyrics(self, score: Score) -> None:
        """The frontend's check of every lyric (one Hangul syllable, SP, AP or a melisma mark), before any render."""
        with self._lock:
            self.frontend.phonemize(list(score.notes), source=str(score.source))

    def render(
        self,
        view: ScoreView,
        model: str,
        key_shift: int = 0,
        noise_scale: float = DEFAULT_NOISE_SCALE,
        speaker: int | str = 0,
        seed: int = 0,
        plot: bool = True,
    ) -> Rendering:
        """Sing `view` with `model` as the CLI does (`render_score`); the wav and its PNG land in a fresh folder under `work_dir`.
        `speaker`: as `--speaker` takes it (an id, a name of `speakers(model)`, or a mix "a:0.7,b:0.3")."""
        singer = self._singer(model)
        if not float(noise_scale) >= 0:
            raise UserInputError(f"noise scale {noise_scale}: must be 0 or more (0 = the prior mean)")
        folder = self._fresh_folder("renders")
        wav_path = folder / f"{view.score_path.stem}.wav"
        started = time.perf_counter()
        with self._lock:
            audio = singer.audio
            sung = render_score(
                singer, view.score_path, wav_path, key_shift=int(key_shift), speaker=speaker, noise_scale=float(noise_scale),
                plot=plot, seed=seed, score=view.score,
            )  # fmt: skip
            result, warnings = sung.synthesis, sung.warnings
        elapsed = time.perf_counter() - started
        frames = len(result.f0_hz)
        measured = extract_f0(result.wav, result.sample_rate, result.hop_size, frames, audio.f0_min, audio.f0_max, audio.f0_extractor).f0_hz
        score_pitch = np.repeat([note.pitch for note in result.notes], result.note_frames)
        self._forget_old_renders(folder)
        return Rendering(
            wav_path=wav_path,
            plot_path=wav_path.with_suffix(".png") if plot else None,
            seconds=len(result.wav) / result.sample_rate,
            sample_rate=result.sample_rate,
            phrases=result.phrases,
            in_tune=in_tune_share(measured, score_pitch),
            warnings=tuple(warnings),
            elapsed_seconds=elapsed,
        )

    def _forget_old_renders(self, newest: Path) -> None:
        with self._lock:
            self._renders.append(newest)
            while len(self._renders) > self.keep_renders:
                shutil.rmtree(self._renders.pop(0), ignore_errors=True)

    def page_message(self, error: UserInputError) -> str:
        """The CLI's line for `error`, with paths inside the temporary folders cut to their file names."""
        line = error_line(error)
        for root in {str(self.work_dir), str(self.work_dir.resolve())}:
            line = re.sub(re.escape(root) + r"/(?:[^/\s]+/)*", "", line)
        return line


def _with_syllables(view: ScoreView, lines: list[list[str]], lyrics_path: Path) -> Score:
    """`view.score` with phrase `i`'s notes sung to `lines[i]` (one syllable per note, as a lyrics file gives them)."""
    if len(lines) != len(view.phrases):  # a line of punctuation only reads as no line
        raise UserInputError(f"{lyrics_path}: {len(lines)} lines of syllables for the {len(view.phrases)} phrases of {view.name}; give each phrase its syllables")
    notes = list(view.score.notes)
    for number, (phrase, syllables) in enumerate(zip(view.phrases, lines), start=1):
        if len(syllables) != len(phrase.note_indices):
            raise UserInputError(
                f"{lyrics_path}: line {number} ({''.join(syllables)[:30]!r}) has {len(syllables)} syllables but phrase {number} of "
                f"{view.name} has {len(phrase.note_indices)} notes (from {phrase.location}); "
                "give every note exactly one syllable (write a melisma as a repeated vowel, e.g. 바알, or as '-')"
            )
        for index, syllable in zip(phrase.note_indices, syllables):
            notes[index] = dataclasses.replace(notes[index], lyric=syllable)
    return dataclasses.replace(view.score, notes=tuple(notes), lyrics_source=lyrics_path)
