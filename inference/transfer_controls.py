"""The timbre-transfer controls of the DDSP singer, applied to the input's F0 and loudness before synthesis.

The seed's controls (DDSP's timbre-transfer demo), as pure numpy functions on frame-rate tracks:

- `autotune(f0, amount, target_midi)`: pull the pitch towards the nearest semitone (or a score's note),
  `amount` 0 = untouched, 1 = snapped.
- `shift_octaves(f0, n)`: F0 times 2**n.
- `quantile_normalize(loudness, voiced, model_quantiles)`: map the input's loudness distribution
  (over voiced frames) onto the model's training distribution, quantile by quantile, so that a quiet
  or loud recording drives the voice in the range it was trained on.
- `note_on_mask(loudness, voicing, threshold)` + `attenuate(...)`: frames that are not a sung note
  (quiet or unpitched; DDSP's `detect_notes`) get their loudness lowered by `attenuation` dB, scaled by
  how far below the threshold they are, which removes the breath and room noise the voice would
  otherwise sing.

All tracks are `[T]`; F0 in Hz with 0 on unvoiced frames; loudness in dB.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import uniform_filter1d

from preprocessor.audio import hz_to_midi, midi_to_hz

MIN_DB = -120.0  # DDSP's floor for the note-on ratio
MASK_SMOOTHING_FRAMES = 40  # DDSP smooths the voicing confidence over 40 frames
MASK_CONFIDENCE_THRESHOLD = 0.7
MASK_EXPONENT = 2.0


class NoteMask(NamedTuple):
    """`on [T]` bool (a sung note), `ratio [T]` the note-on ratio (>= threshold on notes)."""

    on: np.ndarray
    ratio: np.ndarray


def autotune(f0_hz: np.ndarray, amount: float, target_midi: np.ndarray | None = None) -> np.ndarray:
    """Move voiced frames `amount` (0..1) of the way to their target pitch: the nearest semitone, or
    `target_midi [T]` (a score's note per frame; 0 or NaN = no note there, nearest semitone instead)."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    voiced = f0_hz > 0
    out = np.zeros_like(f0_hz)
    midi = hz_to_midi(f0_hz[voiced]) if voiced.any() else np.zeros(0)
    target = np.round(midi)
    if target_midi is not None:
        score = np.asarray(target_midi, dtype=np.float64)[voiced]
        has_note = np.isfinite(score) & (score > 0)
        target = np.where(has_note, score, target)
    out[voiced] = midi_to_hz(midi + amount * (target - midi))
    return out.astype(np.float32)


def shift_octaves(f0_hz: np.ndarray, octaves: float) -> np.ndarray:
    """F0 times `2 ** octaves` (unvoiced frames stay 0)."""
    return (np.asarray(f0_hz, dtype=np.float64) * 2.0**octaves).astype(np.float32)


def quantile_normalize(loudness_db: np.ndarray, voiced: np.ndarray, model_quantiles: np.ndarray) -> np.ndarray:
    """Map the input's loudness onto the model's distribution: the input's quantiles (over its voiced frames,
    all frames when none is voiced) go to `model_quantiles` (ascending, equally spaced levels 0..100 %);
    piecewise linear in between, shifted by the end offsets beyond the ends."""
    loudness = np.asarray(loudness_db, dtype=np.float64)
    model_quantiles = np.asarray(model_quantiles, dtype=np.float64)
    reference = loudness[voiced] if np.any(voiced) else loudness
    levels = np.linspace(0.0, 100.0, len(model_quantiles))
    input_quantiles = np.percentile(reference, levels)
    # np.interp needs strictly increasing x: merge ties (a constant stretch) by keeping the first of each.
    keep = np.concatenate([[True], np.diff(input_quantiles) > 1e-9])
    x, y = input_quantiles[keep], model_quantiles[keep]
    if len(x) == 1:
        return (loudness - x[0] + float(np.median(model_quantiles))).astype(np.float32)
    out = np.interp(loudness, x, y)
    out = np.where(loudness < x[0], loudness - x[0] + y[0], out)
    out = np.where(loudness > x[-1], loudness - x[-1] + y[-1], out)
    return out.astype(np.float32)


def note_on_mask(loudness_db: np.ndarray, voicing: np.ndarray, threshold: float) -> NoteMask:
    """DDSP's note detection: `voicing [T]` (1 voiced, 0 not; a confidence in [0, 1]) smoothed over 40 frames,
    squared, times the loudness above -120 dB, relative to what a frame at the mean loudness with confidence
    0.7 would give. Frames at or above `threshold` (1.0 = that reference) are notes."""
    loudness = np.asarray(loudness_db, dtype=np.float64)
    confidence = uniform_filter1d(np.asarray(voicing, dtype=np.float64), size=MASK_SMOOTHING_FRAMES, mode="nearest")
    weighted = confidence**MASK_EXPONENT * (loudness - MIN_DB)
    reference = (loudness.mean() - MIN_DB) * MASK_CONFIDENCE_THRESHOLD**MASK_EXPONENT
    ratio = weighted / max(reference, 1e-6)
    return NoteMask(ratio >= threshold, ratio)


def attenuate(loudness_db: np.ndarray, mask: NoteMask, threshold: float, attenuation_db: float) -> np.ndarray:
    """Lower the frames outside notes by `attenuation_db * (1 - ratio / threshold)` dB (the colab's rule)."""
    loudness = np.asarray(loudness_db, dtype=np.float64).copy()
    off = ~mask.on
    loudness[off] -= attenuation_db * (1.0 - np.clip(mask.ratio[off] / threshold, 0.0, 1.0))
    return loudness.astype(np.float32)
