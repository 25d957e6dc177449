"""Frame prior network and F0 predictor: the frame-level half of VISinger's prior.

After the length regulator, the expanded score encoding `h [B, H, T]` feeds two networks:

* `F0Predictor` reads `h` and predicts log-F0 and a voicing logit per frame. It predicts log-F0 as a
  residual over the note's pitch (`log_f0 = log_hz(note) + delta`): the score already says which
  note is sung, so the network only learns the deviations (vibrato, glides, detuning), and its
  output is in the right octave from the first step. On rests the base is `rest_pitch`.
* `FramePriorNetwork` adds an embedding of an F0 contour to `h`, runs more FFT blocks and projects
  to the prior's mean and log-scale. The F0 contour is the ground truth while training and the
  predictor's output at inference (VISinger, Sec. 2.2), so the prior learns to rely on F0.

F0 enters both as a function of Hz only (`f0_condition`): `[log2(f0 / 440), voiced]` with 0 on
unvoiced frames, so a ground-truth contour and a predicted one are encoded the same way.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from modules.attentions import FFTEncoder

A4_HZ = 440.0
A4_MIDI = 69.0


def midi_to_log_hz(pitch: torch.Tensor) -> torch.Tensor:
    """Natural log of the equal-tempered frequency of MIDI `pitch` (any shape, float allowed)."""
    return math.log(A4_HZ) + (pitch.float() - A4_MIDI) * (math.log(2.0) / 12.0)


def f0_condition(f0_hz: torch.Tensor) -> torch.Tensor:
    """`f0_hz [B, T]` (0 = unvoiced) -> `[B, 2, T]`: octaves from A4 (0 when unvoiced) and a voiced flag."""
    voiced = f0_hz > 0
    octaves = torch.where(voiced, torch.log2(f0_hz.clamp(min=1e-5) / A4_HZ), torch.zeros_like(f0_hz))
    return torch.stack([octaves, voiced.to(f0_hz.dtype)], dim=1)


def predicted_f0_hz(log_f0: torch.Tensor, uv_logit: torch.Tensor) -> torch.Tensor:
    """F0 in Hz from the predictor's outputs: `exp(log_f0)` where voiced (`uv_logit < 0`), else 0."""
    return torch.where(uv_logit < 0, torch.exp(log_f0), torch.zeros_like(log_f0))


class F0Prediction(NamedTuple):
    log_f0: torch.Tensor  # [B, T] predicted natural-log F0 in Hz (meaningful on voiced frames)
    uv_logit: torch.Tensor  # [B, T] logit of P(unvoiced); matches the batch's `uv` (1 = unvoiced)
    base_log_f0: torch.Tensor  # [B, T] log-Hz of the score's note (rest_pitch on rests): the residual's base


class F0Predictor(nn.Module):
    """FFT blocks over the frame-level score encoding -> (log-F0 residual over the note, voicing logit).

    Args:
        hidden_channels: width of the input `h` and the blocks.
        filter_channels: feed-forward width.
        n_heads: attention heads.
        n_layers: FFT blocks.
        kernel_size: feed-forward conv kernel.
        dropout: dropout inside the blocks.
        window_size: relative-attention window.
        rest_pitch: MIDI pitch used as the residual's base on rests (their F0 is mostly unvoiced;
            a mid-range pitch keeps the few voiced rest frames near the singer's range).
    """

    def __init__(
        self,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        n_heads: int = 2,
        n_layers: int = 2,
        kernel_size: int = 9,
        dropout: float = 0.1,
        window_size: int | None = 4,
        rest_pitch: float = 60.0,
    ) -> None:
        super().__init__()
        self.rest_pitch = rest_pitch
        self.encoder = FFTEncoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, dropout, window_size)
        self.projection = nn.Conv1d(hidden_channels, 2, 1)  # channel 0: log-F0 delta, channel 1: uv logit

    def forward(self, h: torch.Tensor, note_pitch_frames: torch.Tensor, mask: torch.Tensor) -> F0Prediction:
        """`h [B, H, T]`, `note_pitch_frames [B, T]` (MIDI, 0 = rest), `mask [B, 1, T]` -> `F0Prediction` (zero on padding)."""
        base_pitch = torch.where(note_pitch_frames > 0, note_pitch_frames.float(), torch.full_like(note_pitch_frames.float(), self.rest_pitch))
        frame_mask = mask.squeeze(1)  # [B, T]
        base_log_f0 = midi_to_log_hz(base_pitch) * frame_mask
        out = self.projection(self.encoder(h, mask)) * mask  # [B, 2, T]
        return F0Prediction(base_log_f0 + out[:, 0], out[:, 1], base_log_f0)


class FramePrior(NamedTuple):
    mean: torch.Tensor  # [B, inter, T] prior mean m_p
    log_scale: torch.Tensor  # [B, inter, T] prior log standard deviation logs_p


class FramePriorNetwork(nn.Module):
    """F0-conditioned FFT blocks at frame level, projected to the prior's mean and log-scale.

    Args:
        hidden_channels: width of `h` and the blocks.
        filter_channels: feed-forward width.
        n_heads: attention heads.
        n_layers: FFT blocks (4 in VISinger).
        kernel_size: feed-forward conv kernel.
        dropout: dropout inside the blocks.
        window_size: relative-attention window.
        inter_channels: latent width (channels of `m_p`, `logs_p`).
        variance_channels: channels of an extra frame-level condition (the expressive controls,
            `modules.variance`), embedded and added like the F0; 0 = none (the paper's prior).
    """

    def __init__(
        self,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        n_heads: int = 2,
        n_layers: int = 4,
        kernel_size: int = 9,
        dropout: float = 0.1,
        window_size: int | None = 4,
        inter_channels: int = 192,
        variance_channels: int = 0,
    ) -> None:
        super().__init__()
        self.inter_channels = inter_channels
        self.f0_embedding = nn.Conv1d(2, hidden_channels, 1)  # f0_condition channels -> hidden
        # Only built when asked, so that checkpoints of the paper's prior keep their exact state dict.
        self.variance_embedding = nn.Conv1d(variance_channels, hidden_channels, 3, padding=1) if variance_channels else None
        self.encoder = FFTEncoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, dropout, window_size)
        self.projection = nn.Conv1d(hidden_channels, 2 * inter_channels, 1)

    def forward(self, h: torch.Tensor, f0_hz: torch.Tensor, mask: torch.Tensor, variance: torch.Tensor | None = None) -> FramePrior:
        """`h [B, H, T]`, `f0_hz [B, T]` (0 = unvoiced), `mask [B, 1, T]`, `variance [B, variance_channels, T]`
        (required exactly when the prior has `variance_channels`) -> `FramePrior` (zero on padding)."""
        x = h + self.f0_embedding(f0_condition(f0_hz))  # [B, H, T]
        if (variance is None) != (self.variance_embedding is None):
            raise ValueError("pass variance [B, C, T] exactly when the prior was built with variance_channels > 0")
        if variance is not None:
            x = x + self.variance_embedding(variance * mask)
        x = x * mask
        stats = self.projection(self.encoder(x, mask)) * mask  # [B, 2 * inter, T]
        mean, log_scale = torch.split(stats, self.inter_channels, dim=1)
        return FramePrior(mean, log_scale)
