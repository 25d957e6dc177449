"""A score file of any format (or a `--dump` render file) sung with a synthesizer: the path shared by
`inference.api.Singer.sing`, the CLIs (`inference.render.render_score`) and the web page.

The score is any format `preprocessor.scores.dispatch` reads (by extension), or a render file
written by `--dump` (``.json``, `inference.render_dump`), which is sung as written.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from config.errors import UserInputError
from inference.speakers import SpeakerValue
from inference.render_dump import is_render_dump, read_render_dump
from inference.synthesis import RenderPlan, SingingSynthesizer, SynthesisResult
from preprocessor.scores.dispatch import read_any_score
from preprocessor.scores.midi_reader import F0Curve, Score, pitch_range_warnings


def song_f0_frames(curves: tuple[F0Curve, ...], total_frames: int, frame_seconds: float) -> np.ndarray:
    """A score's F0 curves (DS ``f0_seq``) on the song's frame grid, linearly interpolated; NaN where none covers a frame."""
    out = np.full(total_frames, np.nan, dtype=np.float32)
    centres = np.arange(total_frames) * frame_seconds
    for curve in curves:
        times = curve.start + np.arange(len(curve.hz)) * curve.step
        inside = (centres >= times[0]) & (centres <= times[-1])
        values = np.interp(centres[inside], times, np.asarray(curve.hz, dtype=np.float64))
        # A frame next to an unvoiced (0) value stays unvoiced rather than gliding down to 0 Hz.
        nearest = np.asarray(curve.hz)[np.clip(np.rint((centres[inside] - curve.start) / curve.step).astype(int), 0, len(curve.hz) - 1)]
        out[inside] = np.where(nearest > 0, values, 0.0)
    return out


def with_song_f0(plan: RenderPlan, song_f0: np.ndarray) -> RenderPlan:
    """The plan with each phrase singing `song_f0` [T song frames] where it is not NaN (trims: predicted)."""
    phrases, first = [], 0
    for phrase in plan.phrases:
        rendered = np.full(phrase.frames, np.nan, dtype=np.float32)
        start = first - phrase.trim_start  # the song frame of the phrase's first rendered frame
        for offset in range(phrase.frames):
            frame = start + offset
            if phrase.trim_start <= offset < phrase.frames - phrase.trim_end and 0 <= frame < len(song_f0):
                rendered[offset] = song_f0[frame]
        phrases.append(phrase if np.isnan(rendered).all() else replace(phrase, f0_hz=tuple(float(v) for v in rendered)))
        first += phrase.body_frames
    return replace(plan, phrases=tuple(phrases))


@dataclass(frozen=True)
class SungFile:
    """A score file sung: the result, the plan it was rendered from (what `--dump` writes) and the
    settings it was rendered with (a render file brings its own)."""

    result: SynthesisResult
    plan: RenderPlan
    warnings: tuple[str, ...]
    speaker: SpeakerValue  # an id, or mix weights (inference.speakers)
    seed: int | None
    noise_scale: float


def sing_file(
    synthesizer: SingingSynthesizer,
    path: Path,
    lyrics: Path | None = None,
    track: int | None = None,
    monophonic: str = "strict",
    key_shift: int = 0,
    speaker: SpeakerValue = 0,
    noise_scale: float | None = None,
    seed: int | None = 0,
    pitch_range: tuple[int, int] | None = None,
    score: Score | None = None,
    variance_offset_db: tuple[float, float] | None = None,
) -> SungFile:
    """Sing a score file of any format (or a `--dump` render file, sung as written); writes nothing.

    `pitch_range`: the trained MIDI range, for warnings about notes outside it; `score`: the score of
    `path` already read (the web page's, with edited lyrics), sung instead of reading the file;
    `variance_offset_db`: (energy, breathiness) dB added to what a model with expressive controls sings.
    Shared by the CLIs (`render_score`), the web page and the Python API.
    """
    path = Path(path)
    noise_scale = synthesizer.noise_scale if noise_scale is None else noise_scale
    if score is None and is_render_dump(path):
        if lyrics is not None or track is not None or key_shift:
            raise UserInputError(f"{path}: a render file is sung as written; leave out --lyrics, --track and --key_shift (edit its pitches instead)")
        dump = read_render_dump(path, synthesizer.sample_rate, synthesizer.hop_size)
        result = synthesizer.render(dump.plan, speaker_id=dump.speaker, seed=dump.seed, noise_scale=dump.noise_scale, variance_offset_db=variance_offset_db)
        return SungFile(result, dump.plan, (), dump.speaker, dump.seed, dump.noise_scale)
    if score is None:
        score = read_any_score(path, lyrics_path=lyrics, track=track, monophonic=monophonic)
    warnings = list(score.warnings)
    if pitch_range is not None:
        low, high = pitch_range
        # The model sings pitch + key_shift: compare the transposed score with the trained range.
        suffix = f" (with --key_shift {key_shift:+d})" if key_shift else ""
        warnings += [w + suffix for w in pitch_range_warnings(score, low - key_shift, high - key_shift)]
    plan = synthesizer.plan(score.notes, source=str(path), key_shift=key_shift)
    if score.f0_curves:
        frame_seconds = synthesizer.hop_size / synthesizer.sample_rate
        plan = with_song_f0(plan, song_f0_frames(score.f0_curves, sum(plan.note_frames), frame_seconds))
    result = synthesizer.render(plan, speaker_id=speaker, seed=seed, noise_scale=noise_scale, variance_offset_db=variance_offset_db)
    return SungFile(result, plan, tuple(warnings), speaker, seed, noise_scale)
