"""Speaker conditioning shared by the singers: one speaker by id, or a weighted mix of speakers.

`speaker_vectors(table, speaker)` looks speakers up in an `nn.Embedding` table: `speaker` is either
`[B]` integer ids, or `[B, n_speakers]` float weights (a mix: `sum_k w_k e_k`, the weighted sum of the
embeddings, as DiffSinger mixes its speakers). A one-hot weight row gives exactly the id's embedding
(the matmul adds exact zeros), so a mix of one speaker at weight 1 sings as that speaker does.
"""
from __future__ import annotations

import torch
from torch import nn


def speaker_vectors(table: nn.Embedding, speaker: torch.Tensor) -> torch.Tensor:
    """`[B]` ids or `[B, n_speakers]` mix weights -> `[B, C]` embeddings."""
    if speaker.dim() == 1:
        return table(speaker.long())
    if speaker.dim() == 2 and speaker.is_floating_point():
        if speaker.size(1) != table.num_embeddings:
            raise ValueError(f"speaker weights must be [B, {table.num_embeddings}], got {tuple(speaker.shape)}")
        return speaker.to(table.weight.dtype) @ table.weight  # [B, n_speakers] x [n_speakers, C]
    raise ValueError(f"speaker must be [B] ids or [B, n_speakers] float weights, got {tuple(speaker.shape)} {speaker.dtype}")
