"""The two-stage baseline at inference: an FS2 singer (score -> mel) and a HiFi-GAN (mel -> wav) as one singer.

`AcousticVocoderPair` has the inference interface of `VISingerGenerator` (`infer(...)` returning
`.wav` and `.f0_pred`, the waveform stage as `.decoder`, `.config.n_speakers`), so the pair sings
through the very same `inference.synthesis.SingingSynthesizer` (frontend, frame rule, phrase cutting,
cross-fades) and `inference.render.render_score` as VISinger: the two systems differ only in the
networks.

Loading mirrors `inference.model_loading`: each model is rebuilt alone (no discriminator, no optimizer
state) from the config saved with its weights, from a runner experiment / checkpoint, or from a pair
pack (`pack_pair`): `acoustic.pt` + `vocoder.pt` (weights and constructor arguments), `config.yaml`
and `vocoder_config.yaml` (the resolved training configs), `phone_set.json`, `stats.json`.

`inference.evaluate.render_test_split` is `run.py --infer` of both baseline tasks: render a binary test split with named
renderers, write the references beside them and evaluate each with `inference.evaluate`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import config_section, load_config, save_config
from inference.model_loading import (
    LoadedSinger,
    check_phone_count,
    dataset_stats,
    default_checkpoint,
    load_checked_state,
    write_folder_atomically,
)
from modules.fs2_singer import FS2Singer, FS2SingerConfig
from modules.hifigan import HiFiGANGenerator
from preprocessor.atomic_io import atomic_path, write_text_atomic
from preprocessor.audio import AudioSettings
from preprocessor.text.phone_set import read_phone_set, write_phone_set
from tasks.checkpoint import load_checkpoint

PACK_FORMAT = "korean-svs-baseline-pack"
PACK_VERSION = 1
FS2_TASK = "tasks.fs2_task.FS2SingerTask"
HIFIGAN_TASK = "tasks.hifigan_task.HiFiGANTask"
ACOUSTIC_FILE, VOCODER_FILE = "acoustic.pt", "vocoder.pt"
ACOUSTIC_CONFIG_FILE, VOCODER_CONFIG_FILE = "config.yaml", "vocoder_config.yaml"
PACK_FILES = (ACOUSTIC_FILE, VOCODER_FILE, ACOUSTIC_CONFIG_FILE, VOCODER_CONFIG_FILE, "phone_set.json", "stats.json")
# Audio settings that define a mel frame: the acoustic model's output must be the vocoder's input.
MEL_FIELDS = ("sample_rate", "hop_size", "win_size", "n_fft", "n_mels", "fmin", "fmax")


# ---- the pair as one singer -------------------------------------------------------------------------


class PairOutput(NamedTuple):
    wav: torch.Tensor  # [B, 1, T * hop], zero past each item's frames
    f0_pred: torch.Tensor  # [B, T] predicted F0 in Hz (0 = unvoiced or padding)
    mel: torch.Tensor  # [B, n_mels, T] the acoustic model's log-mel
    frame_mask: torch.Tensor  # [B, 1, T]
    frame_lengths: torch.Tensor  # [B]


class AcousticVocoderPair(nn.Module):
    """FS2 singer + HiFi-GAN behind `VISingerGenerator`'s inference interface.

    The vocoder is the attribute `decoder`, the name `SingingSynthesizer` times the waveform stage by.
    """

    def __init__(self, acoustic: FS2Singer, vocoder: HiFiGANGenerator) -> None:
        super().__init__()
        self.acoustic = acoustic
        self.decoder = vocoder

    @property
    def config(self) -> FS2SingerConfig:
        """The acoustic model's arguments (`n_speakers` is what the synthesizer checks `--speaker` against)."""
        return self.acoustic.config

    @torch.no_grad()
    def infer(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        noise_scale: float = 0.0,
        f0: torch.Tensor | None = None,
    ) -> PairOutput:
        """Score `[B, P]` -> mel -> wav. `noise_scale` is accepted for interface parity and unused: the pair is deterministic."""
        out = self.acoustic.infer(phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, speaker_id=speaker_id, f0=f0)
        wav = self.decoder(out.mel, out.frame_mask, f0=out.f0_hz)  # [B, 1, T * hop]; f0 excites a source-excited vocoder
        return PairOutput(wav, out.f0_hz, out.mel, out.frame_mask, phone_frames.long().sum(1))


# ---- loading ------------------------------------------------------------------------------------------


@dataclass
class LoadedAcoustic:
    model: FS2Singer
    audio: AudioSettings
    config: dict[str, Any]  # the resolved training config
    source: Path
    stats: dict[str, Any]  # F0 statistics and the trained note range, when known


@dataclass
class LoadedVocoder:
    generator: HiFiGANGenerator
    arguments: dict[str, Any]  # HiFiGANGenerator's constructor arguments (what a pack stores)
    audio: AudioSettings
    config: dict[str, Any]
    source: Path


def check_same_features(acoustic_audio: AudioSettings, vocoder_audio: AudioSettings, acoustic_name: str, vocoder_name: str) -> None:
    """The vocoder must read the very mels the acoustic model writes (rate, hop, window, FFT, mel bank)."""
    for field in MEL_FIELDS:
        a, v = getattr(acoustic_audio, field), getattr(vocoder_audio, field)
        if a != v:
            raise UserInputError(
                f"{vocoder_name}: its mels differ from those of {acoustic_name} at audio.{field} ({v} vs {a}); "
                "pair an acoustic model and a vocoder trained on the same features"
            )


def _read_pack_file(path: Path, kind: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserInputError(f"{path.parent}: not a baseline pack (no {path.name}); create one with inference/baseline.py --pack")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserInputError(f"{path}: cannot be read ({type(error).__name__}); re-create the pack") from None
    if not isinstance(payload, dict) or payload.get("format") != PACK_FORMAT or payload.get("version") != PACK_VERSION or payload.get("kind") != kind:
        raise UserInputError(f"{path}: not a {PACK_FORMAT} v{PACK_VERSION} {kind} file; re-create the pack with this code")
    return payload


def _checkpoint_models(path: Path, task_cls: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model states, saved config) of a runner checkpoint of `task_cls`."""
    state = load_checkpoint(path)
    if state.get("task_cls") != task_cls or not isinstance(state.get("config"), dict):
        raise UserInputError(f"{path}: a checkpoint of {state.get('task_cls')!r}, not of the {what} ({task_cls}); pass a {what} experiment or checkpoint")
    return state["models"], state["config"]


def _build_acoustic(arguments: dict[str, Any], state: dict[str, torch.Tensor], source: Path) -> FS2Singer:
    try:
        config = FS2SingerConfig(**arguments)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{source}: the saved arguments do not build an FS2 singer ({error}); use the code version it was trained with") from None
    check_phone_count(config.n_phones, source)
    model = FS2Singer.from_config(config)
    load_checked_state(model, state, source)
    return model.eval()


def _build_vocoder(arguments: dict[str, Any], state: dict[str, torch.Tensor], source: Path) -> HiFiGANGenerator:
    try:
        generator = HiFiGANGenerator(**arguments)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{source}: the saved arguments do not build a HiFi-GAN generator ({error}); use the code version it was trained with") from None
    load_checked_state(generator, state, source)
    return generator.eval()


def _saved_audio(config: dict[str, Any], source: Path) -> AudioSettings:
    try:
        return config_section(config, AudioSettings, "audio")
    except UserInputError as error:
        raise UserInputError(f"{source}: its saved config has no valid audio section ({error}); use a checkpoint of this code version") from None


def load_acoustic(exp_dir: Path | None = None, ckpt: Path | None = None) -> LoadedAcoustic:
    """The FS2 singer of a checkpoint file or pack folder (`ckpt`), else of experiment `exp_dir` (best, else latest)."""
    path = ckpt if ckpt is not None else exp_dir
    assert path is not None, "pass exp_dir or ckpt"
    if (ckpt is not None and ckpt.is_dir()) or (path.is_dir() and (path / ACOUSTIC_FILE).is_file()):
        payload = _read_pack_file(path / ACOUSTIC_FILE, "acoustic")
        read_phone_set(path / "phone_set.json")  # a pack from another phone set is an error, not garbage audio
        config = load_config(path / ACOUSTIC_CONFIG_FILE)
        model = _build_acoustic(payload["arguments"], payload["state"], path / ACOUSTIC_FILE)
        stats_path = path / "stats.json"
        stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
        return LoadedAcoustic(model, _saved_audio(config, path), config, path, stats)
    if ckpt is None:
        path = default_checkpoint(path)
    from tasks.fs2_task import acoustic_config_from

    models, config = _checkpoint_models(path, FS2_TASK, "FS2 singer")
    try:
        arguments = dataclasses.asdict(acoustic_config_from(config))
    except UserInputError as error:
        raise UserInputError(f"{path}: its saved config does not describe an FS2 singer ({error}); use a checkpoint of this code version") from None
    model = _build_acoustic(arguments, models["acoustic"], path)
    return LoadedAcoustic(model, _saved_audio(config, path), config, path, dataset_stats(config))


def load_vocoder(exp_dir: Path | None = None, ckpt: Path | None = None) -> LoadedVocoder:
    """The HiFi-GAN generator of a checkpoint file or pack folder (`ckpt`), else of experiment `exp_dir`."""
    path = ckpt if ckpt is not None else exp_dir
    assert path is not None, "pass exp_dir or ckpt"
    if (ckpt is not None and ckpt.is_dir()) or (path.is_dir() and (path / VOCODER_FILE).is_file()):
        payload = _read_pack_file(path / VOCODER_FILE, "vocoder")
        config = load_config(path / VOCODER_CONFIG_FILE)
        generator = _build_vocoder(payload["arguments"], payload["state"], path / VOCODER_FILE)
        return LoadedVocoder(generator, dict(payload["arguments"]), _saved_audio(config, path), config, path)
    if ckpt is None:
        path = default_checkpoint(path)
    from tasks.hifigan_task import vocoder_config_from

    models, config = _checkpoint_models(path, HIFIGAN_TASK, "HiFi-GAN vocoder")
    try:
        arguments = dataclasses.asdict(vocoder_config_from(config))
    except UserInputError as error:
        raise UserInputError(f"{path}: its saved config does not describe a HiFi-GAN vocoder ({error}); use a checkpoint of this code version") from None
    generator = _build_vocoder(arguments, models["generator"], path)
    return LoadedVocoder(generator, arguments, _saved_audio(config, path), config, path)


def pair_singer(acoustic: LoadedAcoustic, vocoder: LoadedVocoder) -> LoadedSinger:
    """The pair as a `LoadedSinger`, what `inference.render.render_score` sings with (features checked to match)."""
    check_same_features(acoustic.audio, vocoder.audio, str(acoustic.source), str(vocoder.source))
    pair = AcousticVocoderPair(acoustic.model, vocoder.generator).eval()
    return LoadedSinger(pair, acoustic.audio, acoustic.config, acoustic.source, acoustic.stats)  # type: ignore[arg-type]


def is_pair_pack(folder: Path) -> bool:
    """A folder holding both models of a pack (and nothing but pack files)."""
    entries = {entry.name for entry in folder.iterdir()}
    return {ACOUSTIC_FILE, VOCODER_FILE} <= entries and entries <= set(PACK_FILES)


def pack_pair(acoustic: LoadedAcoustic, vocoder: LoadedVocoder, out_dir: Path) -> Path:
    """Write both models as one self-contained folder, built beside `out_dir` and renamed into place
    (an existing `out_dir` is replaced only when it is an earlier pack)."""
    check_same_features(acoustic.audio, vocoder.audio, str(acoustic.source), str(vocoder.source))

    def write(partial: Path) -> None:
        for name, kind, arguments, model, source in (
            (ACOUSTIC_FILE, "acoustic", dataclasses.asdict(acoustic.model.config), acoustic.model, acoustic.source),
            (VOCODER_FILE, "vocoder", vocoder.arguments, vocoder.generator, vocoder.source),
        ):
            payload = {
                "format": PACK_FORMAT, "version": PACK_VERSION, "kind": kind, "arguments": arguments,
                "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "source": str(source),
            }  # fmt: skip
            with atomic_path(partial / name) as tmp:
                torch.save(payload, tmp)
        save_config(acoustic.config, partial / ACOUSTIC_CONFIG_FILE)
        save_config(vocoder.config, partial / VOCODER_CONFIG_FILE)
        write_phone_set(partial / "phone_set.json")
        write_text_atomic(partial / "stats.json", json.dumps(acoustic.stats, indent=1))

    return write_folder_atomically(out_dir, write, is_pair_pack)


# ---- test-split rendering for `run.py --infer` ---------------------------------------------------------

