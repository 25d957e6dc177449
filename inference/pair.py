"""The two-stage baseline as one singer: an FS2 singer (score -> mel) and a HiFi-GAN (mel -> wav).

`AcousticVocoderPair` implements the singer contract (`modules.score_inputs.SingingModel`), so the pair
sings through the very same `inference.synthesis.SingingSynthesizer` (frontend, frame rule, phrase
cutting, cross-fades) as VISinger: the two systems differ only in the networks. Both models are
rebuilt from their files by `model_io` (`inference.api.Singer.load`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from modules.fs2_singer import FS2Singer
from modules.hifigan import HiFiGANGenerator
from modules.score_inputs import ScoreInputs, SingingOutput


class PairOutput(NamedTuple):
    wav: torch.Tensor  # [B, 1, T * hop], zero past each item's frames
    f0_hz: torch.Tensor  # [B, T] predicted F0 in Hz (0 = unvoiced or padding)
    mel: torch.Tensor  # [B, n_mels, T] the acoustic model's log-mel
    frame_mask: torch.Tensor  # [B, 1, T]


class AcousticVocoderPair(nn.Module):
    """FS2 singer + HiFi-GAN as one `SingingModel`. Deterministic: it has no sampling temperature."""

    def __init__(self, acoustic: FS2Singer, vocoder: HiFiGANGenerator) -> None:
        super().__init__()
        self.acoustic = acoustic
        self.vocoder = vocoder

    @property
    def n_speakers(self) -> int:
        return self.acoustic.config.n_speakers

    @property
    def waveform_stage(self) -> nn.Module:
        return self.vocoder

    @torch.no_grad()
    def infer(self, score: ScoreInputs, speaker_id: torch.Tensor | None = None, f0: torch.Tensor | None = None) -> PairOutput:
        """Score -> mel (predicted F0, or `f0 [B, T]` in Hz when given, and energy) -> wav; the mel too."""
        out = self.acoustic.infer(*score, speaker_id=speaker_id, f0=f0)
        wav = self.vocoder(out.mel, out.frame_mask, f0=out.f0_hz)  # [B, 1, T * hop]; f0 excites a source-excited vocoder
        return PairOutput(wav, out.f0_hz, out.mel, out.frame_mask)

    def sing(
        self, score: ScoreInputs, speaker_id: torch.Tensor | None = None, noise_scale: float = 0.0, f0: torch.Tensor | None = None
    ) -> SingingOutput:
        """The contract's call; `noise_scale` has no effect (the pair samples nothing)."""
        out = self.infer(score, speaker_id, f0)
        return SingingOutput(out.wav, out.f0_hz)
