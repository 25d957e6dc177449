"""Make a render follow its sung energy and breathiness: a per-frame two-band gain measured on the audio.

A model with expressive controls (`modules.variance`) only *learns* how the curves its prior reads
change the audio; after a short training an offset of +6 dB moves the render by well under 1 dB
(docs/BENCHMARKS.md, "Expressive controls"). This module imposes the levels instead, after decoding:

1. measure the rendered window as binarization measures a recording (`preprocessor.variance`):
   energy = `frame_energy` of the audio, breathiness = `frame_energy` of its WORLD aperiodic part
   (`preprocessor.world`, D4C aperiodicity with the sung F0);
2. per frame, find a gain `g_p` for the periodic part and `g_a` for the aperiodic part that give the
   asked levels, and smooth (`smooth_frames`) and clamp (`max_gain_db`) them over time;
3. apply them in the STFT domain with the soft mask WORLD's model implies: per bin, a fraction `ap²`
   of the power is aperiodic (`ap` = D4C aperiodicity), so the bin is scaled by
   `g_p (1 - ap²) + g_a ap²`. Equal gains are an exact broadband gain; unequal ones tilt the
   spectrum towards (or away from) the noisy bands.

Why a mask and not a WORLD split: the aperiodic part WORLD synthesises is new noise (other phases than
the render's), so `render - aperiodic` is not the periodic part and adding it can only make a voice
breathier; and resynthesising the whole render with WORLD makes the neural vocoder's voice WORLD's
(buzzier). The mask keeps every sample of the render where the gains are 0 dB.

The gains are solved with the mask in the model: a bin's aperiodicity is a band ratio, which a
gain smooth across the band leaves as it is, so the measured levels become ``E² · Q_E(g)/Q_E(1)`` and
``B² · Q_B(g)/Q_B(1)``, quadratic forms of ``(g_p, g_a)`` over the CheapTrick envelope (see
`_solve_gains`). A frame whose asked ratio of aperiodic to total lies outside what the mask can reach
(all its bins equally aperiodic) gets the nearest reachable one, then the clamp. `passes` repeats
solve-and-measure, correcting the request by what was measured (D4C's breathiness is not linear in the
masked noise: +9 dB of noise reads as +13 dB).

Frames: unvoiced (F0 = 0; WORLD calls them all aperiodic, breathiness = energy there) get one gain,
the energy's; silent ones (measured energy 50 dB under the window's loudest frame: rests, pauses) get none, so that a
rest's noise floor is never amplified. Everything is deterministic (WORLD's noise is seeded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from preprocessor.audio import frame_energy
from preprocessor.world import aperiodic_synthesis, world_analysis

MATCHING_MODES = ("change", "absolute", "off")
_POWER_EPS = 1e-20


@dataclass(frozen=True)
class MatchSettings:
    """max_gain_db: the clamp of either gain (each way); smooth_frames: width of the moving average over the
    per-frame dB gains (odd; 1 = none); frames whose measured energy is more than `silence_below_peak_db`
    under the window's loudest frame, or under `silence_floor_db`, are silent and left alone;
    passes: solve-and-measure rounds (each but the last one more WORLD analysis of the window)."""

    max_gain_db: float = 12.0
    smooth_frames: int = 5
    silence_below_peak_db: float = 50.0
    silence_floor_db: float = -90.0
    passes: int = 3


def measure_levels(wav: np.ndarray, f0_hz: np.ndarray, sample_rate: int, hop_size: int, win_size: int):
    """(energy dB `[T]`, breathiness dB `[T]`, the WORLD analysis, the aperiodic part `[T * hop]`) of `wav [T * hop]`,
    measured as binarization measures a recording."""
    n = len(f0_hz)
    analysis = world_analysis(wav, sample_rate, hop_size, f0_hz)
    aperiodic = aperiodic_synthesis(analysis, sample_rate, hop_size)
    energy = frame_energy(wav, hop_size, win_size, n).astype(np.float64)
    breathiness = frame_energy(aperiodic, hop_size, win_size, n).astype(np.float64)
    return energy, breathiness, analysis, aperiodic


def _stft(x: np.ndarray, n_fft: int, hop_size: int, win_size: int) -> torch.Tensor:
    """Centred STFT `[K, T + 1]` (frames at t * hop, as WORLD's) of `x [T * hop]`, float64."""
    window = torch.hann_window(win_size, dtype=torch.float64)
    return torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float64)), n_fft, hop_size, win_size, window, center=True, pad_mode="constant", return_complex=True)


def aperiodic_mask(power: np.ndarray, aperiodic_power: np.ndarray, analysis) -> np.ndarray:
    """Per STFT bin `[T + 1, K]`, the fraction of the render's power that is aperiodic (0..1).

    The noise power expected in a bin is WORLD's aperiodic spectrum ``envelope · ap²``, scaled per frame
    to the STFT power of the aperiodic part actually synthesised (`aperiodic_power`); divided by the
    render's own power in that bin (a Wiener mask), it is near 1 between the harmonics and near 0 on them,
    which is what lets a gain change the breathiness rather than only tilt the spectrum."""
    shape = analysis.envelope * analysis.aperiodicity**2  # [T + 1, K]
    scale = aperiodic_power.sum(1, keepdims=True) / np.maximum(shape.sum(1, keepdims=True), _POWER_EPS)
    return np.clip(shape * scale / np.maximum(power, _POWER_EPS), 0.0, 1.0)


def _solve_gains(envelope: np.ndarray, aperiodic_power: np.ndarray, d_energy: np.ndarray, d_breath: np.ndarray, max_ratio_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude gains `(g_p, g_a)` `[T]` such that the masked frame's energy moves by `d_energy` dB and its
    aperiodic energy by `d_breath` dB, per frame.

    `envelope [T, K]` power per bin, `aperiodic_power [T, K]` = ap² in 0..1. With ``v = ap²``, ``u = 1 - v``
    and ``h = g_p u + g_a v`` (the mask), ``Q_E(g) = Σ S h²`` and ``Q_B(g) = Σ S v h²``. With ``r = g_a / g_p``
    the ratio ``Q_B(1, r) / Q_E(1, r)`` (a mean of `v` weighted towards the aperiodic bins as r grows)
    increases with r: bisection in log r over ``±max_ratio_db`` finds the asked ratio, then `g_p` the asked energy.
    """
    s, v = np.maximum(envelope, _POWER_EPS), np.clip(aperiodic_power, 0.0, 1.0)
    u = 1.0 - v
    e = [np.sum(s * u * u, 1), np.sum(s * u * v, 1), np.sum(s * v * v, 1)]
    b = [np.sum(s * v * u * u, 1), np.sum(s * v * v * u, 1), np.sum(s * v * v * v, 1)]
    e1, b1 = np.sum(s, 1), np.maximum(np.sum(s * v, 1), _POWER_EPS)
    alpha, beta = 10.0 ** (d_energy / 10.0), 10.0 ** (d_breath / 10.0)
    wanted = np.log(beta * b1) - np.log(alpha * e1)  # log of the asked Q_B / Q_E

    def quad(c, r):
        return c[0] + 2.0 * c[1] * r + c[2] * r * r

    def log_ratio(r):
        return np.log(np.maximum(quad(b, r), _POWER_EPS)) - np.log(np.maximum(quad(e, r), _POWER_EPS))

    bound = max_ratio_db / 20.0 * np.log(10.0)
    lo, hi = np.full(len(s), -bound), np.full(len(s), bound)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        up = log_ratio(np.exp(mid)) < wanted
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    r = np.exp(0.5 * (lo + hi))
    g_p = np.sqrt(alpha * e1 / np.maximum(quad(e, r), _POWER_EPS))
    return g_p, g_p * r


def _smooth(values: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average over `frames` (edge values repeated)."""
    if frames <= 1 or len(values) == 0:
        return values
    half = frames // 2
    padded = np.pad(values, (half, frames - 1 - half), mode="edge")
    return np.convolve(padded, np.ones(frames) / frames, mode="valid")


def frame_gains_db(power: np.ndarray, mask: np.ndarray, f0_hz: np.ndarray, change_db: np.ndarray, silent: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """The smoothed, clamped `[2, T]` dB gains (periodic, aperiodic) that the mask model says move the frame's
    energy and aperiodic energy by `change_db [2, T]` (`power`, `mask`: `[T + 1, K]` STFT power and
    `aperiodic_mask`); none on `silent [T]` frames, the energy's alone on unvoiced ones."""
    n = len(f0_hz)
    frame_power = 0.5 * (power[:n] + power[1 : n + 1])  # STFT frames sit at t * hop, ours at (t + 0.5) * hop
    frame_mask = 0.5 * (mask[:n] + mask[1 : n + 1])
    limit = 60.0  # keeps 10 ** (d / 10) finite whatever the targets; far beyond the clamp anyway
    d_energy, d_breath = np.clip(change_db[0], -limit, limit), np.clip(change_db[1], -limit, limit)
    g_p, g_a = _solve_gains(frame_power, frame_mask, d_energy, d_breath, 2.0 * settings.max_gain_db)
    gains = 20.0 * np.log10(np.maximum(np.stack([g_p, g_a]), _POWER_EPS))
    unvoiced = f0_hz <= 0
    gains[:, unvoiced] = d_energy[unvoiced]  # all aperiodic to WORLD: one gain, the energy's
    gains[:, silent | ~np.isfinite(gains).all(0)] = 0.0
    gains = np.stack([_smooth(g, settings.smooth_frames) for g in gains])
    return np.clip(gains, -settings.max_gain_db, settings.max_gain_db)


def apply_gains(spec: torch.Tensor, gains_db: np.ndarray, mask: np.ndarray, hop_size: int, win_size: int) -> np.ndarray:
    """The audio `[T * hop]` of the STFT `spec [K, T + 1]` with the `[2, T]` dB gains applied through `mask [T + 1, K]`."""
    n = gains_db.shape[1]
    n_fft = 2 * (spec.shape[0] - 1)
    # STFT frames sit at t * hop: each gets the mean of the two frames around it.
    edge = np.concatenate([gains_db[:, :1], gains_db, gains_db[:, -1:]], axis=1)
    at_stft = 10.0 ** (0.5 * (edge[:, :-1] + edge[:, 1:]) / 20.0)  # [2, T + 1] amplitude
    h = at_stft[0][:, None] * (1.0 - mask) + at_stft[1][:, None] * mask  # [T + 1, K]
    window = torch.hann_window(win_size, dtype=torch.float64)
    y = torch.istft(spec * torch.from_numpy(h.T), n_fft, hop_size, win_size, window, center=True, length=n * hop_size)
    return y.numpy()


def match_variance(
    wav: np.ndarray,
    f0_hz: np.ndarray,
    sample_rate: int,
    hop_size: int,
    win_size: int,
    target_db: np.ndarray | None = None,
    change_db: np.ndarray | None = None,
    settings: MatchSettings = MatchSettings(),
) -> np.ndarray:
    """`wav [T * hop]` (float32) re-levelled so that its measured energy and breathiness become `target_db`
    `[2, T]` (absolute dB), or move by `change_db [2, T]` from what they measure now (exactly one of the two).
    `f0_hz [T]`: the F0 it was sung with (0 = unvoiced). A window too short to analyse comes back as it is."""
    if (target_db is None) == (change_db is None):
        raise ValueError("pass exactly one of target_db and change_db")
    n = len(f0_hz)
    wav = np.asarray(wav, dtype=np.float64)
    if len(wav) != n * hop_size:
        raise ValueError(f"audio has {len(wav)} samples, f0 {n} frames x hop {hop_size}")
    if n < 2 or not np.isfinite(wav).all():
        return wav.astype(np.float32)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    energy, breathiness, analysis, aperiodic = measure_levels(wav, f0, sample_rate, hop_size, win_size)
    levels = np.stack([energy, breathiness])
    wanted = (np.asarray(target_db, dtype=np.float64) - levels) if change_db is None else np.asarray(change_db, dtype=np.float64)
    silent = energy < max(settings.silence_floor_db, float(energy.max()) - settings.silence_below_peak_db)
    wanted = np.where(silent, 0.0, np.clip(wanted, -60.0, 60.0))
    if not np.any(wanted):
        return wav.astype(np.float32)
    n_fft = 2 * (analysis.envelope.shape[1] - 1)  # WORLD's bins, so that its spectra and the STFT's line up
    spec = _stft(wav, n_fft, hop_size, win_size)
    power = (spec.abs() ** 2).numpy().T  # [T + 1, K]
    mask = aperiodic_mask(power, (_stft(aperiodic, n_fft, hop_size, win_size).abs() ** 2).numpy().T, analysis)
    # D4C's breathiness does not move one for one with the masked noise (more noise between the harmonics
    # also raises the aperiodicity it reads): every pass solves from the render as it came, for a request
    # corrected by the secant of what the previous passes measured (per frame, smoothed, slope clipped).
    request, previous_request, previous_moved = wanted, np.zeros_like(wanted), np.zeros_like(wanted)
    bound = 2.0 * settings.max_gain_db
    for number in range(settings.passes):
        gains = frame_gains_db(power, mask, f0, request, silent, settings)
        out = apply_gains(spec, gains, mask, hop_size, win_size)
        if number == settings.passes - 1:
            break
        moved = np.stack(measure_levels(out, f0, sample_rate, hop_size, win_size)[:2]) - levels
        moved = np.stack([_smooth(m, settings.smooth_frames) for m in moved])
        step = request - previous_request
        stepped = np.abs(step) > 0.1  # too small a step says nothing about the slope: assume one for one
        slope = np.where(stepped, (moved - previous_moved) / np.where(stepped, step, 1.0), 1.0)
        slope = np.clip(slope, 0.25, 4.0)
        previous_request, previous_moved = request, moved
        request = np.clip(request + (wanted - moved) / slope, -bound, bound)
    return out.astype(np.float32)
