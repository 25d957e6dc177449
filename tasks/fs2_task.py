"""The two-stage baseline's acoustic model (modules/fs2_singer.py) trained through the generic runner.

One optimizer ("main"); losses weighted by name: L1 log-mel, L1 log-F0 on voiced frames, BCE on the
voicing flag, L1 energy (in dB / 20 = log10 RMS). While training the mel decoder is conditioned on the
true F0 and energy (teacher forcing, as FastSpeech 2); validation and inference use the predicted ones.

YAML sections read here (see config/models/fs2_singer.yaml): `audio`, `dataset` (binary_dir), `model`
(`FS2SingerConfig` except the derived `n_phones` and `n_mels`), `loss_weights`, `validation`, and
`infer` (the vocoder that `run.py --infer` renders the test split with). The runner reads `trainer`
and `optimizers`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, require_key
from model_io.description import ACOUSTIC, VOCODER, ModelDescription, ModelSpec, check_same_features, describe, read_dataset_stats
from model_io.loader import load_saved
from modules.fs2_singer import ENERGY_DB_PER_UNIT, FS2Singer, FS2SingerConfig, FS2SingerOutput
from modules.losses import f0_loss, mel_l1_loss, uv_loss, weighted_sum
from preprocessor.audio import AudioSettings
from preprocessor.text.phone_set import PHONE_SET
from tasks.base_task import BaseTask
from tasks.svs_dataset import SingingDataset, open_singing_split

# Computed from other sections, never written in `model:` (one value, one place).
DERIVED_MODEL_KEYS = ("n_phones", "n_mels")


@dataclass(frozen=True)
class LossWeights:
    """`loss_weights:` — every term of the acoustic objective, by name."""

    mel: float = 1.0
    f0: float = 1.0
    uv: float = 1.0
    energy: float = 1.0


@dataclass(frozen=True)
class ValidationSettings:
    """`validation:` — items whose mel and F0 are plotted, and a cap on the validation items."""

    num_logged_items: int = 3
    max_items: int | None = None


@dataclass(frozen=True)
class InferSettings:
    """`infer:` — the HiFi-GAN that `run.py --infer` renders with: an experiment under the same
    work-dir root (`vocoder_exp`), or a checkpoint file / vocoder pack (`vocoder_ckpt`); one of them."""

    vocoder_exp: str | None = None
    vocoder_ckpt: str | None = None


def acoustic_config_from(cfg: dict[str, Any]) -> FS2SingerConfig:
    """The acoustic model's arguments: `model:` plus the values derived from `audio:` and the phone set."""
    model = dict(require_key(cfg, "model"))
    for key in DERIVED_MODEL_KEYS:
        if key in model:
            raise UserInputError(f"config: 'model.{key}' is derived (from audio.* and the phone set); remove it from the YAML")
    audio = config_section(cfg, AudioSettings, "audio")
    model.update(n_phones=len(PHONE_SET), n_mels=audio.n_mels)
    return build_dataclass(FS2SingerConfig, model, "model")


def check_mel_bins(dataset: SingingDataset, n_mels: int) -> None:
    """The stored mels must have the config's `audio.n_mels` bins (a model of another width cannot use them)."""
    stored = int(dataset.store.attributes.get("n_mels", n_mels))
    if stored != n_mels:
        raise UserInputError(
            f"{dataset.store.split_dir}: binarized with {stored} mel bins, "
            f"the config says audio.n_mels={n_mels}; re-binarize or use the matching config"
        )


def masked_energy_l1(energy_db_pred: torch.Tensor, energy_db: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - true| over valid frames, in dB / 20 (log10 RMS) so that the term is of order 1. Shapes `[B, T]`, mask `[B, 1, T]`."""
    frame_mask = mask.squeeze(1).to(energy_db_pred.dtype)
    error = torch.abs(energy_db_pred - energy_db) / ENERGY_DB_PER_UNIT
    return torch.sum(error * frame_mask) / frame_mask.sum().clamp(min=1.0)


class FS2SingerTask(BaseTask):
    optimizer_names = ("main",)
    config_sections = ("model", "loss_weights", "validation", "infer")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.audio = config_section(config, AudioSettings, "audio")
        self.model_config = acoustic_config_from(config)
        self.loss_weights = config_section(config, LossWeights, "loss_weights")
        self.validation = config_section(config, ValidationSettings, "validation")
        self.infer_settings = config_section(config, InferSettings, "infer")
        self.binary_dir = Path(require_key(config, "dataset.binary_dir"))
        self._logged: list[dict[str, Any]] = []

    # ---- building ---------------------------------------------------------------------------
    def build_models(self) -> dict[str, nn.Module]:
        return {"acoustic": FS2Singer.from_config(self.model_config)}

    def model_description(self) -> ModelDescription:
        return describe({"acoustic": ModelSpec.of(FS2Singer, self.model_config, role=ACOUSTIC)}, self.audio, read_dataset_stats(self.binary_dir))

    def build_dataset(self, split: str, whole: bool = False) -> SingingDataset:
        # Validation may be capped; the test split, and any split rendered by `infer` (whole=True), is whole.
        max_items = self.validation.max_items if split == "valid" and not whole else None
        dataset = open_singing_split(self.binary_dir, split, self.audio.sample_rate, self.audio.hop_size, max_items, self.model_config.n_speakers)
        check_mel_bins(dataset, self.audio.n_mels)
        return dataset

    # ---- training -----------------------------------------------------------------------------
    def _forward(self, model: nn.Module, batch: dict[str, Any], teacher_forced: bool) -> FS2SingerOutput:
        return model(
            *batch["score"], f0=batch["f0"] if teacher_forced else None, energy=batch["energy"] if teacher_forced else None,
            speaker_id=batch["speaker_id"], n_frames=batch["mel"].size(2),
        )  # fmt: skip

    def loss_terms(self, out: FS2SingerOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every term of the objective, unweighted (fp32 whatever the autocast precision)."""
        mask = out.frame_mask.float()
        with torch.autocast(device_type=mask.device.type, enabled=False):
            return {
                "mel": mel_l1_loss(out.mel.float(), batch["mel"].float(), mask),
                "f0": f0_loss(out.log_f0.float(), batch["f0"].float(), mask),
                "uv": uv_loss(out.uv_logit.float(), batch["uv"], mask),
                "energy": masked_energy_l1(out.energy_db.float(), batch["energy"].float(), mask),
            }

    def training_step(self, batch: dict[str, Any], optimizer_name: str) -> dict[str, torch.Tensor]:
        terms = self.loss_terms(self._forward(self.models["acoustic"], batch, teacher_forced=True), batch)
        total = weighted_sum(terms, dataclasses.asdict(self.loss_weights))
        return {"loss": total, **{name: value.detach() for name, value in terms.items()}}

    # ---- validation -----------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor | float]:
        model = self.raw_models["acoustic"]
        predicted = self._forward(model, batch, teacher_forced=False)
        forced = self._forward(model, batch, teacher_forced=True)
        mask = predicted.frame_mask
        voiced = (batch["f0"] > 0) & (predicted.f0_hz > 0) & mask.squeeze(1).bool()
        cents = 1200 * torch.log2(predicted.f0_hz[voiced] / batch["f0"][voiced]) if voiced.any() else torch.zeros(1)
        terms = self.loss_terms(predicted, batch)
        metrics = {
            "mel_l1": terms["mel"],  # from the score alone: what inference gives
            "mel_l1_teacher_forced": mel_l1_loss(forced.mel.float(), batch["mel"].float(), mask),
            "f0_rmse_cents": torch.sqrt(torch.mean(cents.float() ** 2)),
            "uv_bce": terms["uv"],
            "energy_l1_db": terms["energy"] * ENERGY_DB_PER_UNIT,
        }
        frame_lengths = batch["frame_lengths"]
        for row in range(batch["mel"].size(0)):
            if len(self._logged) >= self.validation.num_logged_items:
                break
            n = int(frame_lengths[row])
            self._logged.append(
                {
                    "name": batch["names"][row],
                    "mel_real": batch["mel"][row, :, :n].float().cpu(),
                    "mel_pred": predicted.mel[row, :, :n].float().cpu(),
                    "f0_real": batch["f0"][row, :n].float().cpu(),
                    "f0_pred": predicted.f0_hz[row, :n].float().cpu(),
                    "score_pitch": torch.repeat_interleave(batch["note_pitch"][row], batch["phone_frames"][row]).float().cpu()[:n],
                }
            )
        return metrics

    def on_validation_end(self, logger, step: int) -> None:
        from tasks.plots import f0_figure, mel_figure

        frame_rate = self.audio.sample_rate / self.audio.hop_size
        for index, item in enumerate(self._logged):
            tag = f"val_{index}_{item['name']}"
            logger.add_figure(f"{tag}/mel", mel_figure(item["mel_real"].numpy(), item["mel_pred"].numpy()), step)
            logger.add_figure(
                f"{tag}/f0", f0_figure(item["score_pitch"].numpy(), item["f0_real"].numpy(), item["f0_pred"].numpy(), frame_rate), step
            )
        self._logged = []

    # ---- test-set rendering (`run.py --infer`) --------------------------------------------------------
    def infer(self, work_dir: Path, split: str = "test") -> None:
        """Render `split` (the test split by default) from the score (predicted F0 and energy) through the configured HiFi-GAN
        and evaluate it against the recordings.

        Output: `work_dir/infer/step<N>/{reference,score}/<item>.wav`, `score/metrics.json` (per item and
        mean, `inference.evaluate`), `summary.json` and a printed table. The vocoder: `infer.vocoder_exp`
        (an experiment beside this one, e.g. `--hparams infer.vocoder_exp=csd_hifigan`) or `infer.vocoder_ckpt`.
        """
        from inference.evaluate import Rendered, render_test_split

        s = self.infer_settings
        if (s.vocoder_exp is None) == (s.vocoder_ckpt is None):
            raise UserInputError(
                "config: set exactly one of 'infer.vocoder_exp' (a HiFi-GAN experiment name) and 'infer.vocoder_ckpt'; "
                'e.g. --hparams "infer.vocoder_exp=csd_hifigan"'
            )
        vocoder = load_saved(Path(work_dir).parent / s.vocoder_exp if s.vocoder_exp is not None else Path(s.vocoder_ckpt))
        check_same_features(self.audio, vocoder.description.audio, "this acoustic model", str(vocoder.source))
        generator = vocoder.build(vocoder.only(VOCODER, "HiFi-GAN vocoder")).to(self.device).eval()
        acoustic = self.raw_models["acoustic"]

        def from_score(batch: dict[str, Any]) -> Rendered:
            out = acoustic.infer(*batch["score"], speaker_id=batch["speaker_id"])
            return Rendered(generator(out.mel, out.frame_mask, f0=out.f0_hz)[0, 0], out.f0_hz[0])

        render_test_split(
            self.build_dataset(split, whole=True), {"score": from_score}, self.infer_dir(work_dir, split), self.audio,
            self.device, notes={"vocoder": str(vocoder.source)},
        )  # fmt: skip
