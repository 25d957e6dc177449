"""The two-stage baseline's vocoder: HiFi-GAN (Kong et al. 2020) trained on the dataset's mels.

The generator and discriminators are the project's own (`modules.hifigan.HiFiGANGenerator` with
`in_channels = n_mels`, `modules.discriminators.VISingerDiscriminator`: MPD + MSD), so the vocoder is
VISinger's waveform decoder fed with mels instead of latents. Each update: a random window of
`training.segment_size` frames per item, discriminator then generator (LSGAN), generator loss
`45 * mel L1 + adversarial + 2 * feature matching` with the weights by name.

Fine-tuning on the acoustic model's mels: with `training.finetune_mels_from` set (an FS2 singer
experiment folder, checkpoint or pack), the frozen acoustic model turns each batch's score into mels,
conditioned on the batch's true F0 and energy and with the score's durations, so they are
ground-truth aligned (same frames as the recording) and the vocoder learns to map the acoustic
model's mels to the real waveform. Start such a run from a trained vocoder with
`trainer.finetune_ckpt_path`.

YAML sections read here (config/models/hifigan.yaml): `audio`, `dataset` (binary_dir), `model`
(`HiFiGANVocoderConfig` except the derived `in_channels` and `hop_size`), `discriminator`,
`loss_weights`, `training`, `validation`. The runner reads `trainer` and `optimizers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, require_key
from model_io.description import ACOUSTIC, VOCODER, ModelDescription, ModelSpec, check_same_features, describe, read_dataset_stats
from model_io.loader import load_saved
from modules.discriminators import VISingerDiscriminator
from modules.hifigan import HiFiGANGenerator, HiFiGANVocoderConfig
from modules.losses import mel_l1_loss
from modules.masks import length_mask, rand_slice_segments, slice_segments
from preprocessor.audio import AudioSettings, SpectrogramExtractor
from tasks.fs2_task import check_mel_bins
from tasks.gan_task import DiscriminatorSettings, GANTask, source_mel_loss
from tasks.svs_dataset import SingingDataset, open_singing_split

# Computed from `audio:`, never written in `model:` (one value, one place).
DERIVED_MODEL_KEYS = ("in_channels", "hop_size", "sample_rate")


@dataclass(frozen=True)
class LossWeights:
    """`loss_weights:` — the generator objective by name (HiFi-GAN's values)."""

    mel: float = 45.0
    adversarial: float = 1.0
    feature_matching: float = 2.0
    source_mel: float = 45.0  # mel L1 of the harmonic source's own waveform (0 without `model.harmonic_source`)


@dataclass(frozen=True)
class TrainingSettings:
    """`training:` — window length in frames, and the acoustic model whose mels replace the recorded ones."""

    segment_size: int = 32
    finetune_mels_from: str | None = None

    def __post_init__(self) -> None:
        if self.segment_size <= 0:
            raise ValueError(f"segment_size (frames) must be positive, got {self.segment_size}")


@dataclass(frozen=True)
class ValidationSettings:
    """`validation:` — items vocoded and logged as audio, and a cap on the validation items."""

    num_logged_items: int = 3
    max_items: int | None = None


class GeneratorWindows(NamedTuple):
    """One generator pass over random windows: `fake`/`source`/`real` `[B, 1, segment * hop]` (`source` None
    without a harmonic source), window `starts [B]` (frames) and `mask [B, 1, segment]`."""

    fake: torch.Tensor
    source: torch.Tensor | None
    real: torch.Tensor
    starts: torch.Tensor
    mask: torch.Tensor


def vocoder_config_from(cfg: dict[str, Any]) -> HiFiGANVocoderConfig:
    """The generator's arguments: `model:` plus `in_channels`, `hop_size` and `sample_rate` from `audio:`."""
    model = dict(require_key(cfg, "model"))
    for key in DERIVED_MODEL_KEYS:
        if key in model:
            raise UserInputError(f"config: 'model.{key}' is derived (from audio.n_mels / hop_size / sample_rate); remove it from the YAML")
    audio = config_section(cfg, AudioSettings, "audio")
    model.update(in_channels=audio.n_mels, hop_size=audio.hop_size, sample_rate=audio.sample_rate)
    return build_dataclass(HiFiGANVocoderConfig, model, "model")


class HiFiGANTask(GANTask):
    config_sections = ("model", "discriminator", "loss_weights", "training", "validation")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.audio = config_section(config, AudioSettings, "audio")
        self.vocoder_config = vocoder_config_from(config)
        self.discriminator_settings = config_section(config, DiscriminatorSettings, "discriminator")
        self.loss_weights = config_section(config, LossWeights, "loss_weights")
        self.training = config_section(config, TrainingSettings, "training")
        self.validation = config_section(config, ValidationSettings, "validation")
        self.binary_dir = Path(require_key(config, "dataset.binary_dir"))
        a = self.audio
        self.features = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
        # The frozen mel source when fine-tuning: loaded at its first use (a `--infer` of the run never
        # needs it), and kept out of `build_models` so that it is neither trained nor checkpointed.
        self._acoustic: nn.Module | None = None
        source = self.training.finetune_mels_from
        if source is not None and not Path(source).exists():
            raise UserInputError(
                f"config 'training.finetune_mels_from': {source} does not exist; name an FS2 singer experiment folder, checkpoint or pack"
            )
        self._logged: list[dict[str, Any]] = []
        self._real_audio_logged = False

    def _load_acoustic(self, source: Path) -> nn.Module:
        saved = load_saved(source)
        check_same_features(saved.description.audio, self.audio, str(saved.source), "this vocoder")
        model = saved.build(saved.only(ACOUSTIC, "FS2 singer"))
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model

    # ---- building ---------------------------------------------------------------------------
    def build_models(self) -> dict[str, nn.Module]:
        return {
            "generator": self.vocoder_config.build(),
            "discriminator": VISingerDiscriminator(**self.discriminator_settings.arguments()),
        }

    def model_description(self) -> ModelDescription:
        return describe(
            {
                "generator": ModelSpec.of(HiFiGANGenerator, self.vocoder_config, role=VOCODER),
                "discriminator": ModelSpec.of(VISingerDiscriminator, arguments=self.discriminator_settings.arguments()),
            },
            self.audio, read_dataset_stats(self.binary_dir),
        )  # fmt: skip

    def build_dataset(self, split: str, whole: bool = False) -> SingingDataset:
        # Validation may be capped; the test split, and any split rendered by `infer` (whole=True), is whole.
        max_items = self.validation.max_items if split == "valid" and not whole else None
        dataset = open_singing_split(self.binary_dir, split, self.audio.sample_rate, self.audio.hop_size, max_items)
        check_mel_bins(dataset, self.audio.n_mels)
        return dataset

    # ---- training -----------------------------------------------------------------------------
    @torch.no_grad()
    def input_mels(self, batch: dict[str, Any]) -> torch.Tensor:
        """The generator's input `[B, n_mels, T]`: the recorded mels, or the frozen acoustic model's
        ground-truth-aligned mels (true F0 and energy, the score's durations) when fine-tuning."""
        if self.training.finetune_mels_from is None:
            return batch["mel"]
        if self._acoustic is None:
            self._acoustic = self._load_acoustic(Path(self.training.finetune_mels_from))
        model = self._acoustic.to(batch["mel"].device).eval()
        out = model(
            *batch["score"], f0=batch["f0"], energy=batch["energy"], speaker_id=batch["speaker_id"], n_frames=batch["mel"].size(2),
        )  # fmt: skip
        return out.mel.to(batch["mel"].dtype)

    def generator_pass(self, batch: dict[str, Any]) -> GeneratorWindows:
        hop, size = self.audio.hop_size, self.training.segment_size
        segments = rand_slice_segments(self.input_mels(batch), batch["frame_lengths"], size)
        f0 = slice_segments(batch["f0"].unsqueeze(1), segments.starts, size).squeeze(1)  # [B, size] the recording's F0
        decoded = self.models["generator"].decode(segments.segments, segments.mask, f0=f0)  # [B, 1, size * hop]
        real = slice_segments(batch["wav"], segments.starts * hop, size * hop)
        return GeneratorWindows(decoded.wav, decoded.source_wav, real, segments.starts, segments.mask)

    def reconstruction_terms(self, batch: dict[str, Any], out: GeneratorWindows) -> dict[str, torch.Tensor]:
        with torch.autocast(device_type=out.real.device.type, enabled=False):  # the mel loss in fp32 (bf16 rounding)
            mel_fake = self.features.to(out.real.device).mel(out.fake.float().squeeze(1))
            mel_real = slice_segments(batch["mel"].float(), out.starts, self.training.segment_size)
            return {
                "mel": mel_l1_loss(mel_fake, mel_real, out.mask),
                "source_mel": source_mel_loss(self.features, out.source, mel_real, out.mask),
            }

    # ---- validation -----------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor | float]:
        frame_lengths = batch["frame_lengths"]
        mask = length_mask(frame_lengths, batch["mel"].size(2))
        samples = frame_lengths * self.audio.hop_size
        wav = self.raw_models["generator"](self.input_mels(batch), mask, f0=batch["f0"])  # [B, 1, T * hop]
        self.features.to(wav.device)
        mel = self.features.mel(wav.float().squeeze(1), samples)
        for row in range(batch["mel"].size(0)):
            if len(self._logged) >= self.validation.num_logged_items:
                break
            n, s = int(frame_lengths[row]), int(samples[row])
            self._logged.append(
                {
                    "name": batch["names"][row],
                    "wav_vocoded": wav[row, 0, :s].float().cpu(),
                    "wav_real": batch["wav"][row, 0, :s].float().cpu(),
                    "mel_real": batch["mel"][row, :, :n].float().cpu(),
                    "mel_vocoded": mel[row, :, :n].float().cpu(),
                }
            )
        return {"mel_l1": mel_l1_loss(mel, batch["mel"].float(), mask)}

    def on_validation_end(self, logger, step: int) -> None:
        from tasks.plots import mel_figure

        for index, item in enumerate(self._logged):
            tag = f"val_{index}_{item['name']}"
            logger.add_audio(f"{tag}/vocoded", item["wav_vocoded"], self.audio.sample_rate, step)
            if not self._real_audio_logged:
                logger.add_audio(f"{tag}/real", item["wav_real"], self.audio.sample_rate, step)
            logger.add_figure(f"{tag}/mel", mel_figure(item["mel_real"].numpy(), item["mel_vocoded"].numpy()), step)
        self._real_audio_logged = True
        self._logged = []

    # ---- test-set rendering (`run.py --infer`) --------------------------------------------------------
    def infer(self, work_dir: Path, split: str = "test") -> None:
        """Vocode `split`'s (by default the test split's) recorded mels (the vocoder's upper bound in the two-stage system) and evaluate.

        Output: `work_dir/infer/step<N>/{reference,gt_mel}/<item>.wav`, `gt_mel/metrics.json`, `summary.json`
        and a printed table (`inference.evaluate`).
        """
        from inference.evaluate import render_test_split

        generator = self.raw_models["generator"]

        def from_recorded_mel(batch: dict[str, Any]) -> torch.Tensor:
            return generator(batch["mel"], length_mask(batch["frame_lengths"], batch["mel"].size(2)), f0=batch["f0"])[0, 0]

        out_dir = self.infer_dir(work_dir, split)
        render_test_split(self.build_dataset(split, whole=True), {"gt_mel": from_recorded_mel}, out_dir, self.audio, self.device)
