"""The DDSP singer (Engel et al. 2020, timbre transfer): F0 + loudness (+ speaker) -> a voice, through a DDSP synthesiser.

    f0 [B, T] Hz ─ hold through unvoiced ─┬─ pitch feature ─┐
    loudness [B, T] dB ─ standardise ─────┼─────────────────┼─ ControlEstimator (MLPs + GRU, causal) ─▶ raw controls
    voiced = f0 > 0 ──────────────────────┘                 │
                                          └─ f0 for synthesis ─▶ SignalChain (harmonic, filtered noise, reverb, from YAML) ─▶ [B, 1, T * hop]

The synthesiser is `modules.ddsp.chain.SignalChain` (shared with VISinger's DDSP decoder): its
`control_channels()` size the estimator's output, which is split into the named controls.

Unvoiced frames keep the last voiced F0 (before the first voiced frame: the training data's mean pitch),
so the harmonic oscillator never jumps to 0 Hz and back: the estimator learns to silence the harmonics
where the voicing flag is 0 (DDSP does the same with CREPE's always-on F0). Holding the last value is
causal, unlike interpolating across the gap, so the block-by-block renderer can do it too.

Statistics of the training data live in buffers (`loudness_mean`, `loudness_std`, `pitch_mean_midi`,
`pitch_std_midi`, the loudness quantiles), so they travel inside every checkpoint and pack: the transfer
controls (`--loudness_stats`, the plot's mean pitch) read them from the model, never from the data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Sequence

import torch
from torch import nn

from modules.ddsp.chain import SignalChain
from modules.ddsp_estimator import ControlEstimator

N_QUANTILES = 101
PITCH_REFERENCE_MIDI = 69.0  # A4: the pitch feature is (midi - 69) / 24, about [-1, 1] over the singing range
PITCH_FEATURE_SPAN = 24.0


class DDSPSingerOutput(NamedTuple):
    audio: torch.Tensor  # [B, 1, T * hop] the chain's output
    signals: dict[str, torch.Tensor]  # every chain component's waveform [B, 1, T * hop]
    f0_synth: torch.Tensor  # [B, T] the F0 the oscillator sang (held through unvoiced frames)


@dataclass(frozen=True)
class DDSPSingerConfig:
    """`DDSPSinger`'s constructor arguments, one to one (the YAML `model:` section plus the derived rates).

    synth: the signal chain, a list of `{name, kind, inputs, args}` (see `modules.ddsp.chain`).
    """

    sample_rate: int = 16000
    hop_size: int = 160
    synth: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    hidden_size: int = 256
    mlp_layers: int = 2
    gru_layers: int = 1
    n_speakers: int = 1
    speaker_channels: int = 16


def midi_from_hz(f0_hz: torch.Tensor) -> torch.Tensor:
    """Hz (> 0) -> fractional MIDI number (torch twin of `preprocessor.audio.hz_to_midi`, which is numpy)."""
    return 69.0 + 12.0 * torch.log2(f0_hz.clamp(min=1e-3) / 440.0)


def hz_from_midi(midi: torch.Tensor) -> torch.Tensor:
    return 440.0 * torch.pow(2.0, (midi - 69.0) / 12.0)


def hold_voiced_f0(f0_hz: torch.Tensor, initial_hz: torch.Tensor) -> torch.Tensor:
    """`f0 [B, T]` (0 = unvoiced) -> every unvoiced frame carries the last voiced value; `initial_hz [B]` before the first."""
    batch, frames = f0_hz.shape
    positions = torch.arange(1, frames + 1, device=f0_hz.device).expand(batch, frames)
    last_voiced = torch.cummax(torch.where(f0_hz > 0, positions, torch.zeros_like(positions)), dim=1).values  # [B, T] 1-based, 0 = none yet
    extended = torch.cat([initial_hz.to(f0_hz.dtype).unsqueeze(1), f0_hz], dim=1)  # index 0 = the initial value
    return extended.gather(1, last_voiced)


class DDSPSinger(nn.Module):
    """`f0_hz, loudness_db [B, T]` (+ `speaker_id [B]`, `mask [B, 1, T]`) -> `DDSPSingerOutput` (see the module docstring).

    Args:
        sample_rate, hop_size: the audio rate and the frame hop (given to the chain).
        synth: the signal-chain spec (`modules.ddsp.chain`).
        hidden_size, mlp_layers, gru_layers: the estimator's size.
        n_speakers, speaker_channels: >1 speakers add a speaker embedding to the estimator's inputs.
    """

    def __init__(
        self,
        sample_rate: int,
        hop_size: int,
        synth: Sequence[dict[str, Any]],
        hidden_size: int = 256,
        mlp_layers: int = 2,
        gru_layers: int = 1,
        n_speakers: int = 1,
        speaker_channels: int = 16,
    ) -> None:
        super().__init__()
        self.config = DDSPSingerConfig(sample_rate, hop_size, tuple(dict(c) for c in synth), hidden_size, mlp_layers, gru_layers, n_speakers, speaker_channels)
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.synth = SignalChain(list(synth), sample_rate, hop_size)
        self.control_names = list(self.synth.control_channels())
        self.control_sizes = list(self.synth.control_channels().values())
        self.estimator = ControlEstimator(sum(self.control_sizes), hidden_size, mlp_layers, gru_layers, n_speakers, speaker_channels)
        # Training-data statistics (set by the task from the feature cache; saved in every checkpoint).
        self.register_buffer("loudness_mean", torch.tensor(-40.0))
        self.register_buffer("loudness_std", torch.tensor(20.0))
        self.register_buffer("pitch_mean_midi", torch.tensor(57.0))
        self.register_buffer("pitch_std_midi", torch.tensor(6.0))
        self.register_buffer("loudness_quantiles", torch.linspace(-100.0, 0.0, N_QUANTILES))
        self.register_buffer("voiced_loudness_quantiles", torch.linspace(-100.0, 0.0, N_QUANTILES))

    @classmethod
    def from_config(cls, config: DDSPSingerConfig) -> DDSPSinger:
        return cls(
            config.sample_rate, config.hop_size, list(config.synth), config.hidden_size, config.mlp_layers, config.gru_layers,
            config.n_speakers, config.speaker_channels,
        )  # fmt: skip

    def set_statistics(self, stats: dict[str, Any]) -> None:
        """Copy the feature cache's `stats.json` values into the buffers."""
        for name in ("loudness_mean", "loudness_std", "pitch_mean_midi", "pitch_std_midi"):
            getattr(self, name).fill_(float(stats[name]))
        for name in ("loudness_quantiles", "voiced_loudness_quantiles"):
            values = torch.tensor(stats[name], dtype=torch.float32)
            if values.shape != (N_QUANTILES,):
                raise ValueError(f"stats {name}: expected {N_QUANTILES} quantiles, got {tuple(values.shape)}")
            getattr(self, name).copy_(values)

    def statistics(self) -> dict[str, Any]:
        """The buffers as plain numbers (what `set_statistics` takes)."""
        scalars = {name: float(getattr(self, name)) for name in ("loudness_mean", "loudness_std", "pitch_mean_midi", "pitch_std_midi")}
        return {**scalars, **{name: getattr(self, name).tolist() for name in ("loudness_quantiles", "voiced_loudness_quantiles")}}

    def initial_f0(self, batch_size: int) -> torch.Tensor:
        """`[B]` the F0 sung before the first voiced frame: the training data's mean pitch."""
        return hz_from_midi(self.pitch_mean_midi).expand(batch_size)

    def estimator_inputs(self, f0_synth: torch.Tensor, voiced: torch.Tensor, loudness_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised `pitch, voiced, loudness [B, T]` for the estimator."""
        pitch = (midi_from_hz(f0_synth) - PITCH_REFERENCE_MIDI) / PITCH_FEATURE_SPAN
        loudness = (loudness_db - self.loudness_mean) / self.loudness_std
        return pitch, voiced.to(loudness.dtype), loudness

    def split_controls(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw estimator output `[B, sum(C), T]` -> `{control name: [B, C, T]}` in the chain's order."""
        return dict(zip(self.control_names, raw.split(self.control_sizes, dim=1)))

    def forward(
        self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, speaker_id: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None
    ) -> DDSPSingerOutput:
        """`f0_hz [B, T]` (0 = unvoiced), `loudness_db [B, T]`, `speaker_id [B]`, `mask [B, 1, T]` -> `DDSPSingerOutput`."""
        if f0_hz.shape != loudness_db.shape or f0_hz.dim() != 2:
            raise ValueError(f"need f0_hz and loudness_db [B, T] of one shape; got {tuple(f0_hz.shape)} and {tuple(loudness_db.shape)}")
        voiced = f0_hz > 0
        f0_synth = hold_voiced_f0(f0_hz.float(), self.initial_f0(f0_hz.size(0)))
        pitch, voicing, loudness = self.estimator_inputs(f0_synth, voiced, loudness_db.float())
        raw = self.estimator(pitch, voicing, loudness, speaker_id).controls
        out = self.synth(self.split_controls(raw), f0_synth, mask)
        return DDSPSingerOutput(out.audio, out.signals, f0_synth)
