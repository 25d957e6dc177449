"""Pieces of unprocessed singing (the DDSP singer's data) from the feature cache, and their padded batches.

Items: `wav [S]` float in [-1, 1], `f0 [T]` Hz (0 = unvoiced), `loudness [T]` dB, `speaker_id []`, `name`;
`S = T * hop_size`. Batches: `wav [B, 1, S]`, `f0`, `loudness [B, T]`, `frame_lengths [B]`,
`speaker_id [B]`, `names`; zero-padded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from config.errors import UserInputError
from preprocessor.audio_folder import open_piece_split


class AudioPieceDataset(Dataset):
    """One split (`train` / `valid`) of a feature cache built by `preprocessor.audio_folder.prepare_feature_cache`."""

    def __init__(self, cache_dir: Path | str, split: str, sample_rate: int, hop_size: int, max_items: int | None = None) -> None:
        self.store = open_piece_split(Path(cache_dir), split)
        stored_rate, stored_hop = int(self.store.attributes["sample_rate"]), int(self.store.attributes["hop_size"])
        if (stored_rate, stored_hop) != (sample_rate, hop_size):
            raise UserInputError(
                f"{Path(cache_dir) / split}: cached at {stored_rate} Hz / hop {stored_hop}, the config says {sample_rate} Hz / hop {hop_size}; "
                "delete the cache folder or use the matching config"
            )
        count = len(self.store) if max_items is None else min(max_items, len(self.store))
        self.indices = list(range(count))
        self.lengths = [self.store.lengths[i] for i in self.indices]
        self.hop_size = hop_size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self.store[self.indices[index]]
        return {
            "wav": torch.from_numpy(raw["wav"].astype(np.float32) / 32768.0),
            "f0": torch.from_numpy(raw["f0"]),
            "loudness": torch.from_numpy(raw["loudness"]),
            "speaker_id": torch.tensor(int(raw["speaker_id"])),
            "name": raw["name"],
        }

    def collate_fn(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise UserInputError("empty batch: the feature cache split has no pieces; check dataset.audio_dir")
        frame_lengths = torch.tensor([item["f0"].shape[0] for item in items])
        frames = int(frame_lengths.max())
        batch_size = len(items)
        f0 = torch.zeros(batch_size, frames)
        loudness = torch.zeros(batch_size, frames)
        wav = torch.zeros(batch_size, 1, frames * self.hop_size)
        for row, item in enumerate(items):
            n = item["f0"].shape[0]
            f0[row, :n] = item["f0"]
            loudness[row, :n] = item["loudness"]
            loudness[row, n:] = item["loudness"][-1]  # padding holds the last value (masked out anyway)
            wav[row, 0, : n * self.hop_size] = item["wav"]
        return {
            "wav": wav,
            "f0": f0,
            "loudness": loudness,
            "frame_lengths": frame_lengths,
            "speaker_id": torch.stack([item["speaker_id"] for item in items]),
            "names": [item["name"] for item in items],
        }
