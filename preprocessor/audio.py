"""Audio features shared by binarization and the training losses: wav loading, spectrograms, f0, energy.

Frame convention (every feature here follows it, so frame ``t`` of the mel, the linear spectrogram,
the f0 track and the energy all describe the same stretch of sound):

- A signal of ``S`` samples has exactly ``T = S // hop_size`` frames.
- Frame ``t`` is centred on sample ``(t + 0.5) * hop_size``: the middle of the hop-sized chunk
  ``[t * hop_size, (t + 1) * hop_size)`` that a decoder with total upsampling ``hop_size`` writes
  for that frame.
- The spectrogram gets there as HiFi-GAN/VITS do: the signal is reflect-padded by
  ``(n_fft - hop_size) // 2`` samples on the left and ``n_fft - hop_size - left`` on the right, then
  framed with ``center=False``. The f0 and energy tracks are read at the same centres.

Spectrograms are computed in torch (float32) so the training losses use the very same numbers as
the binarized features, on CPU or GPU; f0 and energy are numpy (binarization only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch
from scipy.ndimage import maximum_filter1d
from torch import nn

from config.errors import UserInputError

F0_METHODS = ("parselmouth", "pyin")

# Floors that keep logs finite: the magnitude epsilon of VITS/HiFi-GAN, and the mel clamp.
MAGNITUDE_EPSILON = 1e-9
LOG_MEL_FLOOR = 1e-5
ENERGY_FLOOR_DB = -100.0
PYIN_SILENCE_THRESHOLD = 0.03  # Praat's default silence threshold, relative to the global peak
PYIN_SILENCE_FLOOR = 1e-3  # absolute peak (-60 dBFS) below which a frame is silent


@dataclass(frozen=True)
class AudioSettings:
    """The YAML ``audio:`` section, one field per key.

    sample_rate: Hz of every processed wav; hop_size: samples per frame; win_size: STFT window
    (Hann, centred inside n_fft); n_fft: FFT size (``n_fft // 2 + 1`` linear bins); n_mels, fmin,
    fmax: mel filterbank (Hz); f0_min, f0_max: pitch search range (Hz); f0_extractor: one of
    `F0_METHODS`.
    """

    sample_rate: int = 24000
    hop_size: int = 300
    win_size: int = 1200
    n_fft: int = 2048
    n_mels: int = 128
    fmin: float = 20
    fmax: float = 12000
    f0_min: float = 50
    f0_max: float = 1100
    f0_extractor: str = "parselmouth"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "hop_size", "win_size", "n_fft", "n_mels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.win_size > self.n_fft:
            raise ValueError(f"win_size ({self.win_size}) must be <= n_fft ({self.n_fft}); raise n_fft or lower win_size")
        if self.hop_size > self.win_size:
            raise ValueError(f"hop_size ({self.hop_size}) must be <= win_size ({self.win_size}) or samples fall between frames")
        nyquist = self.sample_rate / 2
        if not 0 <= self.fmin < self.fmax:
            raise ValueError(f"need 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.fmax}")
        if self.fmax > nyquist:
            raise ValueError(f"fmax ({self.fmax}) must be <= sample_rate / 2 ({nyquist:g}); lower fmax or raise sample_rate")
        if not 0 < self.f0_min < self.f0_max:
            raise ValueError(f"need 0 < f0_min < f0_max, got f0_min={self.f0_min}, f0_max={self.f0_max}")
        if self.f0_max >= nyquist:
            raise ValueError(f"f0_max ({self.f0_max}) must be below sample_rate / 2 ({nyquist:g})")
        if self.f0_extractor not in F0_METHODS:
            raise ValueError(f"f0_extractor must be one of {', '.join(F0_METHODS)}, got '{self.f0_extractor}'")

    @property
    def n_linear_bins(self) -> int:
        return self.n_fft // 2 + 1


SILENCE_PEAK = 2.0 / 32768  # at most two 16-bit steps: digital silence, not a quiet recording


def load_wav(path: Path | str, target_sample_rate: int, require_signal: bool = False) -> np.ndarray:
    """Mono float32 ``[S]`` in [-1, 1] at ``target_sample_rate``.

    Stereo (or more channels) is averaged; a different file rate is converted with soxr (HQ).
    A file that does not decode, or holds NaN/infinite samples, raises `UserInputError` naming it.
    require_signal: also refuse a recording that is digitally silent, or whose channels cancel in the
        downmix (a phase-inverted stereo pair): a sung recording must hold singing.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: audio file not found; check the path (or re-run the step that writes it)")
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [S, C]
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as error:
        raise UserInputError(
            f"{path}: cannot decode the audio ({' '.join(str(error).split())}); replace it with a readable wav/flac file"
        ) from None
    if audio.shape[0] == 0:
        raise UserInputError(f"{path}: the audio file holds no samples; replace it or remove it from the dataset")
    return mono_at_rate(audio, file_rate, target_sample_rate, str(path), require_signal)


MAX_CHANNELS = 64  # more "channels" than this: an array given channels first


def mono_at_rate(audio: np.ndarray, sample_rate: int, target_sample_rate: int, where: str, require_signal: bool = False) -> np.ndarray:
    """`audio` `[S]` or `[S, C]` at `sample_rate` -> mono float32 `[S']` at `target_sample_rate` (what `load_wav` does
    after decoding; for audio already in memory). Non-finite samples raise `UserInputError` naming `where`."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[:, None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] > MAX_CHANNELS:
        raise UserInputError(f"{where}: audio of shape {tuple(audio.shape)}; give samples [S] (mono) or [S, channels] (samples first)")
    finite = np.isfinite(audio)
    if not finite.all():
        sample, channel = np.argwhere(~finite)[0]
        raise UserInputError(
            f"{where}: sample {sample} ({sample / sample_rate:.3f} s, channel {channel}) is {audio[sample, channel]}, not a number; "
            "re-export the recording as 16-bit or 24-bit PCM"
        )
    mono = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    if require_signal and float(np.abs(mono).max()) <= SILENCE_PEAK:
        if float(np.abs(audio).max()) > SILENCE_PEAK:
            raise UserInputError(
                f"{where}: the {audio.shape[1]} channels cancel out when mixed to mono (one is the other phase-inverted); "
                "keep one channel or fix the polarity of the recording"
            )
        raise UserInputError(f"{where}: the recording is digitally silent (peak {float(np.abs(audio).max()):.1e}); replace it or remove it from the dataset")
    if sample_rate != target_sample_rate:
        mono = soxr.resample(mono, sample_rate, target_sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def frame_padding(n_fft: int, hop_size: int) -> tuple[int, int]:
    """Left/right reflect padding that gives exactly ``S // hop_size`` frames of ``n_fft`` samples."""
    total = n_fft - hop_size
    return total // 2, total - total // 2


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    """MIDI note number (69 = A4, fractional allowed) to Hz; a scalar gives a float, an array an array."""
    hz = 440.0 * np.power(2.0, (np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)
    return float(hz) if np.ndim(midi) == 0 else hz


def hz_to_midi(hz: np.ndarray | float) -> np.ndarray | float:
    """Hz (> 0) to fractional MIDI note number; the inverse of `midi_to_hz`."""
    midi = 69.0 + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0)
    return float(midi) if np.ndim(hz) == 0 else midi


class SpectrogramExtractor(nn.Module):
    """Linear and log-mel magnitude spectrograms (see the module docstring for the frame convention).

    The Hann window and the slaney-normalised mel filterbank (librosa) are built once here and kept
    as non-persistent buffers: they follow ``.to(device)`` but never enter a checkpoint.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_size: int, win_size: int, n_mels: int, fmin: float, fmax: float) -> None:
        super().__init__()
        if win_size > n_fft:
            raise ValueError(f"win_size ({win_size}) must be <= n_fft ({n_fft})")
        if fmax > sample_rate / 2:
            raise ValueError(f"fmax ({fmax}) must be <= sample_rate / 2 ({sample_rate / 2:g})")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_size = hop_size
        self.win_size = win_size
        self.n_mels = n_mels
        self.pad_left, self.pad_right = frame_padding(n_fft, hop_size)
        mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, norm="slaney", htk=False)
        self.register_buffer("window", torch.hann_window(win_size, periodic=True, dtype=torch.float32), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel_basis).float(), persistent=False)  # [n_mels, n_fft//2+1]

    @property
    def n_linear_bins(self) -> int:
        return self.n_fft // 2 + 1

    def _pad(self, wav: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Reflect-pad ``[B, S]`` to ``[B, pad_left + S + pad_right]``.

        With ``lengths``, each item is reflected at its own end (sample ``lengths[b] - 1``) and the
        rest is zero, so an item's valid frames do not depend on what it was batched with.
        """
        if wav.dim() == 3:  # [B, 1, S], the batch layout of waveforms
            if wav.size(1) != 1:
                raise ValueError(f"expected mono wav [B, 1, S], got {tuple(wav.shape)}")
            wav = wav.squeeze(1)
        if wav.dim() != 2:
            raise ValueError(f"expected wav [B, S], got {tuple(wav.shape)}")
        samples = wav.size(1)
        if lengths is None:
            if samples <= max(self.pad_left, self.pad_right):
                raise ValueError(f"need more than {max(self.pad_left, self.pad_right)} samples for reflect padding, got {samples}")
            return torch.nn.functional.pad(wav.unsqueeze(1), (self.pad_left, self.pad_right), mode="reflect").squeeze(1)
        lengths = lengths.to(device=wav.device, dtype=torch.long)
        if int(lengths.min()) <= max(self.pad_left, self.pad_right) or int(lengths.max()) > samples:
            raise ValueError(f"lengths must be in ({max(self.pad_left, self.pad_right)}, {samples}], got {lengths.tolist()}")
        # Padded position p reads source sample j = p - pad_left, reflected at 0 and at length - 1.
        position = torch.arange(samples + self.pad_left + self.pad_right, device=wav.device) - self.pad_left  # [P]
        source = position.abs().unsqueeze(0).expand(wav.size(0), -1)  # [B, P], reflection at 0
        last = (lengths - 1).unsqueeze(1)  # [B, 1]
        source = torch.where(source > last, 2 * last - source, source)  # reflection at each item's end
        inside = (position.unsqueeze(0) < lengths.unsqueeze(1) + self.pad_right) & (source >= 0)
        gathered = torch.gather(wav, 1, source.clamp(min=0, max=samples - 1))
        return gathered * inside.to(wav.dtype)

    def linear(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Magnitude spectrogram ``sqrt(re^2 + im^2 + 1e-9)``.

        wav: ``[B, S]`` (or ``[B, 1, S]``) float in [-1, 1]; lengths: optional ``[B]`` valid samples
        per item (see `_pad`). Returns ``[B, n_fft // 2 + 1, S // hop_size]``.
        """
        padded = self._pad(wav.float(), lengths)  # [B, S + n_fft - hop]
        spec = torch.stft(
            padded, self.n_fft, hop_length=self.hop_size, win_length=self.win_size, window=self.window,
            center=False, normalized=False, onesided=True, return_complex=True,
        )  # [B, F, T]
        return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + MAGNITUDE_EPSILON)

    def mel_from_linear(self, spec: torch.Tensor) -> torch.Tensor:
        """``[B, n_fft // 2 + 1, T]`` magnitudes -> ``[B, n_mels, T]`` natural log of the clamped mel magnitude."""
        mel = torch.matmul(self.mel_basis, spec)  # [n_mels, F] @ [B, F, T] -> [B, n_mels, T]
        return torch.log(torch.clamp(mel, min=LOG_MEL_FLOOR))

    def mel(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-mel spectrogram ``[B, n_mels, S // hop_size]`` of ``wav [B, S]`` (see `linear`)."""
        return self.mel_from_linear(self.linear(wav, lengths))


class F0Track(NamedTuple):
    """Frame-level pitch. f0_hz: float32 ``[T]``, 0 on unvoiced frames; uv: uint8 ``[T]``, 1 = unvoiced."""

    f0_hz: np.ndarray
    uv: np.ndarray


def frame_centres_seconds(n_frames: int, sample_rate: int, hop_size: int) -> np.ndarray:
    """Centre time of each frame, ``(t + 0.5) * hop / sr`` (the spectrogram's own centres)."""
    return (np.arange(n_frames, dtype=np.float64) + 0.5) * hop_size / sample_rate


def _f0_parselmouth(wav: np.ndarray, sample_rate: int, hop_size: int, n_frames: int, f0_min: float, f0_max: float) -> F0Track:
    import parselmouth

    sound = parselmouth.Sound(wav.astype(np.float64), sampling_frequency=sample_rate)
    # Praat's autocorrelation window is 3 periods of the floor; it cannot analyse a shorter sound.
    if sound.duration <= 3.0 / f0_min:
        return F0Track(np.zeros(n_frames, np.float32), np.ones(n_frames, np.uint8))
    pitch = sound.to_pitch_ac(time_step=hop_size / sample_rate, pitch_floor=f0_min, pitch_ceiling=f0_max)
    times = np.asarray(pitch.xs(), dtype=np.float64)  # Praat's frame centres, starting half a window in
    values = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)  # 0 where unvoiced
    centres = frame_centres_seconds(n_frames, sample_rate, hop_size)
    f0 = np.zeros(n_frames, np.float64)
    if len(times) == 0:
        return F0Track(f0.astype(np.float32), np.ones(n_frames, np.uint8))
    step = pitch.time_step
    # Each of our frames takes Praat's voicing decision at the nearest Praat frame; frames more than
    # half a step outside Praat's track (the sound's edges, where no full window fits) are unvoiced.
    position = (centres - times[0]) / step
    nearest = np.clip(np.round(position).astype(np.int64), 0, len(times) - 1)
    covered = (position >= -0.5) & (position <= len(times) - 0.5)
    voiced = covered & (values[nearest] > 0)
    # Voiced frames interpolate Praat's pitch between its neighbours when both are voiced.
    left = np.clip(np.floor(position).astype(np.int64), 0, len(times) - 1)
    right = np.clip(left + 1, 0, len(times) - 1)
    fraction = np.clip(position - left, 0.0, 1.0)
    both = (values[left] > 0) & (values[right] > 0)
    interpolated = values[left] * (1 - fraction) + values[right] * fraction
    f0[voiced] = np.where(both, interpolated, values[nearest])[voiced]
    return F0Track(f0.astype(np.float32), (~voiced).astype(np.uint8))


def _f0_pyin(wav: np.ndarray, sample_rate: int, hop_size: int, n_frames: int, f0_min: float, f0_max: float) -> F0Track:
    # YIN needs the longest period (sr / f0_min) well inside half the frame: take 4 periods, a power of 2.
    frame_length = 1 << int(math.ceil(math.log2(4.0 * sample_rate / f0_min)))
    # center=True frames sit at i * hop; dropping the first half hop moves them to (i + 0.5) * hop.
    shifted = wav[hop_size // 2 :].astype(np.float32)
    if len(shifted) < 2:
        return F0Track(np.zeros(n_frames, np.float32), np.ones(n_frames, np.uint8))
    f0, voiced, _ = librosa.pyin(
        shifted, fmin=f0_min, fmax=f0_max, sr=sample_rate, frame_length=frame_length, hop_length=hop_size, center=True, fill_na=0.0
    )
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float64), nan=0.0)[:n_frames]
    voiced = np.asarray(voiced, dtype=bool)[:n_frames]
    if len(f0) < n_frames:
        f0 = np.pad(f0, (0, n_frames - len(f0)))
        voiced = np.pad(voiced, (0, n_frames - len(voiced)))
    # YIN is blind to level: faint noise can look periodic. Gate silence as Praat does (local peak
    # below 3% of the global peak), plus an absolute -60 dBFS floor for files that are all noise.
    local_peak = maximum_filter1d(np.abs(wav), size=frame_length, mode="constant")
    centres = np.minimum((frame_centres_seconds(n_frames, sample_rate, hop_size) * sample_rate).astype(np.int64), len(wav) - 1)
    voiced &= local_peak[centres] >= max(PYIN_SILENCE_THRESHOLD * float(np.abs(wav).max()), PYIN_SILENCE_FLOOR)
    f0 = np.where(voiced, f0, 0.0)
    return F0Track(f0.astype(np.float32), (~voiced).astype(np.uint8))


def extract_f0(
    wav: np.ndarray, sample_rate: int, hop_size: int, n_frames: int, f0_min: float, f0_max: float, method: str = "parselmouth"
) -> F0Track:
    """Pitch of mono ``wav [S]`` at the frame centres ``(t + 0.5) * hop_size / sample_rate``, ``t < n_frames``.

    method: ``parselmouth`` (Praat's autocorrelation pitch, read at our frame centres) or ``pyin``
    (librosa's probabilistic YIN). Frames with no voicing get ``f0 = 0`` and ``uv = 1``.
    """
    if method not in F0_METHODS:
        raise UserInputError(f"config: audio.f0_extractor is '{method}'; use one of {', '.join(F0_METHODS)}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono wav [S], got shape {wav.shape}")
    if n_frames == 0:
        return F0Track(np.zeros(0, np.float32), np.zeros(0, np.uint8))
    extractor = _f0_parselmouth if method == "parselmouth" else _f0_pyin
    return extractor(wav, sample_rate, hop_size, n_frames, f0_min, f0_max)


def frame_energy(wav: np.ndarray, hop_size: int, win_size: int, n_frames: int) -> np.ndarray:
    """RMS energy in dB (``20 * log10(rms)``, floored at -100 dB), float32 ``[n_frames]``.

    The RMS is taken over ``win_size`` samples centred on each frame centre ``(t + 0.5) * hop_size``
    (reflect padding at the edges, as the spectrogram). A signal shorter or longer than
    ``n_frames * hop_size`` is padded at the floor or cut to ``n_frames``.
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"expected mono wav [S], got shape {wav.shape}")
    energy = np.full(n_frames, ENERGY_FLOOR_DB, np.float64)
    frames = min(len(wav) // hop_size, n_frames)
    if frames > 0:
        left, right = frame_padding(win_size, hop_size)
        mode = "reflect" if len(wav) > max(left, right) else "constant"
        padded = np.pad(wav, (left, right), mode=mode)
        windows = np.lib.stride_tricks.sliding_window_view(padded, win_size)[::hop_size][:frames]  # [T, win]
        rms = np.sqrt(np.mean(windows * windows, axis=1))
        energy[:frames] = 20.0 * np.log10(np.maximum(rms, 10.0 ** (ENERGY_FLOOR_DB / 20.0)))
    return energy.astype(np.float32)
