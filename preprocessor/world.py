"""WORLD (pyworld) analysis and synthesis on the project's frame grid, with the project's own F0.

Shared by the augmentation (`preprocessor.augment`: key shift with the envelope kept, time stretch)
and the breathiness feature (`preprocessor.variance`: the aperiodic part of the signal). WORLD's
frames sit at ``t = i * hop`` (``i = 0 .. n_frames``, one more than ours, so that its synthesis covers
the last frame); the F0 binarization extracts (Praat, at the centres ``(i + 0.5) * hop``) is read at
those times and used as WORLD's analysis F0, so WORLD, the targets and the audio agree on the voicing.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class WorldAnalysis(NamedTuple):
    f0: np.ndarray  # [n_frames + 1] Hz at t = i * hop (0 = unvoiced)
    envelope: np.ndarray  # [n_frames + 1, bins] CheapTrick spectral envelope (power)
    aperiodicity: np.ndarray  # [n_frames + 1, bins] D4C band aperiodicity (0 = periodic, 1 = noise)


def track_at(values: np.ndarray, voiced: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """An F0 track (0 = unvoiced) read at fractional frame `positions`: linear between two voiced
    frames, the voicing of the nearest frame, 0 where that is unvoiced."""
    n = len(values)
    nearest = np.clip(np.rint(positions).astype(np.int64), 0, n - 1)
    left = np.clip(np.floor(positions).astype(np.int64), 0, n - 1)
    right = np.clip(left + 1, 0, n - 1)
    fraction = np.clip(positions - left, 0.0, 1.0)
    both = voiced[left] & voiced[right]
    linear = values[left] * (1 - fraction) + values[right] * fraction
    return np.where(voiced[nearest], np.where(both, linear, values[nearest]), 0.0)


def world_analysis(audio: np.ndarray, sample_rate: int, hop_size: int, f0_hz: np.ndarray) -> WorldAnalysis:
    """CheapTrick envelope and D4C aperiodicity of `audio [n_frames * hop]` with `f0_hz [n_frames]` as its F0."""
    import pyworld

    n_frames = len(f0_hz)
    x = np.asarray(audio, dtype=np.float64)
    if len(x) != n_frames * hop_size:
        raise ValueError(f"audio has {len(x)} samples, f0 {n_frames} frames x hop {hop_size}")
    times = np.arange(n_frames + 1, dtype=np.float64) * (hop_size / sample_rate)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    f0_world = np.ascontiguousarray(track_at(f0, f0 > 0, np.arange(n_frames + 1) - 0.5))
    envelope = pyworld.cheaptrick(x, f0_world, times, sample_rate)
    aperiodicity = pyworld.d4c(x, f0_world, times, sample_rate)
    return WorldAnalysis(f0_world, envelope, aperiodicity)


def world_synthesis(analysis: WorldAnalysis, sample_rate: int, hop_size: int) -> np.ndarray:
    """float64 audio of exactly ``(len(analysis.f0) - 1) * hop`` samples."""
    import pyworld

    y = pyworld.synthesize(
        np.ascontiguousarray(analysis.f0, dtype=np.float64), np.ascontiguousarray(analysis.envelope),
        np.ascontiguousarray(analysis.aperiodicity), sample_rate, hop_size / sample_rate * 1000.0,
    )  # fmt: skip
    samples = (len(analysis.f0) - 1) * hop_size
    return np.pad(y, (0, max(0, samples - len(y))))[:samples]


def aperiodic_part(audio: np.ndarray, sample_rate: int, hop_size: int, f0_hz: np.ndarray) -> np.ndarray:
    """The aperiodic (noise) part of `audio` as DiffSinger separates it with WORLD: the envelope
    weighted by the squared aperiodicity, synthesised from noise alone (aperiodicity 1 everywhere)."""
    return aperiodic_synthesis(world_analysis(audio, sample_rate, hop_size, f0_hz), sample_rate, hop_size)


def aperiodic_synthesis(analysis: WorldAnalysis, sample_rate: int, hop_size: int) -> np.ndarray:
    """`aperiodic_part` from an analysis already made (inference's variance matching reuses its analysis)."""
    noise = analysis.envelope * analysis.aperiodicity**2
    return world_synthesis(WorldAnalysis(analysis.f0, noise, np.ones_like(analysis.aperiodicity)), sample_rate, hop_size)
