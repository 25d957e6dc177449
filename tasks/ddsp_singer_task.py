"""The DDSP singer (timbre transfer; Engel et al. 2020) on the task runner: a voice from a folder of singing.

Data: any folder of recordings (`audio_folder.audio_dir`; no scores, no lyrics), sliced into short
overlapping pieces whose F0 and A-weighted loudness are cached on first use
(`preprocessor.audio_folder`; a re-run with the same settings and files reuses the cache). The cache's
loudness and pitch statistics are copied into the model's buffers, so they are saved with it.

Model: `modules.ddsp_singer.DDSPSinger` — a causal control estimator from F0 + loudness (+ speaker) to
the controls of a synthesiser assembled from `model.synth` (`modules.ddsp.chain`: harmonic, filtered
noise, learnt reverb and their connections). Loss: the multi-resolution spectral loss between the
rendered piece and the recording (`modules.spectral_loss`), the only objective, as in DDSP.

Validation renders a few pieces and logs their audio, log-mel spectrograms (recording vs render) and
the harmonic / noise parts to TensorBoard.

YAML sections read here (config/models/ddsp_singer.yaml): `audio`, `audio_folder`, `model`, `loss`,
`validation`. The runner reads `trainer` and `optimizers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import config_section
from model_io.description import TRANSFER, ModelDescription, ModelSpec, describe
from modules.ddsp_singer import DDSPSinger, DDSPSingerConfig
from modules.masks import length_mask
from modules.spectral_loss import MultiResolutionSpectralLoss
from preprocessor.audio import AudioSettings, SpectrogramExtractor
from preprocessor.audio_folder import AudioFolderSettings, FeatureCache, prepare_feature_cache
from tasks.audio_piece_dataset import AudioPieceDataset
from tasks.base_task import BaseTask
from tasks.hifigan_task import ValidationSettings  # the same two keys: pieces logged, and a cap on the validation pieces


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


# The scalar statistics of the training data copied into the model description (the card shows them; the
# quantiles stay in the model's buffers only).
DESCRIBED_STATISTICS = ("loudness_mean", "loudness_std", "pitch_mean_midi", "pitch_std_midi")


@dataclass(frozen=True)
class SpectralLossSettings:
    """`loss:` — the multi-resolution spectral loss (DDSP's defaults)."""

    fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)
    overlap: float = 0.75
    magnitude_weight: float = 1.0
    log_magnitude_weight: float = 1.0


class DDSPSingerTask(BaseTask):
    optimizer_names = ("generator",)

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.audio = config_section(config, AudioSettings, "audio")
        self.folder = config_section(config, AudioFolderSettings, "audio_folder")
        self.model_settings = config_section(config, ModelSettings, "model")
        self.loss_settings = config_section(config, SpectralLossSettings, "loss")
        self.validation = config_section(config, ValidationSettings, "validation")
        build_singer(singer_config_from(config, 1))  # fail on a bad chain before any feature is computed
        s = self.loss_settings
        self.spectral_loss = MultiResolutionSpectralLoss(s.fft_sizes, s.overlap, s.magnitude_weight, s.log_magnitude_weight)
        a = self.audio
        self.features = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
        self._cache: FeatureCache | None = None
        self._logged: list[dict[str, Any]] = []
        self._real_audio_logged = False

    def feature_cache(self) -> FeatureCache:
        """The cached pieces, built on first use (by rank 0 first under torchrun; the others then reuse it)."""
        if self._cache is None:
            if self.world_size > 1 and torch.distributed.is_initialized():
                if self.rank == 0:
                    self._cache = prepare_feature_cache(self.audio, self.folder)
                torch.distributed.barrier()
                if self.rank != 0:
                    self._cache = prepare_feature_cache(self.audio, self.folder, show_progress=False)
            else:
                self._cache = prepare_feature_cache(self.audio, self.folder, show_progress=self.rank == 0)
        return self._cache

    # ---- building ---------------------------------------------------------------------------
    def build_models(self) -> dict[str, nn.Module]:
        cache = self.feature_cache()
        singer = build_singer(singer_config_from(self.config, len(cache.speakers)))
        singer.set_statistics(cache.stats)
        return {"generator": singer}

    def model_description(self) -> ModelDescription:
        """The generator as a `transfer` model, with the loudness meter's window and the data's statistics, so that
        `model_io.loader.load_saved` rebuilds it and `inference.api.Singer.transfer` measures its inputs as training did.
        Built from the trained model when there is one, else (describing an old checkpoint) from the feature cache."""
        generator = self.raw_models.get("generator")
        if generator is not None:
            config, stats = generator.config, generator.statistics()
        else:
            cache = self.feature_cache()
            config, stats = singer_config_from(self.config, len(cache.speakers)), cache.stats
        described = {"loudness_n_fft": self.folder.loudness_n_fft, **{name: float(stats[name]) for name in DESCRIBED_STATISTICS}}
        return describe({"generator": ModelSpec.of(DDSPSinger, config, role=TRANSFER)}, self.audio, described)

    def build_dataset(self, split: str) -> AudioPieceDataset:
        if split not in ("train", "valid"):
            raise UserInputError(f"the DDSP singer has splits 'train' and 'valid', not {split!r}")
        cache = self.feature_cache()
        max_items = self.validation.max_items if split == "valid" else None
        return AudioPieceDataset(cache.cache_dir, split, self.audio.sample_rate, self.audio.hop_size, max_items)

    # ---- training -----------------------------------------------------------------------------
    def _render(self, model: nn.Module, batch: dict[str, Any]):
        mask = length_mask(batch["frame_lengths"], batch["f0"].size(1))  # [B, 1, T]
        return model(batch["f0"], batch["loudness"], batch["speaker_id"], mask)

    def training_step(self, batch: dict[str, Any], optimizer_name: str) -> dict[str, torch.Tensor]:
        out = self._render(self.models["generator"], batch)
        with torch.autocast(device_type=batch["wav"].device.type, enabled=False):  # the spectra in fp32
            loss = self.spectral_loss.to(batch["wav"].device)(out.audio.float(), batch["wav"], batch["frame_lengths"] * self.audio.hop_size)
        return {"loss": loss, "spectral": loss.detach()}

    # ---- validation -----------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor | float]:
        out = self._render(self.raw_models["generator"], batch)
        samples = batch["frame_lengths"] * self.audio.hop_size
        loss = self.spectral_loss.to(out.audio.device)(out.audio.float(), batch["wav"], samples)
        self.features.to(out.audio.device)
        for row in range(out.audio.size(0)):
            if len(self._logged) >= self.validation.num_logged_items:
                break
            s = int(samples[row])
            item = {"name": batch["names"][row], "real": batch["wav"][row, 0, :s].cpu(), "generated": out.audio[row, 0, :s].float().cpu()}
            for part in ("harmonic", "noise"):
                if part in out.signals:
                    item[part] = out.signals[part][row, 0, :s].float().cpu()
            self._logged.append(item)
        return {"spectral": loss}

    def on_validation_end(self, logger, step: int) -> None:
        from tasks.plots import mel_figure

        for index, item in enumerate(self._logged):
            tag = f"val_{index}_{item['name'].replace('/', '_').replace('@', '_')}"
            logger.add_audio(f"{tag}/generated", item["generated"], self.audio.sample_rate, step)
            for part in ("harmonic", "noise"):
                if part in item:
                    logger.add_audio(f"{tag}/{part}", item[part], self.audio.sample_rate, step)
            if not self._real_audio_logged:
                logger.add_audio(f"{tag}/real", item["real"], self.audio.sample_rate, step)
            with torch.no_grad():
                mels = self.features.cpu().mel(torch.stack([item["real"], item["generated"]]))
            logger.add_figure(f"{tag}/mel", mel_figure(mels[0].numpy(), mels[1].numpy()), step)
        self._real_audio_logged = True
        self._logged = []

    def infer(self, work_dir: Path) -> None:
        raise UserInputError("the DDSP singer has no test split; transfer a recording with inference/transfer.py --exp_name NAME --wav IN --out OUT")
