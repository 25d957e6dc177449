"""DiffSinger's variance parameters, per frame, as binarization extracts them.

* energy: the RMS of the whole signal in dB per frame (`preprocessor.audio.frame_energy`, always
  extracted: field `energy`);
* breathiness: the RMS in dB of the signal's aperiodic part, which WORLD separates from the harmonic
  part (`preprocessor.world.aperiodic_part`), over the same windows (field `breathiness`, extracted
  when the dataset config says `features: {breathiness: true}`; it costs a WORLD analysis per item).

Both are unsmoothed (DiffSinger smooths them with a 120 ms window before training; the frame prior
here reads them through convolutions).
"""
from __future__ import annotations

import numpy as np

from preprocessor.audio import frame_energy
from preprocessor.world import aperiodic_part


def frame_breathiness(audio: np.ndarray, sample_rate: int, hop_size: int, win_size: int, f0_hz: np.ndarray) -> np.ndarray:
    """RMS of the aperiodic part in dB per frame, float32 ``[n_frames]`` (`frame_energy` of `aperiodic_part`)."""
    n_frames = len(f0_hz)
    return frame_energy(aperiodic_part(audio, sample_rate, hop_size, f0_hz), hop_size, win_size, n_frames)
