"""MCD and log-F0 RMSE as ESPnet2 computes them, so that figures can stand in one table with ESPnet's.

The definitions are those of ESPnet2's ``egs2/TEMPLATE/asr1/pyscripts/utils/evaluate_mcd.py`` and
``evaluate_f0.py`` with their command-line defaults (the settings of ESPnet's CSD recipe,
``egs2/csd/svs1``), computed with the libraries those scripts call: pysptk (SPTK), pyworld (WORLD)
and fastdtw, pinned in requirements.txt. This project's own MCD and cents-based F0 error
(`inference.metrics`) are reported beside them and are not comparable with these.

Input scale
    ESPnet reads both wavs with ``soundfile.read(path, dtype="int16")`` and analyses the integer
    values. Here the float wavs in [-1, 1] are scaled by 32768 and rounded, which gives exactly the
    integers soundfile returns for a 16-bit PCM file (the format `preprocessor.atomic_io` writes).

Analysis settings per sample rate (ESPnet's ``_get_best_mcep_params``)
    ``mcep_dim`` (the SPTK order M: coefficients c0..cM are kept) and the all-pass ``alpha``:
    16 kHz: 23, 0.42; 22.05 kHz: 34, 0.45; 24 kHz: 34, 0.46; 44.1 kHz: 39, 0.53; 48 kHz: 39, 0.55.
    Other rates are an error, as in ESPnet. FFT length ``n_fft`` = 1024, frame shift ``n_shift`` = 256
    samples at every rate; F0 search range 40-800 Hz.

MCD (``mcd_espnet``, dB)
    Frames: ``x[256 i : 256 i + 1024]`` for ``i < (len(x) - 1024) // 256 + 1`` (no padding), times
    SPTK's Hamming window (``pysptk.sptk.hamming``, power-normalised). Mel-cepstrum: SPTK's
    mel-cepstral analysis ``pysptk.mcep(frame, M, alpha, eps=1e-6, etype=1)`` -> c0..cM. Alignment:
    ``fastdtw(gen, ref, dist=euclidean)`` (radius 1) on the full c0..cM vectors. Distance: the mean
    over the path's pairs of ``(10 / ln 10) * sqrt(2 * sum_{d=0..M} (c_d - c^_d)^2)`` -- c0 (level)
    included and no silence excluded, as ESPnet does.

log-F0 RMSE (``log_f0_rmse_espnet``, natural-log units; x 1200/ln 2 = 1731.2 gives cents)
    WORLD: ``pyworld.harvest(x, fs, f0_floor=40, f0_ceil=800, frame_period=256 / fs * 1000 ms)`` gives
    F0, ``pyworld.cheaptrick(x, f0, t, fs, fft_size=1024)`` the spectral envelope and
    ``pysptk.sp2mc(envelope, M, alpha)`` its mel-cepstrum c0..cM. The two F0 tracks are aligned by
    ``fastdtw`` on those mel-cepstra (euclidean); over the path's pairs voiced in both,
    ``sqrt(mean((ln f_gen - ln f_ref)^2))``. NaN when no pair is voiced in both.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

import numpy as np

# ESPnet's analysis settings (see the module docstring).
ESPNET_MCEP_PARAMS = {16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 44100: (39, 0.53), 48000: (39, 0.55)}
ESPNET_N_FFT = 1024
ESPNET_N_SHIFT = 256
ESPNET_F0_MIN = 40.0
ESPNET_F0_MAX = 800.0
MCEP_EPS = 1e-6
INT16_SCALE = 32768.0  # soundfile's float <-> int16 factor for PCM-16 files
NATURAL_LOG_TO_CENTS = 1200.0 / math.log(2.0)


class EspnetMetrics(NamedTuple):
    """mcd_espnet: dB over `mcd_pairs` DTW pairs; log_f0_rmse_espnet: natural-log units over `f0_pairs` voiced pairs."""

    mcd_espnet: float
    log_f0_rmse_espnet: float
    mcd_pairs: int
    f0_pairs: int


def _pysptk():
    # pysptk 1.0.1 imports the deprecated pkg_resources at import time; the warning is not ours to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pysptk
    return pysptk


def mcep_params(sample_rate: int) -> tuple[int, float]:
    """ESPnet's ``(mcep_dim, mcep_alpha)`` for `sample_rate`; ValueError for a rate ESPnet has no setting for."""
    if sample_rate not in ESPNET_MCEP_PARAMS:
        rates = ", ".join(str(rate) for rate in ESPNET_MCEP_PARAMS)
        raise ValueError(f"ESPnet's metrics have no mel-cepstrum setting for {sample_rate} Hz (only {rates})")
    return ESPNET_MCEP_PARAMS[sample_rate]


def espnet_settings(sample_rate: int) -> dict[str, Any] | None:
    """The analysis settings used at `sample_rate` (for metrics.json); None where ESPnet has none."""
    if sample_rate not in ESPNET_MCEP_PARAMS:
        return None
    order, alpha = ESPNET_MCEP_PARAMS[sample_rate]
    return {
        "mcep_dim": order, "mcep_alpha": alpha, "n_fft": ESPNET_N_FFT, "n_shift": ESPNET_N_SHIFT,
        "f0_min": ESPNET_F0_MIN, "f0_max": ESPNET_F0_MAX, "dtw": "fastdtw(euclidean, radius=1)",
    }  # fmt: skip


def as_int16_values(wav: np.ndarray) -> np.ndarray:
    """Float ``[S]`` in [-1, 1] -> float64 ``[S]`` holding the int16 values ESPnet reads (see the docstring)."""
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"expected mono wav [S], got shape {wav.shape}")
    return np.clip(np.round(wav * INT16_SCALE), -32768, 32767)


# The reference recording is analysed once for every system compared with it (a test split is
# evaluated per system): features of the last few signals are kept, keyed by their samples' digest.
_FEATURE_CACHE: OrderedDict[tuple[str, bytes, int], Any] = OrderedDict()
_FEATURE_CACHE_SIZE = 32


def _cached(kind: str, x: np.ndarray, sample_rate: int, compute: Callable[[np.ndarray, int], Any]) -> Any:
    key = (kind, hashlib.sha1(np.ascontiguousarray(x).tobytes()).digest(), sample_rate)
    if key in _FEATURE_CACHE:
        _FEATURE_CACHE.move_to_end(key)
        return _FEATURE_CACHE[key]
    value = compute(x, sample_rate)
    _FEATURE_CACHE[key] = value
    if len(_FEATURE_CACHE) > _FEATURE_CACHE_SIZE:
        _FEATURE_CACHE.popitem(last=False)
    return value


def sptk_mel_cepstra(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[N, M + 1]`` SPTK mel-cepstra of int16-valued ``x [S]`` (ESPnet's ``sptk_extract``); N may be 0."""
    order, alpha = mcep_params(sample_rate)
    n_frames = (len(x) - ESPNET_N_FFT) // ESPNET_N_SHIFT + 1
    if n_frames <= 0:
        return np.zeros((0, order + 1))
    pysptk = _pysptk()
    window = pysptk.sptk.hamming(ESPNET_N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, ESPNET_N_FFT)[::ESPNET_N_SHIFT][:n_frames] * window  # [N, n_fft]
    return np.stack([pysptk.mcep(np.ascontiguousarray(frame), order, alpha, eps=MCEP_EPS, etype=1) for frame in frames])


def world_features(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mel_cepstra [N, M + 1], f0_hz [N])`` of int16-valued ``x [S]`` by WORLD (ESPnet's ``world_extract``)."""
    import pyworld

    order, alpha = mcep_params(sample_rate)
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, time_axis = pyworld.harvest(
        x, sample_rate, f0_floor=ESPNET_F0_MIN, f0_ceil=ESPNET_F0_MAX, frame_period=ESPNET_N_SHIFT / sample_rate * 1000
    )
    envelope = pyworld.cheaptrick(x, f0, time_axis, sample_rate, fft_size=ESPNET_N_FFT)
    return _pysptk().sp2mc(envelope, order, alpha), f0


def _dtw_path(generated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    _, path = fastdtw(generated, reference, dist=euclidean)
    pairs = np.asarray(path, dtype=np.int64).T  # [2, L]: generated index, reference index
    return pairs[0], pairs[1]


def espnet_mcd(ref_wav: np.ndarray, gen_wav: np.ndarray, sample_rate: int) -> tuple[float, int]:
    """``(mcd_db, pairs)`` as ESPnet's evaluate_mcd.py; NaN with 0 pairs when a wav is shorter than one frame."""
    ref = _cached("sptk", as_int16_values(ref_wav), sample_rate, sptk_mel_cepstra)
    gen = _cached("sptk", as_int16_values(gen_wav), sample_rate, sptk_mel_cepstra)
    if len(ref) == 0 or len(gen) == 0:
        return float("nan"), 0
    gen_index, ref_index = _dtw_path(gen, ref)
    difference = gen[gen_index] - ref[ref_index]
    per_pair = 10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(difference * difference, axis=1))
    return float(np.mean(per_pair)), len(per_pair)


def espnet_log_f0_rmse(ref_wav: np.ndarray, gen_wav: np.ndarray, sample_rate: int) -> tuple[float, int]:
    """``(log_f0_rmse, voiced_pairs)`` as ESPnet's evaluate_f0.py; NaN with 0 pairs when none is voiced in both."""
    ref_x, gen_x = as_int16_values(ref_wav), as_int16_values(gen_wav)
    if len(ref_x) == 0 or len(gen_x) == 0:
        return float("nan"), 0
    ref_mcep, ref_f0 = _cached("world", ref_x, sample_rate, world_features)
    gen_mcep, gen_f0 = _cached("world", gen_x, sample_rate, world_features)
    gen_index, ref_index = _dtw_path(gen_mcep, ref_mcep)
    gen_f0, ref_f0 = gen_f0[gen_index], ref_f0[ref_index]
    voiced = (gen_f0 != 0) & (ref_f0 != 0)
    if not voiced.any():
        return float("nan"), 0
    log_ratio = np.log(gen_f0[voiced]) - np.log(ref_f0[voiced])
    return float(np.sqrt(np.mean(log_ratio * log_ratio))), int(voiced.sum())


def espnet_metrics(ref_wav: np.ndarray, gen_wav: np.ndarray, sample_rate: int) -> EspnetMetrics:
    """Both ESPnet metrics of mono float ``gen_wav [S]`` against ``ref_wav [S']`` at one `sample_rate`."""
    mcd, mcd_pairs = espnet_mcd(ref_wav, gen_wav, sample_rate)
    log_f0_rmse, f0_pairs = espnet_log_f0_rmse(ref_wav, gen_wav, sample_rate)
    return EspnetMetrics(mcd, log_f0_rmse, mcd_pairs, f0_pairs)
