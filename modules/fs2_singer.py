"""FastSpeech 2-style acoustic model for singing: score -> log-mel, the first stage of the two-stage baseline.

    score ─ ScoreEncoder ─ expand_to_frames(phone_frames) ─ h ─ F0Predictor ─▶ log-F0, uv logit
                                                             h += pitch_embedding(F0)      (true F0 while training, predicted at inference)
                                                             h ─ VariancePredictor ─▶ energy (dB)
                                                             h += energy_embedding(energy) (true energy while training, predicted at inference)
                                                             h ─ FFTEncoder (mel decoder) ─ Conv1d ─▶ log-mel [B, n_mels, T]

The score encoder, length regulator and F0 predictor are VISinger's own classes (modules/score_encoder.py,
modules/length_regulator.py, modules/frame_prior.py), so the two systems read the score identically
and differ only in what follows: a mel decoder + a separately trained HiFi-GAN here, a VAE with a flow
and a jointly trained waveform decoder in VISinger. As in VISinger for Korean, phoneme durations come
from the notes by the frame rule: there is no duration predictor.

Pitch and energy enter as continuous values through a small convolution (FastPitch) rather than
FastSpeech 2's quantised bins: no bin edges to choose, and a predicted value between two bins is
encoded as faithfully as a true one. F0 is encoded by `f0_condition` (octaves from A4 and a voiced
flag, as VISinger's prior); energy (RMS in dB, the binary dataset's `energy`) enters as dB / 20 =
log10 RMS, which is also the scale the predictor works in, so its L1 loss is of order 1.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from modules.attentions import ChannelLayerNorm, FFTEncoder
from modules.frame_prior import F0Predictor, f0_condition, predicted_f0_hz
from modules.length_regulator import expand_to_frames
from modules.masks import length_mask
from modules.score_encoder import ScoreEncoder
from modules.speaker_embedding import speaker_vectors

ENERGY_DB_PER_UNIT = 20.0  # energy in dB / 20 = log10 of the RMS: the predictor's and the embedding's scale


@dataclass(frozen=True)
class FS2SingerConfig:
    """The acoustic model's constructor arguments, one to one (built from `model:`; checkpoints rebuild it).

    Sizes default to FastSpeech 2 (256 wide, 4 + 4 FFT blocks, 1024 filter, variance predictors of
    256 filters with kernel 3 and dropout 0.5). FastSpeech 2's feed-forward convolutions have kernels
    (9, 1); `FFTEncoder` uses one kernel for both, and 5 gives the same receptive field (9 frames) and
    the same weights per block (2 * 5 = 9 + 1 taps).
    """

    n_phones: int
    n_mels: int = 128
    hidden_channels: int = 256
    filter_channels: int = 1024
    n_heads: int = 2
    encoder_n_layers: int = 4
    decoder_n_layers: int = 4
    kernel_size: int = 5
    dropout: float = 0.1
    window_size: int = 4
    f0_predictor_n_layers: int = 2
    rest_pitch: float = 60.0
    variance_filter_channels: int = 256
    variance_kernel_size: int = 3
    variance_dropout: float = 0.5
    embedding_kernel_size: int = 3
    n_speakers: int = 1

    def __post_init__(self) -> None:
        # ValueError: config_section turns it into a one-line UserInputError naming the section.
        if self.n_phones < 2:
            raise ValueError(f"n_phones must count <pad> and at least one phoneme, got {self.n_phones}")
        if self.n_speakers < 1:
            raise ValueError(f"n_speakers must be >= 1, got {self.n_speakers}")
        for name in ("variance_kernel_size", "embedding_kernel_size", "kernel_size"):
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd (same-length convolutions), got {getattr(self, name)}")
        if self.hidden_channels % self.n_heads != 0:
            raise ValueError(f"hidden_channels ({self.hidden_channels}) must be divisible by n_heads ({self.n_heads})")


class VariancePredictor(nn.Module):
    """FastSpeech 2's variance predictor: two (conv, ReLU, LayerNorm, dropout) layers, then a 1x1 projection.

    Args:
        in_channels: width of `h`.
        filter_channels: width of the two convolutions.
        kernel_size: their (odd) kernel.
        dropout: after each layer.
    """

    def __init__(self, in_channels: int, filter_channels: int = 256, kernel_size: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2),
                nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2),
            ]
        )
        self.norms = nn.ModuleList(ChannelLayerNorm(filter_channels) for _ in self.convs)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`h [B, H, T]`, `mask [B, 1, T]` -> `[B, T]` (zero on padding)."""
        x = h
        for conv, norm in zip(self.convs, self.norms):
            x = self.dropout(norm(torch.relu(conv(x * mask))))
        return (self.projection(x * mask) * mask).squeeze(1)


class FS2SingerOutput(NamedTuple):
    """Frame-level outputs; `T` = the batch's frames, everything zero past each item's length."""

    mel: torch.Tensor  # [B, n_mels, T] predicted natural-log mel
    log_f0: torch.Tensor  # [B, T] predicted natural-log F0 in Hz (meaningful on voiced frames)
    uv_logit: torch.Tensor  # [B, T] logit of P(unvoiced) (target: the batch's `uv`)
    energy_db: torch.Tensor  # [B, T] predicted RMS energy in dB (target: the batch's `energy`)
    f0_hz: torch.Tensor  # [B, T] the F0 the decoder was conditioned on (true or predicted; 0 = unvoiced)
    frame_mask: torch.Tensor  # [B, 1, T]


class FS2Singer(nn.Module):
    """Score -> log-mel. Arguments mirror `FS2SingerConfig` field by field (see there)."""

    def __init__(
        self,
        n_phones: int,
        n_mels: int = 128,
        hidden_channels: int = 256,
        filter_channels: int = 1024,
        n_heads: int = 2,
        encoder_n_layers: int = 4,
        decoder_n_layers: int = 4,
        kernel_size: int = 5,
        dropout: float = 0.1,
        window_size: int = 4,
        f0_predictor_n_layers: int = 2,
        rest_pitch: float = 60.0,
        variance_filter_channels: int = 256,
        variance_kernel_size: int = 3,
        variance_dropout: float = 0.5,
        embedding_kernel_size: int = 3,
        n_speakers: int = 1,
    ) -> None:
        super().__init__()
        # Validates the arguments and is what checkpoints and packs store to rebuild the model.
        self.config = FS2SingerConfig(
            n_phones=n_phones, n_mels=n_mels, hidden_channels=hidden_channels, filter_channels=filter_channels,
            n_heads=n_heads, encoder_n_layers=encoder_n_layers, decoder_n_layers=decoder_n_layers,
            kernel_size=kernel_size, dropout=dropout, window_size=window_size,
            f0_predictor_n_layers=f0_predictor_n_layers, rest_pitch=rest_pitch,
            variance_filter_channels=variance_filter_channels, variance_kernel_size=variance_kernel_size,
            variance_dropout=variance_dropout, embedding_kernel_size=embedding_kernel_size, n_speakers=n_speakers,
        )  # fmt: skip
        blocks = dict(filter_channels=filter_channels, n_heads=n_heads, kernel_size=kernel_size, dropout=dropout, window_size=window_size)
        self.score_encoder = ScoreEncoder(n_phones, hidden_channels, n_layers=encoder_n_layers, **blocks)
        self.speaker_embedding = nn.Embedding(n_speakers, hidden_channels) if n_speakers > 1 else None
        self.f0_predictor = F0Predictor(hidden_channels, n_layers=f0_predictor_n_layers, rest_pitch=rest_pitch, **blocks)
        pad = embedding_kernel_size // 2
        self.pitch_embedding = nn.Conv1d(2, hidden_channels, embedding_kernel_size, padding=pad)  # f0_condition channels -> H
        self.energy_predictor = VariancePredictor(hidden_channels, variance_filter_channels, variance_kernel_size, variance_dropout)
        self.energy_embedding = nn.Conv1d(1, hidden_channels, embedding_kernel_size, padding=pad)
        self.mel_decoder = FFTEncoder(hidden_channels, filter_channels, n_heads, decoder_n_layers, kernel_size, dropout, window_size)
        self.mel_projection = nn.Conv1d(hidden_channels, n_mels, 1)

    @classmethod
    def from_config(cls, config: FS2SingerConfig) -> FS2Singer:
        return cls(**dataclasses.asdict(config))

    def forward(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        f0: torch.Tensor | None = None,
        energy: torch.Tensor | None = None,
        speaker_id: torch.Tensor | None = None,
        n_frames: int | None = None,
    ) -> FS2SingerOutput:
        """Score -> mel; conditioned on the true contours when given (training), else on the predicted ones.

        Args:
            phone_ids, note_pitch, note_dur, slur, phone_frames: `[B, P]` score per phoneme.
            phone_lengths: `[B]`.
            f0: `[B, T]` F0 in Hz (0 = unvoiced) to condition on, or None for the prediction.
            energy: `[B, T]` RMS energy in dB to condition on, or None for the prediction.
            speaker_id: `[B]` ids, `[B, n_speakers]` mix weights, or None (ignored by a single-speaker model).
            n_frames: `T`; defaults to the longest item's `phone_frames` total (that of `f0` when given).
        """
        frame_lengths = phone_frames.long().sum(1)  # [B]
        if n_frames is None:
            n_frames = f0.size(1) if f0 is not None else int(frame_lengths.max())
        for name, contour in (("f0", f0), ("energy", energy)):
            if contour is not None and contour.shape != (phone_ids.size(0), n_frames):
                raise ValueError(f"{name} must be [B, T] = {(phone_ids.size(0), n_frames)}, got {tuple(contour.shape)}")
        encoded = self.score_encoder(phone_ids, note_pitch, note_dur, slur, phone_lengths)
        hidden = encoded.hidden  # [B, H, P]
        if self.speaker_embedding is not None:
            if speaker_id is None:
                raise ValueError(f"this model has {self.config.n_speakers} speakers; pass speaker_id [B]")
            hidden = (hidden + speaker_vectors(self.speaker_embedding, speaker_id).unsqueeze(-1)) * encoded.mask
        frame_mask = length_mask(frame_lengths, n_frames, hidden.dtype)  # [B, 1, T]
        h = expand_to_frames(hidden, phone_frames, n_frames)  # [B, H, P] -> [B, H, T]
        pitch_frames = expand_to_frames(note_pitch.float().unsqueeze(1), phone_frames, n_frames).squeeze(1)  # [B, T] MIDI

        f0_prediction = self.f0_predictor(h, pitch_frames, frame_mask)
        f0_hz = predicted_f0_hz(f0_prediction.log_f0, f0_prediction.uv_logit) if f0 is None else f0
        f0_hz = f0_hz * frame_mask.squeeze(1)
        h = h + self.pitch_embedding(f0_condition(f0_hz)) * frame_mask  # [B, 2, T] -> [B, H, T]

        energy_db = self.energy_predictor(h, frame_mask) * ENERGY_DB_PER_UNIT  # [B, T]
        energy_in = energy_db if energy is None else energy.to(h.dtype)
        h = h + self.energy_embedding((energy_in / ENERGY_DB_PER_UNIT * frame_mask.squeeze(1)).unsqueeze(1)) * frame_mask

        mel = self.mel_projection(self.mel_decoder(h, frame_mask)) * frame_mask  # [B, n_mels, T]
        return FS2SingerOutput(mel, f0_prediction.log_f0, f0_prediction.uv_logit, energy_db, f0_hz, frame_mask)

    @torch.no_grad()
    def infer(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
    ) -> FS2SingerOutput:
        """Score -> mel with the predicted F0 (unless `f0 [B, T]` in Hz is given) and the predicted energy.

        `T = max(phone_frames.sum(1))`. Call `.eval()` first to turn dropout off.
        """
        n_frames = int(phone_frames.long().sum(1).max())
        return self.forward(phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, f0=f0, speaker_id=speaker_id, n_frames=n_frames)
