"""Timbre transfer with a trained DDSP singer: any recording's pitch and loudness, sung by the learnt voice.

    wav ─ mono, model rate ─┬─ F0 (Praat / pYIN, as in training) ─ autotune ─ octave shift ─────────────┐
                            └─ A-weighted loudness ─ quantile-normalise ─ + dB ─ note-on mask ───────────┴─ DDSPSinger ─▶ wav

Controls (`TransferControls`, see `inference.transfer_controls` for each rule): `autotune` 0..1 (towards
the nearest semitone, or a score's notes with `score`), `octave_shift`, `loudness_db`, `loudness_stats`
(map the input's loudness distribution onto the model's training distribution, stored in the model),
`mask_threshold` / `attenuation` (quieten what is not a sung note).

The work of `inference.api.Singer.transfer` / `.stream` (the Python API; the CLI is `inference/transfer.py`),
as functions of the model, its audio settings and its loudness meter's window (read from the model file's
description: `loudness_window`). Loading and packing are `model_io`'s, as for every model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from config.errors import UserInputError
from inference.sung_audio import SungAudio
from inference.transfer_controls import NoteMask, attenuate, autotune, note_on_mask, quantile_normalize, shift_octaves
from model_io.description import ModelDescription
from modules.ddsp_singer import DDSPSinger
from preprocessor.atomic_io import atomic_path
from preprocessor.audio import AudioSettings, extract_f0, load_wav, mono_at_rate
from preprocessor.loudness import LOUDNESS_FLOOR_DB, a_loudness_db

SILENCE_DB = -70.0  # an input whose loudest frame is quieter than this holds no singing


@dataclass(frozen=True)
class TransferControls:
    """What to do to the input's pitch and loudness before the voice sings them (defaults: nothing)."""

    autotune: float = 0.0
    score: Path | None = None
    octave_shift: float = 0.0
    loudness_db: float = 0.0
    loudness_stats: bool = False
    mask_threshold: float | None = None
    attenuation: float = 1.0
    speaker: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.autotune <= 1.0:
            raise UserInputError(f"--autotune {self.autotune}: must be between 0 (none) and 1 (snap to the semitone)")
        if self.mask_threshold is not None and self.mask_threshold <= 0:
            raise UserInputError(f"--mask_threshold {self.mask_threshold}: must be > 0 (1.0 = a note at the mean loudness)")
        if self.attenuation < 0:
            raise UserInputError(f"--attenuation {self.attenuation}: must be >= 0 dB")


class ControlTracks(NamedTuple):
    """Frame-rate tracks `[T]` of one transfer, before and after each control (what `--plot` shows)."""

    f0_input: np.ndarray  # Hz, 0 = unvoiced
    f0_autotuned: np.ndarray
    f0_output: np.ndarray  # what the voice sings (autotuned, octave-shifted)
    loudness_input: np.ndarray  # dB
    loudness_normalized: np.ndarray  # after --loudness_stats and --loudness_db
    loudness_output: np.ndarray  # after the note-on mask
    mask: NoteMask | None


@dataclass(frozen=True)
class TransferredRecording(SungAudio):
    """A recording sung by the voice: `wav` float32 `[S]` at `sample_rate` (the model's), the control `tracks`
    (what `--plot` shows), and `input_wav`, the input at the model's rate (float32 `[S]`)."""

    tracks: ControlTracks
    input_wav: np.ndarray


# ---- analysis and controls ----------------------------------------------------------------------------


class InputFeatures(NamedTuple):
    wav: np.ndarray  # float32 [T * hop] at the model's rate
    f0: np.ndarray  # [T] Hz, 0 = unvoiced
    loudness: np.ndarray  # [T] dB


def loudness_window(description: ModelDescription, where: str) -> int:
    """The loudness meter's window the model was trained with (`stats.loudness_n_fft` of its description)."""
    n_fft = description.stats.get("loudness_n_fft")
    if not isinstance(n_fft, int) or n_fft <= 0:
        raise UserInputError(f"{where}: its description has no loudness meter window (stats.loudness_n_fft); re-create the file with this code")
    return n_fft


def recording_at_rate(recording: np.ndarray | Path | str, sample_rate: int | None, target_rate: int) -> tuple[np.ndarray, str]:
    """(mono float32 `[S]` at `target_rate`, a name for messages) of a file path or of samples `[S]` / `[S, C]` at `sample_rate`."""
    if isinstance(recording, (str, Path)):
        if sample_rate is not None:
            raise UserInputError(f"{recording}: a file carries its own sample rate; drop sample_rate")
        return load_wav(recording, target_rate), str(recording)
    if sample_rate is None or int(sample_rate) <= 0:
        raise UserInputError(f"the recording is an array: give its sample_rate (Hz, > 0), not {sample_rate!r}")
    return mono_at_rate(np.asarray(recording), int(sample_rate), target_rate, "the recording"), "the recording"


def analyse(wav: np.ndarray, where: str, audio: AudioSettings, loudness_n_fft: int) -> InputFeatures:
    """F0 and loudness of `wav` (mono, at the model's rate), measured as the training data was measured."""
    n_frames = len(wav) // audio.hop_size
    if n_frames < 2:
        raise UserInputError(f"{where}: too short ({len(wav)} samples at {audio.sample_rate} Hz); give at least a few frames of singing")
    wav = wav[: n_frames * audio.hop_size]
    loudness = a_loudness_db(wav, audio.sample_rate, audio.hop_size, loudness_n_fft)
    if float(loudness.max()) < SILENCE_DB:
        raise UserInputError(f"{where}: silence only (loudest frame {float(loudness.max()):.0f} dB, below {SILENCE_DB:.0f} dB); give a recording with singing")
    track = extract_f0(wav, audio.sample_rate, audio.hop_size, n_frames, audio.f0_min, audio.f0_max, audio.f0_extractor)
    if not (track.f0_hz > 0).any():
        raise UserInputError(f"{where}: no pitched frame found ({audio.f0_extractor}, {audio.f0_min:g}-{audio.f0_max:g} Hz); give a recording with singing")
    return InputFeatures(wav, track.f0_hz, loudness)


def score_targets(score: Path, n_frames: int, frame_rate: float) -> np.ndarray:
    """`[T]` MIDI pitch of the score's note at each frame centre (0 where no note sounds).

    A MIDI needs no lyrics (its melody's notes are read alone); the other formats of
    `preprocessor.scores.dispatch` (MusicXML, UST, USTX, DS) are read whole and their sung notes used."""
    from preprocessor.scores.dispatch import MIDI_SUFFIXES, read_any_score
    from preprocessor.scores.midi_reader import read_melody

    score = Path(score)
    notes = read_melody(score) if score.suffix.lower() in MIDI_SUFFIXES else read_any_score(score, monophonic="top").sung_notes
    targets = np.zeros(n_frames, np.float64)
    centres = (np.arange(n_frames) + 0.5) / frame_rate
    for note in notes:
        targets[(centres >= note.start) & (centres < note.end)] = note.pitch
    return targets


def apply_controls(f0: np.ndarray, loudness: np.ndarray, model: DDSPSinger, controls: TransferControls, frame_rate: float) -> ControlTracks:
    """The input's tracks through every control, in the seed's order: autotune, octave; loudness statistics, shift, mask."""
    voiced = f0 > 0
    target = score_targets(controls.score, len(f0), frame_rate) if controls.score is not None else None
    tuned = autotune(f0, controls.autotune, target) if controls.autotune > 0 else f0.astype(np.float32)
    shifted = shift_octaves(tuned, controls.octave_shift)
    level = loudness.astype(np.float32)
    if controls.loudness_stats:
        level = quantile_normalize(level, voiced, model.voiced_loudness_quantiles.cpu().numpy())
    level = level + np.float32(controls.loudness_db)
    mask = None
    out_level = level
    if controls.mask_threshold is not None:
        mask = note_on_mask(level, voiced.astype(np.float64), controls.mask_threshold)
        out_level = attenuate(level, mask, controls.mask_threshold, controls.attenuation)
    out_level = np.maximum(out_level, LOUDNESS_FLOOR_DB).astype(np.float32)
    return ControlTracks(f0.astype(np.float32), tuned, shifted, loudness.astype(np.float32), level, out_level, mask)


def check_block_frames(block_frames: int) -> None:
    if block_frames < 1:
        raise UserInputError(f"--block_frames {block_frames}: a block must hold at least one frame (1 frame = one hop); pass 1 or more")


def check_speaker(model: DDSPSinger, speaker: int) -> None:
    n_speakers = model.config.n_speakers
    if not 0 <= speaker < n_speakers:
        raise UserInputError(f"--speaker {speaker}: this model has speakers 0..{n_speakers - 1}")


@torch.no_grad()
def render(model: DDSPSinger, f0_hz: np.ndarray, loudness_db: np.ndarray, speaker: int = 0) -> np.ndarray:
    """The voice singing `f0_hz`, `loudness_db [T]` -> float32 `[T * hop]` (the offline render, on the model's device)."""
    check_speaker(model, speaker)
    device = model.loudness_mean.device
    speaker_id = torch.tensor([speaker], device=device) if model.config.n_speakers > 1 else None
    out = model(torch.from_numpy(f0_hz).float()[None].to(device), torch.from_numpy(loudness_db).float()[None].to(device), speaker_id)
    return out.audio[0, 0].cpu().numpy()


def cpu_model(model: DDSPSinger) -> DDSPSinger:
    """The model on the CPU (itself when it is there): the real-time path runs on the CPU."""
    if model.loudness_mean.device.type == "cpu":
        return model
    import copy

    return copy.deepcopy(model).cpu().eval()


def streamer(model: DDSPSinger, block_frames: int, speaker: int = 0):
    """A block-by-block renderer of `model` (`modules.ddsp_streaming.StreamingDDSPSinger`) on the CPU."""
    from modules.ddsp_streaming import StreamingDDSPSinger

    check_block_frames(block_frames)
    check_speaker(model, speaker)
    return StreamingDDSPSinger(cpu_model(model), block_frames, speaker=speaker)


def transfer(
    model: DDSPSinger, audio: AudioSettings, loudness_n_fft: int, wav: np.ndarray, where: str, controls: TransferControls,
    block_frames: int | None = None,
) -> TransferredRecording:  # fmt: skip
    """`wav` (mono, the model's rate) sung by `model` after `controls`; with `block_frames`, rendered block by block
    through the real-time path (the offline render's samples, within its tolerance)."""
    if block_frames is not None:
        check_block_frames(block_frames)
    check_speaker(model, controls.speaker)
    features = analyse(wav, where, audio, loudness_n_fft)
    tracks = apply_controls(features.f0, features.loudness, model, controls, audio.sample_rate / audio.hop_size)
    if block_frames is None:
        out = render(model, tracks.f0_output, tracks.loudness_output, controls.speaker)
    else:
        stream = streamer(model, block_frames, controls.speaker)
        out = stream.render(torch.from_numpy(tracks.f0_output), torch.from_numpy(tracks.loudness_output)).numpy()
    return TransferredRecording(out, audio.sample_rate, tracks, features.wav)


def stream_blocks(
    model: DDSPSinger, audio: AudioSettings, loudness_n_fft: int, wav: np.ndarray, where: str, controls: TransferControls, block_frames: int,
) -> Iterator[np.ndarray]:  # fmt: skip
    """The transfer as the real-time path emits it: one float32 array of `block_frames * hop` samples per block of
    `block_frames` input frames, then the last frame's hop (flushed). The output runs one hop behind the input: the first
    hop is silence, and `concat(blocks)` holds `(T + 1) * hop` samples whose `[hop:]` is the offline render (within
    1e-4). The F0 and loudness are measured on the whole recording first (`loudness_stats` and the note-on mask need
    all of it); the model runs block by block."""
    check_block_frames(block_frames)
    check_speaker(model, controls.speaker)
    features = analyse(wav, where, audio, loudness_n_fft)
    tracks = apply_controls(features.f0, features.loudness, model, controls, audio.sample_rate / audio.hop_size)
    stream = streamer(model, block_frames, controls.speaker)
    f0, loudness = torch.from_numpy(tracks.f0_output), torch.from_numpy(tracks.loudness_output)
    remaining = (len(f0) + 1) * audio.hop_size  # the one-hop delay, then every input frame
    for start in range(0, len(f0), block_frames):
        block = stream.process(f0[start : start + block_frames], loudness[start : start + block_frames]).numpy()[:remaining]
        remaining -= len(block)
        yield block
    if remaining > 0:
        yield stream.flush().numpy()[:remaining]


def write_torchscript(model: DDSPSinger, path: Path, block_frames: int = 1, speaker: int = 0) -> Path:
    """Write the TorchScript stream for a plug-in host (`modules.ddsp_streaming.export_torchscript`), atomically."""
    from modules.ddsp_streaming import export_torchscript

    check_block_frames(block_frames)
    check_speaker(model, speaker)
    scripted = export_torchscript(cpu_model(model), block_frames, speaker)
    with atomic_path(Path(path)) as tmp:
        scripted.save(str(tmp))
    return Path(path)


class LiveTransfer:
    """Audio in, audio out, block by block, with no F0 from outside: `push(samples [block_frames * hop]) -> [block_frames * hop]`.

    Each block's F0 comes from `preprocessor.causal_features.CausalYin` and its loudness from `CausalLoudness`
    (look-back windows only), then the per-frame controls (`autotune` to the nearest semitone, `octave_shift`,
    `loudness_db`; the controls that need the whole recording, `loudness_stats`, the note-on mask and a score,
    are refused), then the streaming renderer. The F0 is delayed by whole frames to line up with the loudness,
    whose window reaches further back. `lag_frames`: how far the sung output trails the input, in frames
    (analysis lag + the renderer's one hop), besides the block's own duration.
    """

    def __init__(self, model: DDSPSinger, audio: AudioSettings, loudness_n_fft: int, controls: TransferControls, block_frames: int) -> None:
        from preprocessor.causal_features import CausalLoudness, CausalYin

        check_block_frames(block_frames)
        check_speaker(model, controls.speaker)
        refused = [name for name, used in (("loudness_stats", controls.loudness_stats), ("mask_threshold", controls.mask_threshold is not None), ("score", controls.score is not None)) if used]
        if refused:
            raise UserInputError(f"{', '.join(refused)}: needs the whole recording, so not with a causal (live) F0 tracker; drop it, or stream with the offline tracker")
        self.model, self.audio, self.controls, self.block_frames = model, audio, controls, block_frames
        self.pitch = CausalYin(audio.sample_rate, audio.hop_size, audio.f0_min, audio.f0_max)
        self.loudness = CausalLoudness(audio.sample_rate, audio.hop_size, loudness_n_fft)
        self.f0_delay = max(0, round((self.loudness.lag_samples - self.pitch.lag_samples) / audio.hop_size))
        self.stream = streamer(model, block_frames, controls.speaker)
        self._pending_f0 = np.zeros(self.f0_delay, np.float32)  # F0 of the last `f0_delay` frames, not yet sung
        self.tracks: list[tuple[np.ndarray, np.ndarray]] = []  # (f0, loudness) as sung, per block

    @property
    def lag_frames(self) -> float:
        """Frames the output trails the offline render of the same input: the loudness window's lag (the F0 is delayed
        to match it) + the renderer's one hop."""
        from modules.ddsp_streaming import LATENCY_FRAMES

        pitch_lag = self.pitch.lag_samples / self.audio.hop_size + self.f0_delay
        return max(pitch_lag, self.loudness.lag_samples / self.audio.hop_size) + LATENCY_FRAMES

    def push(self, samples: np.ndarray) -> np.ndarray:
        expected = self.block_frames * self.audio.hop_size
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(samples) != expected:
            raise UserInputError(f"a live block holds {expected} samples ({self.block_frames} frames of {self.audio.hop_size}); got {len(samples)}")
        f0 = np.concatenate([self._pending_f0, self.pitch.push(samples)])
        f0, self._pending_f0 = f0[: self.block_frames], f0[self.block_frames :]
        level = self.loudness.push(samples)
        c = self.controls
        tuned = autotune(f0, c.autotune) if c.autotune > 0 else f0
        f0_out = shift_octaves(tuned, c.octave_shift)
        level_out = np.maximum(level + np.float32(c.loudness_db), LOUDNESS_FLOOR_DB).astype(np.float32)
        self.tracks.append((f0_out, level_out))
        return self.stream.process(torch.from_numpy(f0_out), torch.from_numpy(level_out)).numpy()


def live_transfer(
    model: DDSPSinger, audio: AudioSettings, loudness_n_fft: int, wav: np.ndarray, where: str, controls: TransferControls, block_frames: int,
) -> Iterator[np.ndarray]:  # fmt: skip
    """`wav` fed through a `LiveTransfer` block by block (the last block zero-padded): one output block per input block."""
    live = LiveTransfer(model, audio, loudness_n_fft, controls, block_frames)
    size = block_frames * audio.hop_size
    if len(wav) < 2 * audio.hop_size:
        raise UserInputError(f"{where}: too short ({len(wav)} samples at {audio.sample_rate} Hz); give at least a few frames of singing")
    for start in range(0, len(wav), size):
        block = wav[start : start + size]
        yield live.push(np.pad(block, (0, size - len(block))))
