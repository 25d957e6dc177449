"""The GAN update, in one place, for every task that trains a waveform generator against a discriminator
(VISinger, the HiFi-GAN vocoder).

One update, as HiFi-GAN's `train.py` reads (the trainer steps the optimizers in `optimizer_names` order):

1. **generator pass** — `generator_pass(batch)` once per micro-batch, in the discriminator's turn; its
   output (real and generated waveform windows, and whatever the losses need) is kept for step 3;
2. **discriminator step** — LSGAN loss on the real windows against the *detached* generated ones;
3. **generator step** — the task's reconstruction terms (`reconstruction_terms`) plus the adversarial and
   feature-matching terms, summed by name with the task's `loss_weights` (`modules.losses.weighted_sum`).

The trainer calls `training_step(batch, "discriminator")` then `training_step(batch, "generator")` on
the same micro-batch objects (also under gradient accumulation, mixed precision and DDP), so step 3
finds step 1's output by the batch's identity; a generator turn without a kept pass (a direct call)
runs the pass itself. Until `discriminator.start_update` the discriminator turn only runs the pass
and returns `{}` (skipped), and the adversarial terms are zero.
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from modules.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    weighted_sum,
)
from preprocessor.audio import SpectrogramExtractor
from tasks.base_task import BaseTask


@dataclass(frozen=True)
class DiscriminatorSettings:
    """`discriminator:` — multi-period (periods) + multi-scale (n_scales) as HiFi-GAN.

    start_update: the discriminator, and with it the adversarial and feature-matching terms, joins
    training at this update (0 = from the start, as the paper). Before it the generator learns from
    the reconstruction terms alone, which is much faster per update and gets a small CPU model to
    an audible voice sooner.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    n_scales: int = 3
    period_use_spectral_norm: bool = False
    max_channels: int = 1024
    start_update: int = 0

    def active(self, step: int) -> bool:
        return step >= self.start_update

    def arguments(self) -> dict[str, Any]:
        """`VISingerDiscriminator`'s constructor arguments (`start_update` is the task's, not the network's)."""
        return {"periods": self.periods, "n_scales": self.n_scales, "period_use_spectral_norm": self.period_use_spectral_norm, "max_channels": self.max_channels}


def source_mel_loss(
    features: SpectrogramExtractor, source_wav: torch.Tensor | None, mel_real: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mel L1 of a decoder's harmonic excitation `[B, 1, S]` against the same target `[B, n_mels, T]`, so that
    it learns to be a rough voice on its own; 0 for a decoder without a source (`source_wav` None)."""
    if source_wav is None:
        return mel_real.new_zeros(())
    return mel_l1_loss(features.mel(source_wav.float().squeeze(1)), mel_real, mask)


def adversarial_terms(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, active: bool) -> dict[str, torch.Tensor]:
    """The generator's adversarial and feature-matching terms; zeros while the discriminator waits."""
    if not active:
        zero = fake.new_zeros(())
        return {"adversarial": zero, "feature_matching": zero}
    scores = discriminator(real, fake)
    return {
        "adversarial": generator_adversarial_loss(scores.fake_logits),
        "feature_matching": feature_matching_loss(scores.real_features, scores.fake_features),
    }


class GeneratorPass(Protocol):
    """What `generator_pass` returns: at least the real and generated waveform windows `[B, 1, S]`."""

    @property
    def real(self) -> torch.Tensor: ...

    @property
    def fake(self) -> torch.Tensor: ...


class GANTask(BaseTask):
    """A task whose generator is trained against `models["discriminator"]`; see the module docstring.

    Subclasses set `self.discriminator_settings` (`DiscriminatorSettings`) and `self.loss_weights` (a
    dataclass whose fields are the names of every generator term) and implement the two hooks below.
    """

    optimizer_names = ("discriminator", "generator")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        # Step 1's output per micro-batch, for step 3 of the same update (one generator forward, as VITS).
        self._pending: dict[int, GeneratorPass] = {}

    @abc.abstractmethod
    def generator_pass(self, batch: Any) -> GeneratorPass:
        """One forward of the generator on `batch` (random windows drawn here)."""

    @abc.abstractmethod
    def reconstruction_terms(self, batch: Any, out: GeneratorPass) -> dict[str, torch.Tensor]:
        """The generator's unweighted terms besides the adversarial ones (mel L1, KL, ...), by name."""

    def training_step(self, batch: Any, optimizer_name: str) -> dict[str, torch.Tensor]:
        adversarial = self.discriminator_settings.active(self.global_step)
        if optimizer_name == "discriminator":
            out = self.generator_pass(batch)  # 1. the generator pass, kept for the generator's turn
            self._pending[id(batch)] = out
            if not adversarial:
                return {}  # skipped by the trainer; the generator's turn reuses `out`
            scores = self.models["discriminator"](out.real, out.fake.detach())  # 2. discriminator step
            return {"loss": discriminator_loss(scores.real_logits, scores.fake_logits)}
        out = self._pending.pop(id(batch), None) or self.generator_pass(batch)  # 3. generator step
        terms = self.reconstruction_terms(batch, out)
        terms.update(adversarial_terms(self.models["discriminator"], out.real, out.fake, adversarial))
        total = weighted_sum(terms, dataclasses.asdict(self.loss_weights))
        return {"loss": total, **{f"g_{name}": value.detach() for name, value in terms.items()}}
