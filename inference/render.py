"""One score file to one wav (and optionally a PNG and a render dump): the shared path of the CLIs, the web page, the tests and the demo.

The score is any format `preprocessor.scores.dispatch` reads (by extension), or a render file
written by `--dump` (``.json``, `inference.render_dump`), which is sung as written (`Singer.sing`).
"""
from __future__ import annotations

from pathlib import Path

from inference.api import DEFAULT_NOISE_SCALE, Singer, SungScore
from inference.render_dump import dump_render
from preprocessor.atomic_io import atomic_path, write_wav_atomic
from preprocessor.scores.midi_reader import Score


def render_score(
    singer: Singer,
    midi: Path,
    wav_path: Path,
    lyrics: Path | None = None,
    track: int | None = None,
    monophonic: str = "strict",
    key_shift: int = 0,
    speaker: int | str = 0,
    noise_scale: float = DEFAULT_NOISE_SCALE,
    plot: bool = False,
    seed: int | None = 0,
    dump: Path | None = None,
    score: Score | None = None,
    energy_db: float = 0.0,
    breathiness_db: float = 0.0,
) -> SungScore:
    """`singer.sing(midi, ...)` (any score format, or a render dump), written to `wav_path` atomically
    (and a PNG beside it with `plot`).

    `dump`: also write the editable render there (JSON); `score`: the score of `midi` already read
    (the web page's, with edited lyrics), sung instead of reading the file.
    """
    midi = Path(midi)
    sung = singer.sing(
        midi, lyrics, key_shift, speaker, noise_scale=noise_scale, seed=seed, track=track, monophonic=monophonic, score=score,
        energy_db=energy_db, breathiness_db=breathiness_db,
    )  # fmt: skip
    if dump is not None:
        dump_render(dump, sung.plan, sung.synthesis, source=str(midi), speaker=sung.speaker, seed=sung.seed, noise_scale=sung.noise_scale)
    write_wav_atomic(wav_path, sung.wav, sung.sample_rate)
    if plot:
        from inference.plot import singing_figure

        figure = singing_figure(sung.synthesis, singer.audio)
        with atomic_path(wav_path.with_suffix(".png")) as tmp:
            figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return sung
