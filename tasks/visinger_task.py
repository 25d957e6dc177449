"""VISinger trained end to end through the generic runner: generator and discriminator alternate
every update (discriminator first, as HiFi-GAN/VITS), with the paper's losses weighted by name.

YAML sections read here (see config/models/visinger.yaml): `audio`, `dataset` (binary_dir),
`model` (the generator's constructor arguments except the derived `n_phones`, `spec_channels`,
`hop_size`, `sample_rate`), `discriminator`, `loss_weights`, `validation`. The runner reads `trainer` and
`optimizers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, require_key
from model_io.description import SINGER, ModelDescription, ModelSpec, describe, read_dataset_stats
from modules.discriminators import VISingerDiscriminator
from modules.losses import (
    ctc_loss,
    f0_loss,
    kl_loss,
    mel_l1_loss,
    uv_loss,
)
from modules.masks import length_mask, slice_segments
from modules.variance import variance_l1
from modules.visinger import VISingerGenerator, VISingerGeneratorConfig, VISingerTrainOutput
from preprocessor.audio import AudioSettings, SpectrogramExtractor
from preprocessor.text.phone_set import PHONE_SET, phone_classes
from tasks.gan_task import DiscriminatorSettings, GANTask, source_mel_loss
from tasks.svs_dataset import SingingDataset, open_singing_split

# Computed from other sections, never written in `model:` (one value, one place).
DERIVED_MODEL_KEYS = ("n_phones", "spec_channels", "hop_size", "sample_rate", "phone_classes")


@dataclass(frozen=True)
class LossWeights:
    """`loss_weights:` — every term of the generator objective, by name (the paper's values)."""

    mel: float = 45.0
    kl: float = 1.0
    adversarial: float = 1.0
    feature_matching: float = 2.0
    f0: float = 1.0
    uv: float = 1.0
    ctc: float = 1.0
    source_mel: float = 45.0  # mel L1 of the harmonic source's own waveform (nsf_hifigan's excitation, ddsp's DSP output; 0 for other decoders)
    variance: float = 1.0  # L1 (dB / 20) of the predicted energy and breathiness (model.variance_controls; 0 without)


@dataclass(frozen=True)
class ValidationSettings:
    """`validation:` — how many items are synthesised in full and logged, and the prior's noise."""

    num_logged_items: int = 3
    noise_scale: float = 0.667
    max_items: int | None = None


def generator_config_from(cfg: dict[str, Any]) -> VISingerGeneratorConfig:
    """The generator's arguments: `model:` plus the values derived from `audio:` and the phone set."""
    model = dict(require_key(cfg, "model"))
    for key in DERIVED_MODEL_KEYS:
        if key in model:
            raise UserInputError(f"config: 'model.{key}' is derived (from audio.* and the phone set); remove it from the YAML")
    audio = config_section(cfg, AudioSettings, "audio")
    model.update(n_phones=len(PHONE_SET), spec_channels=audio.n_fft // 2 + 1, hop_size=audio.hop_size, sample_rate=audio.sample_rate)
    if model.get("score_embedding") == "shared":
        model["phone_classes"] = phone_classes()  # the class of each phone id (modules/score_encoder.py)
    return build_dataclass(VISingerGeneratorConfig, model, "model")


class VISingerPass(NamedTuple):
    """The generator pass of one update: the model's training outputs and the real waveform window
    `[B, 1, segment * hop]` matching `train.wav_slice` (the generated one)."""

    train: VISingerTrainOutput
    real: torch.Tensor

    @property
    def fake(self) -> torch.Tensor:
        return self.train.wav_slice


class VISingerTask(GANTask):
    config_sections = ("model", "discriminator", "loss_weights", "validation")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.audio = config_section(config, AudioSettings, "audio")
        self.generator_config = generator_config_from(config)
        self.discriminator_settings = config_section(config, DiscriminatorSettings, "discriminator")
        self.loss_weights = config_section(config, LossWeights, "loss_weights")
        self.validation = config_section(config, ValidationSettings, "validation")
        self.binary_dir = Path(require_key(config, "dataset.binary_dir"))
        a = self.audio
        self.features = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
        self._logged: list[dict[str, Any]] = []
        self._real_audio_logged = False  # the ground truth never changes: log it once

    # ---- building ---------------------------------------------------------------------------
    def build_models(self) -> dict[str, nn.Module]:
        return {
            "generator": VISingerGenerator.from_config(self.generator_config),
            "discriminator": VISingerDiscriminator(**self.discriminator_settings.arguments()),
        }

    def model_description(self) -> ModelDescription:
        return describe(
            {
                "generator": ModelSpec.of(VISingerGenerator, self.generator_config, role=SINGER),
                "discriminator": ModelSpec.of(VISingerDiscriminator, arguments=self.discriminator_settings.arguments()),
            },
            self.audio, read_dataset_stats(self.binary_dir),
        )  # fmt: skip

    def build_dataset(self, split: str, whole: bool = False) -> SingingDataset:
        # Validation may be capped; the test split, and any split rendered by `infer` (whole=True), is whole.
        max_items = self.validation.max_items if split == "valid" and not whole else None
        return open_singing_split(self.binary_dir, split, self.audio.sample_rate, self.audio.hop_size, max_items, self.generator_config.n_speakers)

    # ---- training -----------------------------------------------------------------------------
    def _linear_spec(self, batch: dict[str, Any]) -> torch.Tensor:
        """Posterior input `[B, n_fft // 2 + 1, T]`, computed on the device from the waveform."""
        self.features.to(batch["wav"].device)
        samples = batch["frame_lengths"] * self.audio.hop_size
        with torch.autocast(device_type=batch["wav"].device.type, enabled=False):
            return self.features.linear(batch["wav"].float(), samples)

    def _variance(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """`[B, 2, T]` energy and breathiness (dB) of the batch, for a generator with `variance_controls`."""
        if not self.generator_config.variance_controls:
            return None
        if "breathiness" not in batch:
            raise UserInputError(
                f"{self.binary_dir}: model.variance_controls needs the breathiness feature; binarize with 'features: {{breathiness: true}}' in the dataset config"
            )
        return torch.stack([batch["energy"], batch["breathiness"]], dim=1)

    def generator_pass(self, batch: dict[str, Any]) -> VISingerPass:
        out = self.models["generator"](
            *batch["score"], self._linear_spec(batch), batch["frame_lengths"], batch["f0"], batch["speaker_id"], self._variance(batch),
        )  # fmt: skip
        hop = self.audio.hop_size
        real = slice_segments(batch["wav"], out.slice_starts * hop, self.generator_config.segment_size * hop)
        return VISingerPass(out, real)

    def reconstruction_terms(self, batch: dict[str, Any], out: VISingerPass) -> dict[str, torch.Tensor]:
        train = out.train
        # Losses in fp32 whatever the autocast precision: log-mels and the KL are sensitive to bf16 rounding.
        with torch.autocast(device_type=out.real.device.type, enabled=False):
            mel_fake = self.features.mel(train.wav_slice.float().squeeze(1))
            mel_real = slice_segments(batch["mel"].float(), train.slice_starts, self.generator_config.segment_size)
            return {
                "mel": mel_l1_loss(mel_fake, mel_real, train.slice_mask),
                "kl": kl_loss(train.z_p.float(), train.logs_q.float(), train.m_p.float(), train.logs_p.float(), train.frame_mask),
                "f0": f0_loss(train.log_f0_pred.float(), batch["f0"], train.frame_mask),
                "uv": uv_loss(train.uv_logit_pred.float(), batch["uv"], train.frame_mask),
                "ctc": ctc_loss(train.phoneme_logits, batch["frame_lengths"], batch["phone_ids"], batch["phone_lengths"]),
                "source_mel": source_mel_loss(self.features, train.source_slice, mel_real, train.slice_mask),
                "variance": train.m_p.new_zeros(()) if train.variance_pred is None
                else variance_l1(train.variance_pred.float(), self._variance(batch).float(), train.frame_mask),
            }  # fmt: skip

    # ---- validation -----------------------------------------------------------------------------
    def _infer_from_score(self, batch: dict[str, Any], noise_scale: float, f0: torch.Tensor | None = None):
        return self.raw_models["generator"].infer(*batch["score"], batch["speaker_id"], noise_scale=noise_scale, f0=f0)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor | float]:
        generator = self.raw_models["generator"]
        frame_lengths = batch["frame_lengths"]
        mask = length_mask(frame_lengths, batch["mel"].size(2))
        samples = frame_lengths * self.audio.hop_size
        self.features.to(batch["wav"].device)
        from_score = self._infer_from_score(batch, self.validation.noise_scale)
        mel_score = self.features.mel(from_score.wav.squeeze(1), samples)
        wav_posterior = generator.infer_from_posterior(self._linear_spec(batch), frame_lengths, batch["speaker_id"], f0=batch["f0"])
        mel_posterior = self.features.mel(wav_posterior.squeeze(1), samples)
        voiced = (batch["f0"] > 0) & (from_score.f0_pred > 0) & mask.squeeze(1).bool()
        cents = 1200 * torch.log2(from_score.f0_pred[voiced] / batch["f0"][voiced]) if voiced.any() else torch.zeros(1)
        metrics = {
            "mel_l1": mel_l1_loss(mel_score, batch["mel"], mask),
            "mel_l1_posterior": mel_l1_loss(mel_posterior, batch["mel"], mask),
            "f0_rmse_cents": torch.sqrt(torch.mean(cents.float() ** 2)),
        }
        for row in range(batch["mel"].size(0)):
            if len(self._logged) >= self.validation.num_logged_items:
                break
            n, s = int(frame_lengths[row]), int(samples[row])
            self._logged.append(
                {
                    "name": batch["names"][row],
                    "wav_score": from_score.wav[row, 0, :s].float().cpu(),
                    "wav_posterior": wav_posterior[row, 0, :s].float().cpu(),
                    "wav_real": batch["wav"][row, 0, :s].float().cpu(),
                    "mel_real": batch["mel"][row, :, :n].float().cpu(),
                    "mel_score": mel_score[row, :, :n].float().cpu(),
                    "f0_real": batch["f0"][row, :n].float().cpu(),
                    "f0_pred": from_score.f0_pred[row, :n].float().cpu(),
                    "score_pitch": torch.repeat_interleave(batch["note_pitch"][row], batch["phone_frames"][row]).float().cpu()[:n],
                }
            )
        return metrics

    def on_validation_end(self, logger, step: int) -> None:
        from tasks.plots import f0_figure, mel_figure

        for index, item in enumerate(self._logged):
            tag = f"val_{index}_{item['name']}"
            sr = self.audio.sample_rate
            logger.add_audio(f"{tag}/score", item["wav_score"], sr, step)
            logger.add_audio(f"{tag}/posterior", item["wav_posterior"], sr, step)
            if not self._real_audio_logged:
                logger.add_audio(f"{tag}/real", item["wav_real"], sr, step)
            logger.add_figure(f"{tag}/mel", mel_figure(item["mel_real"].numpy(), item["mel_score"].numpy()), step)
            logger.add_figure(
                f"{tag}/f0",
                f0_figure(item["score_pitch"].numpy(), item["f0_real"].numpy(), item["f0_pred"].numpy(), sr / self.audio.hop_size),
                step,
            )
        self._real_audio_logged = True
        self._logged = []

    # ---- test-set rendering (`run.py --infer`) --------------------------------------------------------
    def infer(self, work_dir: Path, split: str = "test") -> None:
        """Render `split` (the test split by default) from the score (predicted F0) and from the posterior (an upper bound),
        write the wavs beside the references, and evaluate both with `inference.metrics`.

        Output: `work_dir/infer/step<N>/{reference,score,posterior}/<item>.wav`, `metrics.json` in
        `score/` and `posterior/` (per item and mean), and `summary.json` + a printed table.
        """
        from inference.evaluate import Rendered, render_test_split

        out_dir = self.infer_dir(work_dir, split)
        generator = self.raw_models["generator"]
        torch.manual_seed(0)  # the prior's sample: the same renders for the same checkpoint

        def from_score(batch: dict[str, Any]) -> Rendered:
            out = self._infer_from_score(batch, self.validation.noise_scale)
            return Rendered(out.wav[0, 0], out.f0_pred[0])

        def from_posterior(batch: dict[str, Any]) -> Rendered:
            spec = self._linear_spec(batch)
            wav = generator.infer_from_posterior(spec, batch["frame_lengths"], batch["speaker_id"], f0=batch["f0"])[0, 0]
            return Rendered(wav, batch["f0"][0])

        dataset = self.build_dataset(split, whole=True)
        labels = {"score": "predicted F0", "posterior": "F0 given (extracted from the recording)"}
        render_test_split(dataset, {"score": from_score, "posterior": from_posterior}, out_dir, self.audio, self.device,
                          driving_labels=labels)  # fmt: skip
