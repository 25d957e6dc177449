"""Score encoder: phonemes + note pitch + note duration + slur flag -> phoneme-level hidden states.

The four inputs are embedded to the same width and summed (VISinger's "musical score encoder"),
then a relative-position FFT encoder mixes them across the phoneme sequence.

Note duration is continuous (frames, float) and spans two orders of magnitude, so it enters through
`Linear(1, hidden)` on `log1p(frames)`: no bucket boundaries to pick, and a note twice as long moves
the input by a constant step whatever its length.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from modules.attentions import FFTEncoder
from modules.masks import length_mask

N_MIDI_PITCHES = 128  # MIDI 0..127; 0 is a rest in this repository's scores
SCORE_EMBEDDINGS = ("table", "shared")


class ScoreEncoderOutput(NamedTuple):
    hidden: torch.Tensor  # [B, H, P] encoded phonemes (zero on padding)
    mask: torch.Tensor  # [B, 1, P] 1 on valid phonemes


class ScoreEncoder(nn.Module):
    """Embeds the score per phoneme and encodes it with `n_layers` FFT blocks.

    Args:
        n_phones: size of the phoneme vocabulary (index 0 = `<pad>`).
        hidden_channels: embedding and attention width.
        filter_channels: inner width of the conv feed-forward.
        n_heads: attention heads.
        n_layers: FFT blocks.
        kernel_size: kernel of the feed-forward convs.
        dropout: dropout inside the blocks.
        window_size: relative-attention window (distances beyond it are clipped).
        embedding: how phonemes and pitches are embedded. ``table`` (the paper's): one random
            embedding per phoneme and per MIDI pitch; a phoneme or pitch the training data never had
            keeps its random vector, which the networks after it have never seen (a sung score of
            another song then gets arbitrary F0 deviations at its unseen onsets: docs/BENCHMARKS.md).
            ``shared``: a phoneme is the embedding of its class (`phone_classes`) plus its own,
            zero-initialised one; a pitch is a learnt linear function of the pitch (in octaves from
            A4) plus its own zero-initialised embedding. What was never trained is then the trained
            class or the trained pitch line, not noise.
        phone_classes: with ``shared``, the class of every phoneme id (e.g. 0 pad, 1 rest/breath,
            2 onset, 3 nucleus, 4 coda); length `n_phones`.
    """

    def __init__(
        self,
        n_phones: int,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        n_heads: int = 2,
        n_layers: int = 6,
        kernel_size: int = 9,
        dropout: float = 0.1,
        window_size: int | None = 4,
        embedding: str = "table",
        phone_classes: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if embedding not in SCORE_EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(SCORE_EMBEDDINGS)}, got {embedding!r}")
        if embedding == "shared" and len(phone_classes) != n_phones:
            raise ValueError(f"embedding 'shared' needs the class of each of the {n_phones} phonemes, got {len(phone_classes)}")
        self.hidden_channels = hidden_channels
        self.phone_embedding = nn.Embedding(n_phones, hidden_channels, padding_idx=0)
        self.pitch_embedding = nn.Embedding(N_MIDI_PITCHES, hidden_channels)
        self.slur_embedding = nn.Embedding(2, hidden_channels)
        self.duration_projection = nn.Linear(1, hidden_channels)
        for embedding_table in (self.phone_embedding, self.pitch_embedding, self.slur_embedding):
            # Unit-variance after the sqrt(hidden) scale below, as VITS's text encoder.
            nn.init.normal_(embedding_table.weight, 0.0, hidden_channels**-0.5)
        with torch.no_grad():
            self.phone_embedding.weight[0].zero_()
        self.class_embedding = self.pitch_projection = None
        if embedding == "shared":
            self.register_buffer("phone_classes", torch.tensor(phone_classes, dtype=torch.long), persistent=False)
            self.class_embedding = nn.Embedding(max(phone_classes) + 1, hidden_channels)
            nn.init.normal_(self.class_embedding.weight, 0.0, hidden_channels**-0.5)
            self.pitch_projection = nn.Linear(1, hidden_channels)  # octaves from A4 (rests: 0) -> hidden
            with torch.no_grad():
                self.phone_embedding.weight.zero_()
                self.pitch_embedding.weight.zero_()
        self.encoder = FFTEncoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, dropout, window_size)

    def forward(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_lengths: torch.Tensor,
    ) -> ScoreEncoderOutput:
        """Encode the score.

        Args:
            phone_ids: `[B, P]` phoneme ids.
            note_pitch: `[B, P]` MIDI pitch of each phoneme's note (0 = rest).
            note_dur: `[B, P]` duration of each phoneme's note in frames.
            slur: `[B, P]` 1 where the phoneme continues a melisma.
            phone_lengths: `[B]` valid phonemes per item.
        """
        scale = self.hidden_channels**0.5
        x = (
            self.phone_embedding(phone_ids.long())
            + self.pitch_embedding(note_pitch.long())
            + self.slur_embedding(slur.long())
        ) * scale  # [B, P, H]
        if self.class_embedding is not None:
            x = x + self.class_embedding(self.phone_classes[phone_ids.long()]) * scale
            octaves = torch.where(note_pitch > 0, (note_pitch.float() - 69.0) / 12.0, torch.zeros_like(note_pitch, dtype=torch.float))
            x = x + self.pitch_projection(octaves.unsqueeze(-1))
        x = x + self.duration_projection(torch.log1p(note_dur.float().clamp(min=0)).unsqueeze(-1))  # [B, P, H]
        x = x.transpose(1, 2)  # [B, P, H] -> [B, H, P]
        mask = length_mask(phone_lengths, x.size(2), x.dtype)  # [B, 1, P]
        return ScoreEncoderOutput(self.encoder(x * mask, mask), mask)
