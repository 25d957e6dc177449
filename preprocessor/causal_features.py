"""Causal, block-by-block F0 and loudness of live audio: what the real-time DDSP singer reads when no F0 comes from outside.

`CausalYin(sample_rate, hop_size, f0_min, f0_max)`: YIN (de Cheveigné & Kawahara 2002) on a look-back
buffer. Frame `t` is analysed when its last sample (`(t + 1) * hop - 1`) has arrived, on the
`2 * tau_max` samples that end there (`tau_max = ceil(sample_rate / f0_min)`): the difference function
over one integration window of `tau_max` samples, its cumulative-mean normalisation, the first dip
below `threshold` (else the global minimum, voiced only below `voicing_limit`), refined by a parabola.
Silence is gated as the offline pYIN path gates it, causally: a frame whose buffer peak is below 3 % of
the loudest peak heard so far, or below -60 dBFS, is unvoiced.

`CausalLoudness(sample_rate, hop_size, n_fft)`: the A-weighted loudness of `preprocessor.loudness` on
the `n_fft` samples ending at each frame's last sample (offline centres the window on the frame).

Latency (what a frame's value lags the offline tracker's frame centre): the pitch window's centre lies
`tau_max - hop / 2` samples before the offline frame centre, the loudness window's `n_fft / 2 - hop / 2`;
`lag_frames` gives both in frames. Both run in numpy with the state of a buffer: `push(samples)` takes
any whole number of hops and returns one value per completed frame.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from preprocessor.loudness import LOUDNESS_FLOOR_DB, ALoudness

YIN_THRESHOLD = 0.15  # the first dip of the normalised difference below this is the period
VOICING_LIMIT = 0.35  # with no dip below the threshold, the global minimum counts as voiced below this
SILENCE_SHARE = 0.03  # as the offline pYIN path: a peak below 3 % of the loudest is silence
SILENCE_FLOOR = 10.0 ** (-60.0 / 20.0)


class _LookBack:
    """The last `length` samples (zeros before the stream starts) and frame bookkeeping."""

    def __init__(self, length: int, hop_size: int) -> None:
        self.length = length
        self.hop_size = hop_size
        self.buffer = np.zeros(length, np.float64)

    def frames_of(self, samples: np.ndarray) -> np.ndarray:
        """`[K, length]`: the look-back window ending at each of the `K` frames completed by `samples` (a whole number of hops)."""
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        if len(samples) % self.hop_size:
            raise ValueError(f"push a whole number of hops ({self.hop_size} samples each), got {len(samples)} samples")
        extended = np.concatenate([self.buffer, samples])
        self.buffer = extended[len(extended) - self.length :]
        ends = self.length + self.hop_size * np.arange(1, len(samples) // self.hop_size + 1)
        return np.stack([extended[end - self.length : end] for end in ends]) if len(ends) else np.zeros((0, self.length))


class CausalYin:
    """`push(samples [K * hop]) -> f0 [K]` (Hz, 0 = unvoiced), frame by frame from a look-back buffer (see the module docstring)."""

    def __init__(
        self, sample_rate: int, hop_size: int, f0_min: float, f0_max: float, threshold: float = YIN_THRESHOLD, voicing_limit: float = VOICING_LIMIT,
    ) -> None:  # fmt: skip
        if not 0 < f0_min < f0_max < sample_rate / 2:
            raise ValueError(f"need 0 < f0_min < f0_max < sample_rate / 2, got {f0_min}, {f0_max}, {sample_rate}")
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.tau_min = max(2, int(math.floor(sample_rate / f0_max)))
        self.tau_max = int(math.ceil(sample_rate / f0_min))
        self.threshold = threshold
        self.voicing_limit = voicing_limit
        self.window = _LookBack(2 * self.tau_max, hop_size)
        self.loudest = 0.0

    @property
    def lag_samples(self) -> float:
        """How far the analysed window's centre lies before the offline frame centre."""
        return self.tau_max - self.hop_size / 2

    def reset(self) -> None:
        self.window = _LookBack(2 * self.tau_max, self.hop_size)
        self.loudest = 0.0

    def push(self, samples: np.ndarray) -> np.ndarray:
        frames = self.window.frames_of(samples)  # [K, 2 * tau_max]
        out = np.zeros(len(frames), np.float32)
        for index, frame in enumerate(frames):
            peak = float(np.abs(frame).max())
            self.loudest = max(self.loudest, peak)
            if peak < max(SILENCE_SHARE * self.loudest, SILENCE_FLOOR):
                continue
            out[index] = self._period_hz(frame)
        return out

    def _period_hz(self, frame: np.ndarray) -> float:
        w, tau_max = self.tau_max, self.tau_max
        lagged = np.lib.stride_tricks.sliding_window_view(frame, w)[: tau_max + 1]  # [tau_max + 1, W]: frame[tau : tau + W]
        difference = ((lagged - frame[:w]) ** 2).sum(axis=1)  # d(tau), tau = 0 .. tau_max
        cumulative = np.cumsum(difference[1:])
        normalised = np.ones_like(difference)
        normalised[1:] = difference[1:] * np.arange(1, tau_max + 1) / np.maximum(cumulative, 1e-12)
        search = normalised[self.tau_min : tau_max]
        below = np.flatnonzero(search < self.threshold)
        if len(below):
            tau = self.tau_min + int(below[0])
            while tau + 1 < tau_max and normalised[tau + 1] < normalised[tau]:  # down to the bottom of the dip
                tau += 1
        else:
            tau = self.tau_min + int(np.argmin(search))
            if normalised[tau] > self.voicing_limit:
                return 0.0
        if 1 <= tau < tau_max:  # parabolic interpolation of the dip
            a, b, c = normalised[tau - 1], normalised[tau], normalised[tau + 1]
            denominator = a - 2 * b + c
            shift = 0.5 * (a - c) / denominator if abs(denominator) > 1e-12 else 0.0
            tau_exact = tau + float(np.clip(shift, -1.0, 1.0))
        else:
            tau_exact = float(tau)
        return self.sample_rate / tau_exact


class CausalLoudness:
    """`push(samples [K * hop]) -> loudness [K]` dB: `preprocessor.loudness.ALoudness` on the `n_fft` samples ending at each frame."""

    def __init__(self, sample_rate: int, hop_size: int, n_fft: int) -> None:
        self.meter = ALoudness(sample_rate, hop_size, n_fft)
        self.hop_size = hop_size
        self.n_fft = n_fft
        self.window = _LookBack(n_fft, hop_size)

    @property
    def lag_samples(self) -> float:
        return self.n_fft / 2 - self.hop_size / 2

    def reset(self) -> None:
        self.window = _LookBack(self.n_fft, self.hop_size)

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(self.window.frames_of(samples)).float()  # [K, n_fft]
        if len(frames) == 0:
            return np.zeros(0, np.float32)
        m = self.meter
        spectrum = torch.fft.rfft(frames * m.window, dim=1)  # [K, F]
        mean_square = (spectrum.real.pow(2) + spectrum.imag.pow(2)) @ m.bin_scale
        return (10.0 * torch.log10(mean_square.clamp(min=10.0 ** (LOUDNESS_FLOOR_DB / 10.0)))).numpy().astype(np.float32)


def lag_frames(tracker: CausalYin, loudness: CausalLoudness) -> tuple[float, float]:
    """(pitch, loudness) lag behind the offline frame centres, in frames."""
    return tracker.lag_samples / tracker.hop_size, loudness.lag_samples / loudness.hop_size
