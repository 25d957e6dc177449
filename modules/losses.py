"""VISinger's loss terms as pure functions. Each returns an unweighted scalar; the task applies the
weights by name (e.g. VITS/HiFi-GAN use 45 for mel L1 and 2 for feature matching — those factors
are NOT inside these functions).

Shapes: frame-level predictions `[B, T]` or `[B, C, T]` with masks `[B, 1, T]` (float, 1 = valid).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch.nn import functional as F

from modules.phoneme_predictor import CTC_BLANK_ID


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss: sum over sub-discriminators of `mean((1 - D(real))^2) + mean(D(fake)^2)`."""
    if len(real_logits) != len(fake_logits) or not real_logits:
        raise ValueError("real_logits and fake_logits must be non-empty lists of the same length")
    total = real_logits[0].new_zeros(())
    for real, fake in zip(real_logits, fake_logits):
        total = total + torch.mean((1.0 - real) ** 2) + torch.mean(fake**2)
    return total


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss: sum over sub-discriminators of `mean((1 - D(G(z)))^2)`."""
    if not fake_logits:
        raise ValueError("fake_logits must be a non-empty list")
    total = fake_logits[0].new_zeros(())
    for fake in fake_logits:
        total = total + torch.mean((1.0 - fake) ** 2)
    return total


def feature_matching_loss(real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """Sum over sub-discriminators and layers of `mean(|real - fake|)`; real maps are detached targets."""
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError("real_features and fake_features must be non-empty lists of the same length")
    total = fake_features[0][0].new_zeros(())
    for real_maps, fake_maps in zip(real_features, fake_features):
        for real, fake in zip(real_maps, fake_maps):
            total = total + torch.mean(torch.abs(real.detach() - fake))
    return total


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || p(z|score)) estimated at the flowed posterior sample, as in VITS.

    Args:
        z_p: `[B, C, T]` posterior sample mapped through the flow, f(z).
        logs_q: `[B, C, T]` posterior log-scale (the flow is volume-preserving, so no logdet term).
        m_p: `[B, C, T]` prior mean.
        logs_p: `[B, C, T]` prior log-scale.
        mask: `[B, 1, T]`.
    Returns:
        sum over channels and valid frames, divided by the number of valid frames.
    """
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask).clamp(min=1.0)


def f0_loss(log_f0_pred: torch.Tensor, f0_hz: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between predicted and true natural-log F0, averaged over valid voiced frames.

    Args:
        log_f0_pred: `[B, T]` predicted log-Hz.
        f0_hz: `[B, T]` ground truth in Hz, 0 on unvoiced frames (these are excluded).
        mask: `[B, 1, T]`.
    """
    voiced = (f0_hz > 0).to(log_f0_pred.dtype) * mask.squeeze(1)
    target = torch.log(f0_hz.clamp(min=1e-5))
    # A batch without voiced frames gives 0 (still attached to the graph).
    return torch.sum(torch.abs(log_f0_pred - target) * voiced) / voiced.sum().clamp(min=1.0)


def uv_loss(uv_logit: torch.Tensor, uv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits on the voicing flag (`uv = 1` on unvoiced frames), masked mean."""
    frame_mask = mask.squeeze(1).to(uv_logit.dtype)
    bce = F.binary_cross_entropy_with_logits(uv_logit, uv.to(uv_logit.dtype), reduction="none")
    return torch.sum(bce * frame_mask) / frame_mask.sum().clamp(min=1.0)


def mel_l1_loss(mel_pred: torch.Tensor, mel_target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error between `[B, n_mels, T]` (log-)mels, over valid frames when `mask [B, 1, T]` is given."""
    if mel_pred.shape != mel_target.shape:
        raise ValueError(f"mel shapes differ: {tuple(mel_pred.shape)} vs {tuple(mel_target.shape)}")
    error = torch.abs(mel_pred - mel_target)
    if mask is None:
        return error.mean()
    mask = mask.to(error.dtype)
    return torch.sum(error * mask) / (mask.sum() * error.size(1)).clamp(min=1.0)


def ctc_loss(phoneme_logits: torch.Tensor, frame_lengths: torch.Tensor, phone_ids: torch.Tensor, phone_lengths: torch.Tensor) -> torch.Tensor:
    """CTC between frame-level phoneme logits and the phoneme sequence (blank = `CTC_BLANK_ID` = `<pad>`).

    Args:
        phoneme_logits: `[B, n_phones, T]` from `PhonemePredictor`.
        frame_lengths: `[B]` valid frames.
        phone_ids: `[B, P]` targets, padded with anything past `phone_lengths`.
        phone_lengths: `[B]`.
    Returns:
        PyTorch's `reduction="mean"` (per-item loss divided by its target length, then batch mean).
        An item whose frames cannot fit its phonemes contributes 0 (`zero_infinity`) instead of inf.
    """
    log_probs = F.log_softmax(phoneme_logits.float(), dim=1).permute(2, 0, 1)  # [B, V, T] -> [T, B, V]
    return F.ctc_loss(
        log_probs,
        phone_ids.long(),
        frame_lengths.long(),
        phone_lengths.long(),
        blank=CTC_BLANK_ID,
        reduction="mean",
        zero_infinity=True,
    )


def weighted_sum(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """`sum(weights[name] * terms[name])` in the order of `terms`; the names must match exactly (a weight
    for a term that does not exist, or a term without a weight, is a bug, not something to skip)."""
    if set(weights) != set(terms):
        raise AssertionError(f"loss terms {sorted(terms)} != weights {sorted(weights)}")
    return sum(weights[name] * value for name, value in terms.items())
