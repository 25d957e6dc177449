"""The `--plot` picture: the score as a piano roll with Hangul lyrics, the F0 sung (predicted or given) and the
F0 measured on the rendered audio over it, the in-tune share in the title, and the mel spectrogram.

Hangul needs a font that has it; none is assumed on the system. The NanumGothic file that the pinned
`koreanize-matplotlib` package ships is registered with matplotlib's font manager and used for the
lyric labels only. The package itself is never imported: its import restyles matplotlib globally
(``rc('font', family=...)``) for every later figure of the process.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from inference.metrics import IN_TUNE_CENTS, in_tune_share  # noqa: E402
from inference.synthesis import SynthesisResult  # noqa: E402
from preprocessor.audio import AudioSettings, SpectrogramExtractor, extract_f0  # noqa: E402

FONT_PACKAGE = "koreanize_matplotlib"
FONT_FILE = "NanumGothic.ttf"


@lru_cache(maxsize=1)
def hangul_font() -> font_manager.FontProperties:
    """NanumGothic from the koreanize-matplotlib package, registered with matplotlib (found without importing the package)."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {FONT_PACKAGE} package is missing: pip install -r requirements.txt (it ships the Hangul font of the plots)")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / FONT_FILE
    if not path.is_file():
        raise RuntimeError(f"{path}: the Hangul font is missing from {FONT_PACKAGE}; reinstall it (pip install -r requirements.txt)")
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path))


def _midi(f0_hz: np.ndarray) -> np.ndarray:
    out = np.full(len(f0_hz), np.nan)
    voiced = f0_hz > 0
    out[voiced] = 69 + 12 * np.log2(f0_hz[voiced] / 440.0)
    return out


def measured_f0(result: SynthesisResult, audio: AudioSettings) -> np.ndarray:
    """F0 of the rendered audio at the model's frames (the extractor binarization uses), 0 = unvoiced."""
    return extract_f0(result.wav, result.sample_rate, result.hop_size, len(result.f0_hz), audio.f0_min, audio.f0_max, audio.f0_extractor).f0_hz


def singing_figure(result: SynthesisResult, audio: AudioSettings) -> Figure:
    frame_rate = result.sample_rate / result.hop_size
    font = hangul_font()
    figure, (roll, spectrogram) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1]})
    for note in result.notes:
        if note.is_rest:
            continue
        roll.add_patch(plt.Rectangle((note.start, note.pitch - 0.4), note.duration, 0.8, color="0.75"))
        roll.text(note.start, note.pitch + 0.5, note.lyric, fontsize=9, fontproperties=font)
    seconds = np.arange(len(result.f0_hz)) / frame_rate
    heard = measured_f0(result, audio)
    roll.plot(seconds, _midi(result.f0_hz), color="tab:red", linewidth=1.2, label="F0 sung (predicted or given)")
    roll.plot(seconds, _midi(heard), color="tab:blue", linewidth=1.0, linestyle="--", label="F0 measured on the audio")
    score_pitch = np.repeat([n.pitch for n in result.notes], result.note_frames) if len(result.notes) == len(result.note_frames) else np.zeros(0)
    tuning = in_tune_share(heard, score_pitch)
    share = "n/a (no voiced frame under a note)" if tuning.frames == 0 else f"{100 * tuning.in_tune_share:.1f} % of {tuning.frames} voiced frames"
    roll.set_title(f"in tune (measured F0 within {IN_TUNE_CENTS:g} cents of the note): {share}")
    pitches = [n.pitch for n in result.notes if not n.is_rest] or [60]
    roll.set_ylim(min(pitches) - 3, max(pitches) + 3)
    roll.set_ylabel("MIDI pitch")
    roll.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    roll.grid(alpha=0.3)
    extractor = SpectrogramExtractor(audio.sample_rate, audio.n_fft, audio.hop_size, audio.win_size, audio.n_mels, audio.fmin, audio.fmax)
    with torch.no_grad():
        mel = extractor.mel(torch.from_numpy(result.wav)[None])[0].numpy()
    spectrogram.imshow(mel, origin="lower", aspect="auto", interpolation="none", extent=(0, mel.shape[1] / frame_rate, 0, mel.shape[0]))
    spectrogram.set_ylabel("mel bin")
    spectrogram.set_xlabel("seconds")
    roll.set_xlim(0, len(result.wav) / result.sample_rate)
    return figure
