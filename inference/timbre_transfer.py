"""Timbre transfer with a trained DDSP singer: any recording's pitch and loudness, sung by the learnt voice.

    wav ─ load (mono, model rate) ─┬─ F0 (Praat / pYIN, as in training) ─ autotune ─ octave shift ─────────────┐
                                   └─ A-weighted loudness ─ quantile-normalise ─ + dB ─ note-on mask ───────────┴─ DDSPSinger ─▶ wav

Controls (`TransferControls`, see `inference.transfer_controls` for each rule): `autotune` 0..1 (towards
the nearest semitone, or a score's notes with `score`), `octave_shift`, `loudness_db`, `loudness_stats`
(map the input's loudness distribution onto the model's training distribution, stored in the model),
`mask_threshold` / `attenuation` (quieten what is not a sung note).

Python API (the CLI is `inference/transfer.py`):

    voice = DDSPVoice.load(exp_dir=Path("checkpoints/demo_ddsp"))      # or ckpt=<checkpoint file or pack folder>
    result = voice.transfer_file(Path("in.wav"), TransferControls(autotune=1.0, octave_shift=1))
    voice.pack(Path("packed/demo_ddsp"))
    stream = voice.streaming(block_frames=1)                            # real time: see modules.ddsp_streaming
    voice.export_torchscript(Path("stream.pt"), block_frames=1)          # for a plug-in host
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from config.errors import UserInputError
from config.loader import config_section, load_config, save_config
from inference.transfer_controls import NoteMask, attenuate, autotune, note_on_mask, quantile_normalize, shift_octaves
from modules.ddsp_singer import DDSPSinger, DDSPSingerConfig
from preprocessor.atomic_io import atomic_path
from preprocessor.audio import AudioSettings, extract_f0, load_wav
from preprocessor.loudness import LOUDNESS_FLOOR_DB, a_loudness_db

DDSP_TASK = "tasks.ddsp_singer_task.DDSPSingerTask"
PACK_FORMAT = "korean-ddsp-singer-pack"
PACK_VERSION = 1
PACK_FILES = ("ddsp_singer.pt", "config.yaml")
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


class TransferResult(NamedTuple):
    wav: np.ndarray  # float32 [S] at `sample_rate`
    sample_rate: int
    tracks: ControlTracks
    input_wav: np.ndarray  # the input at the model's rate, float32 [S]


@dataclass
class LoadedDDSPSinger:
    model: DDSPSinger
    audio: AudioSettings
    loudness_n_fft: int
    config: dict[str, Any]
    source: Path


# ---- the model's arguments from a config (shared with tasks/ddsp_singer_task.py) ----------------------


@dataclass(frozen=True)
class ModelSettings:
    """`model:` — the estimator's size and the synthesiser's chain (`sample_rate`, `hop_size`, `n_speakers` are derived)."""

    synth: tuple[dict[str, Any], ...]
    hidden_size: int = 256
    mlp_layers: int = 2
    gru_layers: int = 1
    speaker_channels: int = 16


def singer_config_from(cfg: dict[str, Any], n_speakers: int) -> DDSPSingerConfig:
    """The model's constructor arguments from `model:` and `audio:`."""
    audio = config_section(cfg, AudioSettings, "audio")
    model = config_section(cfg, ModelSettings, "model")
    return DDSPSingerConfig(
        sample_rate=audio.sample_rate, hop_size=audio.hop_size, synth=model.synth, hidden_size=model.hidden_size,
        mlp_layers=model.mlp_layers, gru_layers=model.gru_layers, n_speakers=n_speakers, speaker_channels=model.speaker_channels,
    )  # fmt: skip


def build_singer(config: DDSPSingerConfig, where: str = "config 'model.synth'") -> DDSPSinger:
    """A fresh `DDSPSinger`; a chain that does not build is one line naming `where`."""
    try:
        return DDSPSinger.from_config(config)
    except (ValueError, TypeError) as error:
        raise UserInputError(f"{where}: {' '.join(str(error).split())}") from None


# ---- loading and packing ---------------------------------------------------------------------------


def _n_speakers(state: dict[str, torch.Tensor]) -> int:
    weight = state.get("estimator.speaker_embedding.weight")
    return int(weight.shape[0]) if weight is not None else 1


def _build(arguments: dict[str, Any], state: dict[str, torch.Tensor], source: Path) -> DDSPSinger:
    from model_io.checkpoint_file import first_state_mismatch

    try:
        model = DDSPSinger.from_config(DDSPSingerConfig(**arguments))
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{source}: the saved arguments do not build a DDSP singer ({error}); use the code version it was trained with") from None
    mismatch = first_state_mismatch(model.state_dict(), dict(state))
    if mismatch:
        raise UserInputError(f"{source}: not this model's weights: {mismatch}")
    model.load_state_dict(state)
    return model.eval()


def _settings(config: dict[str, Any], source: Path) -> tuple[AudioSettings, int]:
    try:
        audio = config_section(config, AudioSettings, "audio")
        n_fft = int(config["audio_folder"]["loudness_n_fft"])
    except (UserInputError, KeyError, TypeError) as error:
        raise UserInputError(f"{source}: its saved config does not describe a DDSP singer ({error}); use a model of this code version") from None
    return audio, n_fft


def load_ddsp_singer(exp_dir: Path | None = None, ckpt: Path | None = None) -> LoadedDDSPSinger:
    """From `ckpt` (a runner checkpoint file or a pack folder), else experiment `exp_dir` (best, else latest checkpoint)."""
    from model_io.checkpoint_file import default_checkpoint, load_checkpoint

    path = ckpt if ckpt is not None else exp_dir
    if path is None:
        raise UserInputError("no model: pass --exp_name NAME or --ckpt PATH")
    if path.is_dir() and (path / PACK_FILES[0]).is_file():
        return _load_pack(path)
    if ckpt is not None and ckpt.is_dir():
        raise UserInputError(f"{ckpt}: not a DDSP singer pack (no {PACK_FILES[0]}); create one with inference/transfer.py --pack EXP --out DIR")
    if ckpt is None:
        path = default_checkpoint(path)
    state = load_checkpoint(path)
    if state.get("task_cls") != DDSP_TASK or "generator" not in state.get("models", {}) or not isinstance(state.get("config"), dict):
        raise UserInputError(f"{path}: a checkpoint of {state.get('task_cls')!r}, not of the DDSP singer ({DDSP_TASK}); pass a DDSP singer experiment")
    config = state["config"]
    weights = state["models"]["generator"]
    try:
        arguments = dataclasses.asdict(singer_config_from(config, _n_speakers(weights)))
    except UserInputError as error:
        raise UserInputError(f"{path}: its saved config does not describe a DDSP singer ({error}); use a checkpoint of this code version") from None
    audio, n_fft = _settings(config, path)
    return LoadedDDSPSinger(_build(arguments, weights, path), audio, n_fft, config, path)


def _load_pack(pack_dir: Path) -> LoadedDDSPSinger:
    weights = pack_dir / PACK_FILES[0]
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserInputError(f"{weights}: cannot be read ({type(error).__name__}); re-create the pack") from None
    if not isinstance(payload, dict) or payload.get("format") != PACK_FORMAT or payload.get("version") != PACK_VERSION:
        raise UserInputError(f"{weights}: not a {PACK_FORMAT} v{PACK_VERSION} file; re-create the pack with this code")
    config = load_config(pack_dir / "config.yaml")
    audio, n_fft = _settings(config, pack_dir)
    return LoadedDDSPSinger(_build(dict(payload["arguments"]), payload["state"], weights), audio, n_fft, config, pack_dir)


def _is_pack(folder: Path) -> bool:
    entries = {entry.name for entry in folder.iterdir()}
    return PACK_FILES[0] in entries and entries <= set(PACK_FILES)


def pack_ddsp_singer(singer: LoadedDDSPSinger, out_dir: Path) -> Path:
    """A self-contained folder (weights, constructor arguments, statistics in the buffers, config), written atomically."""
    from preprocessor.atomic_io import write_folder_atomically

    def write(partial: Path) -> None:
        payload = {
            "format": PACK_FORMAT, "version": PACK_VERSION, "arguments": dataclasses.asdict(singer.model.config),
            "state": {k: v.detach().cpu() for k, v in singer.model.state_dict().items()}, "source": str(singer.source),
        }  # fmt: skip
        with atomic_path(partial / PACK_FILES[0]) as tmp:
            torch.save(payload, tmp)
        save_config(singer.config, partial / "config.yaml")

    return write_folder_atomically(out_dir, write, _is_pack, "a DDSP singer pack")


# ---- analysis and controls ----------------------------------------------------------------------------


class InputFeatures(NamedTuple):
    wav: np.ndarray  # float32 [T * hop] at the model's rate
    f0: np.ndarray  # [T] Hz, 0 = unvoiced
    loudness: np.ndarray  # [T] dB


def analyse(path: Path, audio: AudioSettings, loudness_n_fft: int) -> InputFeatures:
    """Load `path` at the model's rate and measure its F0 and loudness as the training data was measured."""
    wav = load_wav(path, audio.sample_rate)
    n_frames = len(wav) // audio.hop_size
    if n_frames < 2:
        raise UserInputError(f"{path}: too short ({len(wav)} samples at {audio.sample_rate} Hz); give at least a few frames of singing")
    wav = wav[: n_frames * audio.hop_size]
    loudness = a_loudness_db(wav, audio.sample_rate, audio.hop_size, loudness_n_fft)
    if float(loudness.max()) < SILENCE_DB:
        raise UserInputError(f"{path}: silence only (loudest frame {float(loudness.max()):.0f} dB, below {SILENCE_DB:.0f} dB); give a recording with singing")
    track = extract_f0(wav, audio.sample_rate, audio.hop_size, n_frames, audio.f0_min, audio.f0_max, audio.f0_extractor)
    if not (track.f0_hz > 0).any():
        raise UserInputError(f"{path}: no pitched frame found ({audio.f0_extractor}, {audio.f0_min:g}-{audio.f0_max:g} Hz); give a recording with singing")
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
    """The voice singing `f0_hz`, `loudness_db [T]` -> float32 `[T * hop]` (the offline render)."""
    check_speaker(model, speaker)
    speaker_id = torch.tensor([speaker]) if model.config.n_speakers > 1 else None
    out = model(torch.from_numpy(f0_hz).float()[None], torch.from_numpy(loudness_db).float()[None], speaker_id)
    return out.audio[0, 0].numpy()


class DDSPVoice:
    """A loaded DDSP singer with the transfer controls: the Python face of `inference/transfer.py`."""

    def __init__(self, loaded: LoadedDDSPSinger) -> None:
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.audio = loaded.audio

    @classmethod
    def load(cls, exp_dir: Path | None = None, ckpt: Path | None = None) -> DDSPVoice:
        return cls(load_ddsp_singer(exp_dir=exp_dir, ckpt=ckpt))

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.audio.sample_rate / self.audio.hop_size

    def transfer_file(self, path: Path, controls: TransferControls = TransferControls(), block_frames: int | None = None) -> TransferResult:
        """The recording at `path` sung by this voice; with `block_frames`, rendered block by block through the
        real-time path (the same samples as the offline render, within its tolerance)."""
        if block_frames is not None:
            check_block_frames(block_frames)
        features = analyse(Path(path), self.audio, self.loaded.loudness_n_fft)
        tracks = apply_controls(features.f0, features.loudness, self.model, controls, self.frame_rate)
        if block_frames is None:
            wav = render(self.model, tracks.f0_output, tracks.loudness_output, controls.speaker)
        else:
            check_speaker(self.model, controls.speaker)
            stream = self.streaming(block_frames, controls.speaker)
            wav = stream.render(torch.from_numpy(tracks.f0_output), torch.from_numpy(tracks.loudness_output)).numpy()
        return TransferResult(wav, self.sample_rate, tracks, features.wav)

    def pack(self, out_dir: Path) -> Path:
        return pack_ddsp_singer(self.loaded, out_dir)

    def streaming(self, block_frames: int = 1, speaker: int = 0):
        """A block-by-block renderer of this voice (`modules.ddsp_streaming.StreamingDDSPSinger`)."""
        from modules.ddsp_streaming import StreamingDDSPSinger

        check_block_frames(block_frames)
        return StreamingDDSPSinger(self.model, block_frames, speaker=speaker)

    def export_torchscript(self, path: Path, block_frames: int = 1, speaker: int = 0) -> Path:
        """Write the TorchScript stream for a plug-in host (`modules.ddsp_streaming.export_torchscript`), atomically."""
        from modules.ddsp_streaming import export_torchscript

        check_block_frames(block_frames)
        check_speaker(self.model, speaker)
        scripted = export_torchscript(self.model, block_frames, speaker)
        with atomic_path(path) as tmp:
            scripted.save(str(tmp))
        return Path(path)

