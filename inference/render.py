"""One score file to one wav (and optionally a PNG): the shared path of the CLI, the tests and the demo."""
from __future__ import annotations

from pathlib import Path

from inference.model_loading import LoadedSinger
from preprocessor.scores.midi_reader import Score, pitch_range_warnings, read_score
from inference.synthesis import SingingSynthesizer, SynthesisResult
from preprocessor.atomic_io import atomic_path, write_wav_atomic


def render_score(
    singer: LoadedSinger,
    midi: Path,
    wav_path: Path,
    lyrics: Path | None = None,
    track: int | None = None,
    monophonic: str = "strict",
    key_shift: int = 0,
    speaker: int = 0,
    noise_scale: float = 0.667,
    device: str = "cpu",
    plot: bool = False,
    seed: int | None = 0,
    synthesizer: SingingSynthesizer | None = None,
    score: Score | None = None,
) -> tuple[SingingSynthesizer, SynthesisResult, list[str]]:
    """Read `midi` (+ `lyrics`), sing it, write `wav_path` atomically; returns the (reusable) synthesizer.

    score: the score of `midi` already read (the web page's, with edited lyrics), sung instead of reading the file.
    """
    if score is None:
        score = read_score(midi, lyrics_path=lyrics, track=track, monophonic=monophonic)
    warnings = list(score.warnings)
    if singer.pitch_range is not None:
        low, high = singer.pitch_range
        # The model sings pitch + key_shift: compare the transposed score with the trained range.
        suffix = f" (with --key_shift {key_shift:+d})" if key_shift else ""
        warnings += [w + suffix for w in pitch_range_warnings(score, low - key_shift, high - key_shift)]
    if synthesizer is None:
        a = singer.audio
        synthesizer = SingingSynthesizer(singer.generator, a.sample_rate, a.hop_size, device=device, noise_scale=noise_scale)
    result = synthesizer.synthesize(score.notes, source=str(midi), key_shift=key_shift, speaker_id=speaker, seed=seed)
    write_wav_atomic(wav_path, result.wav, result.sample_rate)
    if plot:
        from inference.plot import singing_figure

        figure = singing_figure(result, singer.audio)
        with atomic_path(wav_path.with_suffix(".png")) as tmp:
            figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return synthesizer, result, warnings
