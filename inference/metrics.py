"""Objective metrics for singing voice synthesis: mel-cepstral distortion, F0 accuracy, voicing, tuning.

Every metric compares a generated wav with the reference recording of the same score segment
(both mono float, same sample rate). The definitions below are exact; the README quotes them.

Mel-cepstral distortion (MCD, dB)
    Frames: Hann window of ``window_ms`` (25 ms) every ``hop_ms`` (5 ms), ``round(ms * sr / 1000)``
    samples, frame ``t`` centred on sample ``t * hop`` (the signal is reflect-padded by half a window
    at both ends), FFT size the next power of two >= the window. These frames are independent of the
    model's hop so that MCD figures are comparable between configurations.

    Mel-cepstrum: the natural-log amplitude spectrum ``L(w) = 0.5 * ln(max(|X(w)|^2, P_floor))``,
    with ``P_floor`` = the wav's peak ``|X|^2`` over all frames and bins minus ``dynamic_range_db``
    (80 dB; never below 1e-10), so that a gain change only moves ``c_0``. ``L`` is warped
    with the first-order all-pass ``z~^-1 = (z^-1 - alpha) / (1 - alpha z^-1)`` (the warping of
    SPTK's ``freqt`` / ``mcep``), whose phase maps frequency ``w`` to
    ``b(w) = w + 2 atan(alpha sin w / (1 - alpha cos w))``. Coefficient ``d`` is the cosine
    transform over the warped frequency, ``c_d = (1/pi) * integral_0^pi L(b^-1(v)) cos(d v) dv``
    (so that ``L = c_0 + 2 sum_d c_d cos(d v)``), evaluated with the trapezoidal rule on a grid
    4x denser than the FFT bins, ``L`` interpolated linearly between bins. No envelope estimation
    (WORLD / UELS) is done: the low-order warped cepstrum itself is the smoothed envelope. Values
    are therefore close to, but not identical with, those of pysptk's ``mcep`` pipelines.
    ``alpha`` defaults to the value whose warping best fits the mel scale ``1000/ln2 * ln(1 + f/1000)``
    over 0..sr/2 in least squares (pysptk's ``mcepalpha`` rule): 0.410 at 16 kHz, 0.466 at 24 kHz,
    0.544 at 44.1 kHz, 0.554 at 48 kHz.

    Distance: ``order`` = 24 coefficients ``c_1 .. c_24`` (``c_0``, the frame's overall level, is
    excluded, so a gain change costs nothing). Per frame pair
    ``MCD = (10 / ln 10) * sqrt(2 * sum_{d=1..24} (c_d - c^_d)^2)``.
    The two sequences are aligned by dynamic time warping (`dtw_align`: Euclidean distance on
    ``c_1..c_24``, steps (1,1), (1,0), (0,1) with equal weight, minimum total distance), and the
    per-pair MCD is averaged over the pairs of the path whose *reference* frame is not silent.
    Silent: the reference frame's energy ``10 log10(sum of windowed samples^2)`` lies more than
    ``silence_db`` (40 dB) below the loudest reference frame. A generated frame stretched over many
    reference frames (or the reverse) counts once per pair, as the path has it. The cepstra are of
    the natural-log *amplitude*, the convention of SPTK/pysptk that this formula assumes. MCD figures
    depend on the sample rate (alpha and the band up to Nyquist change): compare them only at one rate.

F0 metrics (against the reference)
    F0 from `preprocessor.audio.extract_f0` (``f0_method``: parselmouth or pyin, range
    ``f0_min..f0_max``) on both wavs with the same ``hop_size``; ``len(wav) // hop_size`` frames
    each, the longer track trimmed to the shorter. No time warping is applied: renders from the
    score are time-aligned with the reference by construction, and warping would hide timing errors.

    - ``f0_rmse_cents = sqrt(mean((1200 * log2(f_gen / f_ref))^2))`` over frames voiced in both.
    - ``semitone_accuracy`` = share of frames voiced in both where
      ``round(hz_to_midi(f_gen)) == round(hz_to_midi(f_ref))``.
    - ``vuv_error`` = share of all compared frames (voiced or not) whose voicing decision differs.

F0 against the score
    ``in_tune_share`` = share of frames voiced in the generated wav and under a note (score pitch
    > 0; rest frames are excluded) where ``|1200 * log2(f_gen / midi_to_hz(pitch))| <= 50`` cents.
    ``score_pitch_frames`` is the per-frame MIDI pitch at the same hop (0 = rest); it and the
    generated F0 track are trimmed to the shorter of the two.

ESPnet2's metrics
    ``mcd_espnet`` (dB) and ``log_f0_rmse_espnet`` (natural-log units) are ESPnet2's evaluate_mcd.py and
    evaluate_f0.py definitions (`inference.espnet_metrics`: SPTK / WORLD analysis, fastdtw), computed on
    the same pair so that a table can quote figures comparable with ESPnet's; NaN at a sample rate
    ESPnet has no analysis setting for, or with ``espnet=False``.

Missing values
    A metric with nothing to average (no frames voiced in both, no voiced frame under a note, no
    score given, every reference frame silent) is NaN for that item; `summarize` averages each metric
    over the items where it is finite and reports how many those were.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple, Sequence

import numpy as np

from inference.espnet_metrics import ESPNET_MCEP_PARAMS, espnet_metrics
from preprocessor.audio import extract_f0, hz_to_midi, midi_to_hz

# 10 / ln 10 * sqrt(2): turns a Euclidean distance between natural-log cepstra into dB.
MCD_DB_PER_NEPER = 10.0 / math.log(10.0) * math.sqrt(2.0)
POWER_FLOOR = 1e-10  # keeps the log of digital silence finite (-100 dB)
IN_TUNE_CENTS = 50.0
WARP_OVERSAMPLING = 4  # warped-frequency grid points per FFT bin, for the trapezoidal integral


@dataclass(frozen=True)
class MCDSettings:
    """Mel-cepstrum analysis for MCD (see the module docstring).

    order: cepstral coefficients compared (``c_1 .. c_order``); window_ms / hop_ms: Hann window and
    frame step in milliseconds; alpha: all-pass warping constant, None = fit to the mel scale at the
    sample rate (`mel_alpha`); silence_db: reference frames this far below the loudest one are left
    out of the average; dynamic_range_db: the power spectrum is floored this far below its peak
    over the whole wav.
    """

    order: int = 24
    window_ms: float = 25.0
    hop_ms: float = 5.0
    alpha: float | None = None
    silence_db: float = 40.0
    dynamic_range_db: float = 80.0

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"order must be >= 1, got {self.order}")
        if not 0 < self.hop_ms <= self.window_ms:
            raise ValueError(f"need 0 < hop_ms <= window_ms, got hop_ms={self.hop_ms}, window_ms={self.window_ms}")
        if self.alpha is not None and not -1 < self.alpha < 1:
            raise ValueError(f"alpha must be in (-1, 1) for a stable all-pass, got {self.alpha}")
        if self.silence_db <= 0:
            raise ValueError(f"silence_db must be > 0, got {self.silence_db}")
        if self.dynamic_range_db <= 0:
            raise ValueError(f"dynamic_range_db must be > 0, got {self.dynamic_range_db}")

    def resolved_alpha(self, sample_rate: int) -> float:
        return mel_alpha(sample_rate) if self.alpha is None else self.alpha


@dataclass(frozen=True)
class SingingMetrics:
    """One item's metrics (NaN where nothing could be measured; see the module docstring).

    mcd_db: DTW-aligned MCD over non-silent reference frames; f0_rmse_cents, semitone_accuracy:
    over frames voiced in both; vuv_error: over all compared F0 frames; in_tune_share: over
    generated voiced frames under a note (NaN without a score). voiced_frames: frames voiced in
    both; f0_frames: F0 frames compared (the shorter track); in_tune_frames: frames behind
    in_tune_share; mcd_frames: DTW path pairs behind mcd_db. mcd_espnet, log_f0_rmse_espnet:
    ESPnet2's definitions (`inference.espnet_metrics`), NaN when not computed.
    """

    mcd_db: float
    f0_rmse_cents: float
    semitone_accuracy: float
    vuv_error: float
    in_tune_share: float
    voiced_frames: int
    f0_frames: int
    in_tune_frames: int
    mcd_frames: int
    mcd_espnet: float = float("nan")
    log_f0_rmse_espnet: float = float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


# The float metrics `summarize` averages; the int fields are frame counts and are summed.
METRIC_NAMES = ("mcd_db", "f0_rmse_cents", "semitone_accuracy", "vuv_error", "in_tune_share", "mcd_espnet", "log_f0_rmse_espnet")


class MelCepstra(NamedTuple):
    """coefficients: float64 ``[T, order]`` (``c_1..c_order``); energy_db: float64 ``[T]`` frame energy."""

    coefficients: np.ndarray
    energy_db: np.ndarray


class F0Comparison(NamedTuple):
    f0_rmse_cents: float
    semitone_accuracy: float
    vuv_error: float
    voiced_frames: int
    frames: int


class TuningResult(NamedTuple):
    in_tune_share: float
    frames: int


def allpass_warp(omega: np.ndarray, alpha: float) -> np.ndarray:
    """Phase response ``b(w)`` of the all-pass ``(z^-1 - alpha) / (1 - alpha z^-1)``: [0, pi] onto [0, pi].

    ``allpass_warp(allpass_warp(w, alpha), -alpha) == w``: the inverse warping is the same all-pass with
    ``-alpha``.
    """
    omega = np.asarray(omega, dtype=np.float64)
    return omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))


def mel_alpha(sample_rate: int, points: int = 1000) -> float:
    """All-pass constant (3 decimals) whose warping best fits the mel scale over 0..sample_rate/2.

    Both curves are normalised to end at 1 at Nyquist; the mel scale is ``1000/ln2 * ln(1 + f/1000)``.
    The search runs over 0.000..0.999 in steps of 0.001 (the rule of pysptk's ``mcepalpha``).
    """
    omega = np.linspace(0.0, math.pi, points)
    mel = np.log1p(omega / math.pi * (sample_rate / 2.0) / 1000.0)
    mel /= mel[-1]
    candidates = np.arange(0.0, 1.0, 0.001)
    warped = allpass_warp(omega[None, :], candidates[:, None]) / math.pi  # [A, points], ends at 1
    errors = np.mean((warped - mel[None, :]) ** 2, axis=1)
    return round(float(candidates[int(np.argmin(errors))]), 3)


def _frame_sizes(sample_rate: int, settings: MCDSettings) -> tuple[int, int, int]:
    window = max(2, round(settings.window_ms * sample_rate / 1000.0))
    hop = max(1, round(settings.hop_ms * sample_rate / 1000.0))
    n_fft = 1 << (window - 1).bit_length()
    return window, hop, n_fft


def _warped_cosine_matrix(n_fft: int, order: int, alpha: float) -> np.ndarray:
    """``[order + 1, n_fft // 2 + 1]`` linear map from the log spectrum on FFT bins to ``c_0..c_order``.

    The warped axis ``v`` is sampled uniformly on [0, pi]; each point reads ``L`` at ``b^-1(v)`` by
    linear interpolation between two FFT bins; the trapezoidal weights and ``cos(d v)`` are folded in.
    """
    bins = n_fft // 2 + 1
    grid = WARP_OVERSAMPLING * (bins - 1) + 1
    warped = np.linspace(0.0, math.pi, grid)  # v
    position = allpass_warp(warped, -alpha) / math.pi * (bins - 1)  # fractional FFT bin of b^-1(v)
    position = np.clip(position, 0.0, bins - 1)
    lower = np.minimum(np.floor(position).astype(np.int64), bins - 2)
    upper_weight = position - lower
    trapezoid = np.full(grid, 1.0 / (grid - 1))
    trapezoid[[0, -1]] *= 0.5
    matrix = np.zeros((order + 1, bins), np.float64)
    for d in range(order + 1):
        weight = trapezoid * np.cos(d * warped)  # (1/pi) dv cos(d v), with dv = pi / (grid - 1)
        matrix[d] = np.bincount(lower, weight * (1.0 - upper_weight), minlength=bins) + np.bincount(
            lower + 1, weight * upper_weight, minlength=bins
        )
    return matrix


def mel_cepstra(wav: np.ndarray, sample_rate: int, settings: MCDSettings = MCDSettings()) -> MelCepstra:
    """Mel-cepstra ``c_1..c_order`` and frame energies of mono ``wav [S]`` (see the module docstring)."""
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"expected mono wav [S], got shape {wav.shape}")
    window, hop, n_fft = _frame_sizes(sample_rate, settings)
    pad = window // 2
    mode = "reflect" if len(wav) > pad else "constant"
    padded = np.pad(wav, (pad, pad), mode=mode)
    n_frames = 1 + (len(padded) - window) // hop if len(padded) >= window else 0
    if n_frames == 0:
        return MelCepstra(np.zeros((0, settings.order)), np.zeros(0))
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop][:n_frames]  # [T, window]
    windowed = frames * np.hanning(window + 1)[:-1]  # periodic Hann
    power = np.abs(np.fft.rfft(windowed, n=n_fft, axis=1)) ** 2  # [T, n_fft // 2 + 1]
    # A floor relative to the wav's own peak: a gain change moves the floor with the signal, so it
    # only shifts c_0 (excluded); the absolute floor keeps digital silence finite.
    floor = max(float(power.max()) * 10.0 ** (-settings.dynamic_range_db / 10.0), POWER_FLOOR)
    log_amplitude = 0.5 * np.log(np.maximum(power, floor))
    matrix = _warped_cosine_matrix(n_fft, settings.order, settings.resolved_alpha(sample_rate))
    cepstra = log_amplitude @ matrix.T  # [T, F] @ [F, order + 1] -> [T, order + 1]
    energy_db = 10.0 * np.log10(np.sum(windowed * windowed, axis=1) + POWER_FLOOR)
    return MelCepstra(cepstra[:, 1:], energy_db)


def dtw_align(reference: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotonic alignment of ``reference [N, D]`` and ``generated [M, D]``.

    Local cost: Euclidean distance; steps (1,1), (1,0), (0,1) with equal weight; the path runs from
    (0, 0) to (N-1, M-1), ties prefer the diagonal. Returns ``(ref_index [L], gen_index [L])``.
    The accumulated cost is computed one anti-diagonal ``i + j = k`` at a time (vectorised), keeping
    only two diagonals of costs plus an int8 ``[N, M]`` table of back-pointers: 5.8 MB for two 12 s
    sequences at a 5 ms hop.
    """
    reference = np.asarray(reference, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    n, m = len(reference), len(generated)
    if n == 0 or m == 0:
        raise ValueError(f"cannot align empty sequences (lengths {n} and {m})")
    back = np.zeros((n, m), np.int8)  # 0: from (i-1, j-1), 1: from (i-1, j), 2: from (i, j-1)
    # Accumulated cost of the two previous diagonals, indexed by i + 1 (slot 0 stands for i = -1).
    before_previous = np.full(n + 1, np.inf)
    previous = np.full(n + 1, np.inf)
    for k in range(n + m - 1):
        i = np.arange(max(0, k - m + 1), min(n - 1, k) + 1)
        j = k - i
        cost = np.sqrt(np.sum((reference[i] - generated[j]) ** 2, axis=1))
        current = np.full(n + 1, np.inf)
        if k == 0:
            current[1] = cost[0]
        else:
            # (i-1, j-1) lies on diagonal k-2 at slot i; (i-1, j) on k-1 at slot i; (i, j-1) on k-1 at slot i+1.
            candidates = np.stack([before_previous[i], previous[i], previous[i + 1]])  # [3, len(i)]
            step = np.argmin(candidates, axis=0)
            current[i + 1] = cost + candidates[step, np.arange(len(i))]
            back[i, j] = step
        before_previous, previous = previous, current
    ref_path, gen_path = [n - 1], [m - 1]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        step = back[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
        ref_path.append(i)
        gen_path.append(j)
    return np.asarray(ref_path[::-1], np.int64), np.asarray(gen_path[::-1], np.int64)


def mel_cepstral_distortion(
    ref_wav: np.ndarray, gen_wav: np.ndarray, sample_rate: int, settings: MCDSettings = MCDSettings(), use_dtw: bool = True
) -> tuple[float, int]:
    """``(mcd_db, pairs)``: MCD of ``gen_wav`` against ``ref_wav`` and the frame pairs it averages.

    ``use_dtw=False`` pairs frame ``t`` with frame ``t`` over the shorter length instead of the DTW
    path (only for comparison; the reported metric uses DTW). NaN with 0 pairs when either wav is
    too short for one frame or every compared reference frame is silent.
    """
    ref = mel_cepstra(ref_wav, sample_rate, settings)
    gen = mel_cepstra(gen_wav, sample_rate, settings)
    if len(ref.energy_db) == 0 or len(gen.energy_db) == 0:
        return float("nan"), 0
    if use_dtw:
        ref_index, gen_index = dtw_align(ref.coefficients, gen.coefficients)
    else:
        ref_index = gen_index = np.arange(min(len(ref.energy_db), len(gen.energy_db)))
    loud = ref.energy_db[ref_index] >= ref.energy_db.max() - settings.silence_db
    if not loud.any():
        return float("nan"), 0
    difference = ref.coefficients[ref_index[loud]] - gen.coefficients[gen_index[loud]]  # [L, order]
    per_pair = MCD_DB_PER_NEPER * np.sqrt(np.sum(difference * difference, axis=1))
    return float(np.mean(per_pair)), int(loud.sum())


def compare_f0(ref_f0_hz: np.ndarray, gen_f0_hz: np.ndarray) -> F0Comparison:
    """F0 metrics of two frame-aligned tracks (Hz, 0 = unvoiced), trimmed to the shorter one."""
    frames = min(len(ref_f0_hz), len(gen_f0_hz))
    ref = np.asarray(ref_f0_hz[:frames], dtype=np.float64)
    gen = np.asarray(gen_f0_hz[:frames], dtype=np.float64)
    ref_voiced, gen_voiced = ref > 0, gen > 0
    vuv_error = float(np.mean(ref_voiced != gen_voiced)) if frames else float("nan")
    both = ref_voiced & gen_voiced
    if not both.any():
        return F0Comparison(float("nan"), float("nan"), vuv_error, 0, frames)
    cents = 1200.0 * np.log2(gen[both] / ref[both])
    same_semitone = np.round(hz_to_midi(gen[both])) == np.round(hz_to_midi(ref[both]))
    return F0Comparison(float(np.sqrt(np.mean(cents * cents))), float(np.mean(same_semitone)), vuv_error, int(both.sum()), frames)


def in_tune_share(gen_f0_hz: np.ndarray, score_pitch_frames: np.ndarray) -> TuningResult:
    """Share of voiced generated frames under a note within 50 cents of the note's pitch.

    gen_f0_hz: ``[T]`` Hz, 0 = unvoiced; score_pitch_frames: ``[T']`` MIDI pitch per frame, 0 = rest.
    Both are trimmed to the shorter length; NaN with 0 frames when no voiced frame falls under a note.
    """
    frames = min(len(gen_f0_hz), len(score_pitch_frames))
    gen = np.asarray(gen_f0_hz[:frames], dtype=np.float64)
    pitch = np.asarray(score_pitch_frames[:frames], dtype=np.float64)
    counted = (gen > 0) & (pitch > 0)
    if not counted.any():
        return TuningResult(float("nan"), 0)
    cents = 1200.0 * np.log2(gen[counted] / midi_to_hz(pitch[counted]))
    return TuningResult(float(np.mean(np.abs(cents) <= IN_TUNE_CENTS)), int(counted.sum()))


def evaluate_pair(
    ref_wav: np.ndarray,
    gen_wav: np.ndarray,
    sample_rate: int,
    hop_size: int,
    f0_min: float,
    f0_max: float,
    f0_method: str,
    score_pitch_frames: np.ndarray | None = None,
    mcd_settings: MCDSettings = MCDSettings(),
    espnet: bool = True,
) -> SingingMetrics:
    """All metrics of one generated wav against its reference (mono float ``[S]`` each, same rate).

    score_pitch_frames: optional ``[T]`` MIDI pitch per ``hop_size`` frame (0 = rest) for
    ``in_tune_share``; without it that metric is NaN. espnet: also compute ESPnet2's two metrics
    (WORLD/SPTK analysis, a few seconds per item on a CPU); NaN at a rate ESPnet has no setting for.
    """
    ref_wav = np.asarray(ref_wav, dtype=np.float32)
    gen_wav = np.asarray(gen_wav, dtype=np.float32)
    mcd_db, mcd_frames = mel_cepstral_distortion(ref_wav, gen_wav, sample_rate, mcd_settings)
    ref_f0 = extract_f0(ref_wav, sample_rate, hop_size, len(ref_wav) // hop_size, f0_min, f0_max, f0_method).f0_hz
    gen_f0 = extract_f0(gen_wav, sample_rate, hop_size, len(gen_wav) // hop_size, f0_min, f0_max, f0_method).f0_hz
    f0 = compare_f0(ref_f0, gen_f0)
    tuning = TuningResult(float("nan"), 0) if score_pitch_frames is None else in_tune_share(gen_f0, np.asarray(score_pitch_frames))
    nan = float("nan")
    espnet_mcd_db, espnet_log_f0 = nan, nan
    if espnet and sample_rate in ESPNET_MCEP_PARAMS:
        espnet_mcd_db, espnet_log_f0, _, _ = espnet_metrics(ref_wav, gen_wav, sample_rate)
    return SingingMetrics(
        mcd_db=mcd_db,
        f0_rmse_cents=f0.f0_rmse_cents,
        semitone_accuracy=f0.semitone_accuracy,
        vuv_error=f0.vuv_error,
        in_tune_share=tuning.in_tune_share,
        voiced_frames=f0.voiced_frames,
        f0_frames=f0.frames,
        in_tune_frames=tuning.frames,
        mcd_frames=mcd_frames,
        mcd_espnet=espnet_mcd_db,
        log_f0_rmse_espnet=espnet_log_f0,
    )


def summarize(items: Sequence[SingingMetrics]) -> dict[str, float | int]:
    """Mean of each metric over the items where it is finite (NaN items are left out, not zeroed).

    Returns ``{metric: mean, ...}`` (NaN when no item has it), ``"<metric>_items"``: how many items
    each mean covers, ``"items"``: the number of items, and the frame counts summed over all items.
    Each item weighs the same, whatever its length.
    """
    summary: dict[str, float | int] = {"items": len(items)}
    for name in METRIC_NAMES:
        values = np.array([getattr(item, name) for item in items], dtype=np.float64)
        finite = values[np.isfinite(values)]
        summary[name] = float(finite.mean()) if len(finite) else float("nan")
        summary[f"{name}_items"] = int(len(finite))
    for field in fields(SingingMetrics):
        if field.name not in METRIC_NAMES:
            summary[field.name] = int(sum(getattr(item, field.name) for item in items))
    return summary
