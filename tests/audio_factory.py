"""Synthetic singing for the DDSP singer's tests: harmonic tones with vibrato, note envelopes and breath noise.

`sung_phrase(pitches, ...)` returns float32 audio whose F0 is known exactly: each note's pitch plus a
vibrato, a 1/k harmonic spectrum, a smooth attack and release, and a little noise between notes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf


def sung_phrase(
    pitches: Sequence[float], sample_rate: int = 16000, note_seconds: float = 0.4, gap_seconds: float = 0.1,
    vibrato_cents: float = 20.0, level: float = 0.3, seed: int = 0, n_harmonics: int = 12,
) -> np.ndarray:
    """Mono float32: each MIDI pitch sung for `note_seconds`, separated by `gap_seconds` of faint noise."""
    rng = np.random.default_rng(seed)
    pieces = []
    for index, pitch in enumerate(pitches):
        n = int(note_seconds * sample_rate)
        t = np.arange(n) / sample_rate
        cents = vibrato_cents * np.sin(2 * np.pi * 5.5 * t + index)
        f0 = 440.0 * 2.0 ** ((pitch - 69 + cents / 100.0) / 12.0)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        wave = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f0.max() < sample_rate / 2)
        envelope = np.minimum(1.0, np.minimum(t / 0.03, (note_seconds - t) / 0.05))
        pieces.append(level * wave * envelope / 1.6)
        pieces.append(rng.normal(0.0, 1e-3, int(gap_seconds * sample_rate)))
    return np.concatenate(pieces).astype(np.float32)


def write_singing_folder(folder: Path, sample_rate: int = 16000) -> list[Path]:
    """Three short recordings in different formats: a mono wav at `sample_rate`, a stereo wav at 22.05 kHz, a flac at 24 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    mono = sung_phrase([60, 62, 64, 65, 67, 65, 64, 62], sample_rate, seed=1)
    sf.write(folder / "a_scale.wav", mono, sample_rate)
    files.append(folder / "a_scale.wav")
    stereo = sung_phrase([67, 69, 71, 72, 69, 67], 22050, seed=2)
    sf.write(folder / "b_stereo.wav", np.stack([stereo, stereo * 0.8], axis=1), 22050)
    files.append(folder / "b_stereo.wav")
    flac = sung_phrase([57, 60, 64, 60, 57], 24000, seed=3)
    sf.write(folder / "c_low.flac", flac, 24000, format="FLAC")
    files.append(folder / "c_low.flac")
    return files


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "models" / "ddsp_singer_demo.yaml"
# The demo DDSP singer shrunk to a few thousand weights: two updates train in a few seconds.
TINY_DDSP_OVERRIDES = (
    "model.hidden_size=16,model.mlp_layers=1,trainer.val_check_interval=2,trainer.log_interval=1,"
    "validation.max_items=1,validation.num_logged_items=1,audio_folder.piece_seconds=1.0,audio_folder.piece_hop_seconds=0.5,"
    "trainer.max_batch_size=2,trainer.max_batch_frames=200,loss.fft_sizes=[512,128]"
)


def train_tiny_ddsp(root: Path, audio_dir: Path, exp: str = "tiny_ddsp", updates: int = 2, extra: str = "") -> int:
    """Train the shrunk demo DDSP singer on `audio_dir` with the runner, in this process; the runner's exit code."""
    from tasks.runs.run import main

    overrides = (
        f"{TINY_DDSP_OVERRIDES},trainer.max_updates={updates},audio_folder.audio_dir={audio_dir},"
        f"audio_folder.cache_dir={root / 'cache'},audio_folder.valid_files=[c_low]" + (f",{extra}" if extra else "")
    )
    return main(["--config", str(DEMO_CONFIG), "--exp_name", exp, "--work_dir_root", str(root), "--hparams", overrides])
