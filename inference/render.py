"""One score file to one wav (and optionally a PNG and a render dump): the shared path of the CLIs, the web page, the tests and the demo.

The score is any format `preprocessor.scores.dispatch` reads (by extension), or a render file
written by `--dump` (``.json``, `inference.render_dump`), which is sung as written (`Singer.sing`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

from inference.api import DEFAULT_NOISE_SCALE, Singer, SungScore
from inference.render_dump import dump_render
from inference.synthesis import AudioChunk
from preprocessor.atomic_io import atomic_path, float_to_pcm16, write_wav_atomic
from preprocessor.scores.midi_reader import Score


def write_stream(chunks: Iterable[AudioChunk], wav_path: Path, sample_rate: int) -> tuple[np.ndarray, float | None]:
    """Write a song's chunks to `wav_path` as they come (16-bit PCM, flushed after each), so that a reader can
    follow the file while it grows; returns (all samples, seconds until the first chunk was written).

    The file is the output itself, not a temporary name (it is meant to be read while written); on any
    failure it is removed, so no half-written song is left behind.
    """
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    first_audio, pieces = None, []
    try:
        with sf.SoundFile(wav_path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV") as handle:
            for chunk in chunks:
                handle.write(float_to_pcm16(chunk.wav))
                handle.flush()
                if first_audio is None:
                    first_audio = time.perf_counter() - started
                pieces.append(chunk.wav)
    except BaseException:
        wav_path.unlink(missing_ok=True)
        raise
    return (np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)), first_audio


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
    stream_chunk_frames: int | None = None,
    variance_matching: str = "change",
) -> SungScore:
    """`singer.sing(midi, ...)` (any score format, or a render dump), written to `wav_path` atomically
    (and a PNG beside it with `plot`).

    `dump`: also write the editable render there (JSON); `score`: the score of `midi` already read
    (the web page's, with edited lyrics), sung instead of reading the file. With `stream_chunk_frames`,
    the song is rendered in decoder chunks of that many frames and written as it comes (`write_stream`);
    the result's `timings["first_audio"]` is the delay to the first chunk.
    """
    midi = Path(midi)
    if stream_chunk_frames is None:
        sung = singer.sing(
            midi, lyrics, key_shift, speaker, noise_scale=noise_scale, seed=seed, track=track, monophonic=monophonic, score=score,
            energy_db=energy_db, breathiness_db=breathiness_db, variance_matching=variance_matching,
        )  # fmt: skip
        write_wav_atomic(wav_path, sung.wav, sung.sample_rate)
    else:
        song, planned = singer.open_stream(
            midi, lyrics, key_shift, speaker, noise_scale=noise_scale, seed=seed, track=track, monophonic=monophonic,
            score=score, chunk_frames=stream_chunk_frames, energy_db=energy_db, breathiness_db=breathiness_db,
            variance_matching=variance_matching,
        )  # fmt: skip
        wav, first_audio = write_stream(song.chunks(), wav_path, singer.sample_rate)
        result = song.result(wav)
        result.timings["first_audio"] = first_audio or 0.0
        sung = SungScore(result.wav, result.sample_rate, planned.warnings, result, planned.plan, planned.speaker, planned.seed, planned.noise_scale)
    if dump is not None:
        dump_render(dump, sung.plan, sung.synthesis, source=str(midi), speaker=sung.speaker, seed=sung.seed, noise_scale=sung.noise_scale)
    if plot:
        from inference.plot import singing_figure

        figure = singing_figure(sung.synthesis, singer.audio)
        with atomic_path(wav_path.with_suffix(".png")) as tmp:
            figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return sung
