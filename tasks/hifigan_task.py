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

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, require_key
from modules.discriminators import VISingerDiscriminator
from modules.hifigan import HiFiGANGenerator, check_upsampling
from modules.losses import discriminator_loss, mel_l1_loss
from modules.masks import length_mask, rand_slice_segments, slice_segments
from preprocessor.audio import AudioSettings, SpectrogramExtractor
from tasks.base_task import BaseTask
from tasks.fs2_task import check_mel_bins
from tasks.svs_dataset import SingingDataset, open_singing_split
from tasks.visinger_task import DiscriminatorSettings, adversarial_terms, source_mel_loss

# Computed from `audio:`, never written in `model:` (one value, one place).
DERIVED_MODEL_KEYS = ("in_channels", "hop_size", "sample_rate")


@dataclass(frozen=True)
class HiFiGANVocoderConfig:
    """`HiFiGANGenerator`'s arguments for a mel vocoder, one to one (single speaker: no `gin_channels`).

    Defaults are HiFi-GAN V1 at hop 300 (24 kHz CSD), the upsampling VISinger's decoder uses.
    """

    in_channels: int = 128
    hop_size: int = 300
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (5, 5, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 10, 8, 6)
    resblock_type: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    harmonic_source: bool = False  # NSF-style: a learnt harmonic-plus-noise source at the F0 excites the generator
    sample_rate: int = 24000
    n_harmonics: int = 48

    def __post_init__(self) -> None:
        # ValueError: config_section turns it into a one-line UserInputError naming the section.
        check_upsampling(self.upsample_rates, self.hop_size, self.upsample_kernel_sizes)

    def build(self) -> HiFiGANGenerator:
        return HiFiGANGenerator(**dataclasses.asdict(self))


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


class HiFiGANTask(BaseTask):
    optimizer_names = ("discriminator", "generator")

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
        # Generator windows of the discriminator's turn, reused in the generator's turn of the same update.
        self._pending: dict[int, GeneratorWindows] = {}
        self._logged: list[dict[str, Any]] = []
        self._real_audio_logged = False

    def _load_acoustic(self, source: Path) -> nn.Module:
        from inference.baseline_synthesis import check_same_features, load_acoustic

        loaded = load_acoustic(exp_dir=source) if source.is_dir() else load_acoustic(ckpt=source)
        check_same_features(self.audio, loaded.audio, "this vocoder", str(loaded.source))
        model = loaded.model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model

    # ---- building ---------------------------------------------------------------------------
    def build_models(self) -> dict[str, nn.Module]:
        d = self.discriminator_settings
        return {
            "generator": self.vocoder_config.build(),
            "discriminator": VISingerDiscriminator(d.periods, d.n_scales, d.period_use_spectral_norm, d.max_channels),
        }

    def build_dataset(self, split: str) -> SingingDataset:
        max_items = self.validation.max_items if split == "valid" else None  # the test split is always whole
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
            batch["phone_ids"], batch["note_pitch"], batch["note_dur"], batch["slur"], batch["phone_frames"], batch["phone_lengths"],
            f0=batch["f0"], energy=batch["energy"], speaker_id=batch["speaker_id"], n_frames=batch["mel"].size(2),
        )  # fmt: skip
        return out.mel.to(batch["mel"].dtype)

    def _generator_pass(self, batch: dict[str, Any]) -> GeneratorWindows:
        hop, size = self.audio.hop_size, self.training.segment_size
        segments = rand_slice_segments(self.input_mels(batch), batch["frame_lengths"], size)
        f0 = slice_segments(batch["f0"].unsqueeze(1), segments.starts, size).squeeze(1)  # [B, size] the recording's F0
        decoded = self.models["generator"].decode(segments.segments, segments.mask, f0=f0)  # [B, 1, size * hop]
        real = slice_segments(batch["wav"], segments.starts * hop, size * hop)
        return GeneratorWindows(decoded.wav, decoded.source_wav, real, segments.starts, segments.mask)

    def training_step(self, batch: dict[str, Any], optimizer_name: str) -> dict[str, torch.Tensor]:
        key = id(batch)
        adversarial = self.discriminator_settings.active(self.global_step)
        if optimizer_name == "discriminator":
            windows = self._generator_pass(batch)
            self._pending[key] = windows
            if not adversarial:
                return {}  # skipped by the trainer; the generator's turn reuses the pass
            scores = self.models["discriminator"](windows.real, windows.fake.detach())
            return {"loss": discriminator_loss(scores.real_logits, scores.fake_logits)}
        fake, source, real, starts, mask = self._pending.pop(key, None) or self._generator_pass(batch)
        with torch.autocast(device_type=real.device.type, enabled=False):  # the mel loss in fp32 (bf16 rounding)
            mel_fake = self.features.to(real.device).mel(fake.float().squeeze(1))
            mel_real = slice_segments(batch["mel"].float(), starts, self.training.segment_size)
            terms = {"mel": mel_l1_loss(mel_fake, mel_real, mask)}
            terms["source_mel"] = source_mel_loss(self.features, source, mel_real, mask)
        terms.update(adversarial_terms(self.models["discriminator"], real, fake, adversarial))
        weights = dataclasses.asdict(self.loss_weights)
        if set(weights) != set(terms):  # strict: a weight for a term that does not exist is a bug
            raise AssertionError(f"loss terms {sorted(terms)} != weights {sorted(weights)}")
        total = sum(weights[name] * value for name, value in terms.items())
        return {"loss": total, **{f"g_{name}": value.detach() for name, value in terms.items()}}

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
    def infer(self, work_dir: Path) -> None:
        """Vocode the test split's recorded mels (the vocoder's upper bound in the two-stage system) and evaluate.

        Output: `work_dir/infer/step<N>/{reference,gt_mel}/<item>.wav`, `gt_mel/metrics.json`, `summary.json`
        and a printed table (`inference.evaluate`).
        """
        from inference.evaluate import Rendered, render_test_split

        generator = self.raw_models["generator"]

        def from_recorded_mel(batch: dict[str, Any]) -> Rendered:
            mask = length_mask(batch["frame_lengths"], batch["mel"].size(2))
            return Rendered(generator(batch["mel"], mask, f0=batch["f0"])[0, 0], batch["f0"][0])

        out_dir = Path(work_dir) / "infer" / f"step{self.global_step}"
        render_test_split(self.build_dataset("test"), {"gt_mel": from_recorded_mel}, out_dir, self.audio, self.device,
                          driving_labels={"gt_mel": "F0 given (extracted from the recording)"})  # fmt: skip
