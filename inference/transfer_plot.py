"""`inference/transfer.py --plot`: one PNG of a timbre transfer.

Rows: the input's and the output's log-mel spectrograms; the loudness before and after normalisation
(and after the note-on mask); the input F0 with the autotuned and the sung curve and the model's mean
pitch; the note-on mask when one was applied.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.timbre_transfer import TransferredRecording  # noqa: E402
from preprocessor.atomic_io import atomic_path  # noqa: E402
from preprocessor.audio import AudioSettings, SpectrogramExtractor, hz_to_midi  # noqa: E402


def _midi_or_nan(f0_hz: np.ndarray) -> np.ndarray:
    out = np.full(len(f0_hz), np.nan)
    voiced = f0_hz > 0
    out[voiced] = hz_to_midi(f0_hz[voiced])
    return out


def plot_transfer(result: TransferredRecording, audio: AudioSettings, model_pitch_mean_midi: float, path: Path) -> Path:
    a = audio
    extractor = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
    with torch.no_grad():
        mels = [extractor.mel(torch.from_numpy(np.ascontiguousarray(w))[None])[0].numpy() for w in (result.input_wav, result.wav)]
    tracks = result.tracks
    frames = np.arange(len(tracks.f0_input)) * a.hop_size / a.sample_rate
    rows = 5 if tracks.mask is not None else 4
    figure, axes = plt.subplots(rows, 1, figsize=(12, 2.4 * rows), sharex=True)
    low = min(float(m.min()) for m in mels)
    high = max(float(m.max()) for m in mels)
    extent = (0.0, frames[-1] if len(frames) else 1.0, 0, a.n_mels)
    for axis, mel, title in ((axes[0], mels[0], "input (log-mel)"), (axes[1], mels[1], "output (log-mel)")):
        axis.imshow(mel, origin="lower", aspect="auto", interpolation="none", vmin=low, vmax=high, extent=extent)
        axis.set_title(title)
        axis.set_ylabel("mel bin")
    axes[2].plot(frames, tracks.loudness_input, label="input")
    axes[2].plot(frames, tracks.loudness_normalized, label="normalised + shifted")
    if tracks.mask is not None:
        axes[2].plot(frames, tracks.loudness_output, label="after the note-on mask")
    axes[2].set_ylabel("loudness (dB)")
    axes[2].legend(loc="upper right", fontsize="small")
    axes[3].plot(frames, _midi_or_nan(tracks.f0_input), label="input F0")
    axes[3].plot(frames, _midi_or_nan(tracks.f0_autotuned), label="autotuned")
    axes[3].plot(frames, _midi_or_nan(tracks.f0_output), label="sung (octave shift)")
    axes[3].axhline(model_pitch_mean_midi, color="grey", linestyle="--", label="model's mean pitch")
    axes[3].set_ylabel("MIDI pitch")
    axes[3].legend(loc="upper right", fontsize="small")
    if tracks.mask is not None:
        axes[4].plot(frames, tracks.mask.ratio, label="note-on ratio")
        axes[4].fill_between(frames, 0, tracks.mask.on.astype(float) * float(np.nanmax(tracks.mask.ratio)), alpha=0.2, label="note on")
        axes[4].set_ylabel("mask")
        axes[4].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("time (s)")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)
    return path
