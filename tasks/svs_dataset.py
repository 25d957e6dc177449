"""Singing items from the binary store as torch tensors, and their padded batches.

The store keeps mels time-major (`[T, n_mels]`); batches are channel-first (`[B, n_mels, T]`) as
every module expects. This is the one place that transposes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from config.errors import UserInputError
from modules.score_inputs import ScoreInputs
from preprocessor.binary_dataset import BinaryDataset
from preprocessor.text.phone_set import read_phone_set

PHONE_FIELDS = ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames")
FRAME_FIELDS = ("f0", "uv", "energy")
OPTIONAL_FRAME_FIELDS = ("breathiness",)  # float32 [T] dB, present when the dataset was binarized with them


class SingingDataset(Dataset):
    """One split of a binarized singing dataset.

    Items are dicts of tensors: `phone_ids`, `note_pitch`, `note_dur`, `slur`, `phone_frames` [P];
    `mel` [n_mels, T]; `f0`, `uv`, `energy` [T]; `wav` [S] float in [-1, 1]; `speaker_id` [];
    `name` str. `lengths` (frames per item) feeds the bucketing sampler.
    """

    def __init__(self, binary_dir: Path | str, split: str, max_items: int | None = None):
        self.store = BinaryDataset(Path(binary_dir) / split)
        self.split = split
        count = len(self.store) if max_items is None else min(max_items, len(self.store))
        self.indices = list(range(count))
        self.lengths = [self.store.lengths[i] for i in self.indices]
        self.sample_rate = int(self.store.attributes["sample_rate"])
        self.hop_size = int(self.store.attributes["hop_size"])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self.store[self.indices[index]]
        item: dict[str, Any] = {field: torch.from_numpy(raw[field].astype(np.int64)) for field in PHONE_FIELDS if field != "note_dur"}
        item["note_dur"] = torch.from_numpy(raw["note_dur"].astype(np.float32))
        item["mel"] = torch.from_numpy(np.ascontiguousarray(raw["mel"].T))  # [T, n_mels] on disk -> [n_mels, T]
        item["f0"] = torch.from_numpy(raw["f0"])
        item["uv"] = torch.from_numpy(raw["uv"].astype(np.float32))
        item["energy"] = torch.from_numpy(raw["energy"])
        for field in OPTIONAL_FRAME_FIELDS:
            if field in raw:
                item[field] = torch.from_numpy(np.asarray(raw[field], dtype=np.float32))
        item["wav"] = torch.from_numpy(raw["wav"].astype(np.float32) / 32768.0)
        item["speaker_id"] = torch.tensor(int(raw["speaker_id"]))
        item["name"] = raw["name"]
        return item


def _pad_stack(tensors: list[torch.Tensor], length: int) -> torch.Tensor:
    """Right-pad the last axis with zeros to `length` and stack: [B, ..., length]."""
    out = tensors[0].new_zeros((len(tensors), *tensors[0].shape[:-1], length))
    for row, tensor in enumerate(tensors):
        out[row, ..., : tensor.shape[-1]] = tensor
    return out


def collate_singing(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of items into a batch.

    Returns `phone_* / note_* / slur` [B, P], `phone_lengths` [B], `mel` [B, n_mels, T],
    `f0`, `uv`, `energy` (and `breathiness` when every item has it) [B, T], `frame_lengths` [B], `wav` [B, 1, S], `speaker_id` [B], `names`, and
    `score`: the six score fields as one `modules.score_inputs.ScoreInputs` (what the models take).
    """
    if not items:
        raise UserInputError("empty batch: the dataset split has no items; check the binary dataset")
    phone_lengths = torch.tensor([item["phone_ids"].shape[0] for item in items])
    frame_lengths = torch.tensor([item["mel"].shape[-1] for item in items])
    max_phones, max_frames = int(phone_lengths.max()), int(frame_lengths.max())
    hop = items[0]["wav"].shape[0] // max(items[0]["mel"].shape[-1], 1)
    batch: dict[str, Any] = {field: _pad_stack([item[field] for item in items], max_phones) for field in PHONE_FIELDS}
    batch["mel"] = _pad_stack([item["mel"] for item in items], max_frames)
    for field in FRAME_FIELDS:
        batch[field] = _pad_stack([item[field] for item in items], max_frames)
    for field in OPTIONAL_FRAME_FIELDS:
        if all(field in item for item in items):
            batch[field] = _pad_stack([item[field] for item in items], max_frames)
    batch["wav"] = _pad_stack([item["wav"] for item in items], max_frames * hop).unsqueeze(1)
    batch["phone_lengths"] = phone_lengths
    batch["frame_lengths"] = frame_lengths
    batch["speaker_id"] = torch.stack([item["speaker_id"] for item in items])
    batch["names"] = [item["name"] for item in items]
    # The score as the models read it, built once (the same tensors as the per-field keys above).
    batch["score"] = ScoreInputs(*(batch[field] for field in ScoreInputs._fields))
    return batch


def open_singing_split(
    binary_dir: Path | str, split: str, sample_rate: int, hop_size: int, max_items: int | None = None, n_speakers: int | None = None
) -> SingingDataset:
    """A split as every singing task trains on it (VISinger and the baselines): `collate_fn` set to
    `collate_singing`, after checking the phone set and that the data was binarized at the config's
    sample rate and hop (a mismatch is a `UserInputError`, not silent garbage); with `n_speakers` (a
    model with a speaker table), that the dataset's speakers fit it (`check_speakers`)."""
    binary_dir = Path(binary_dir)
    read_phone_set(binary_dir / "phone_set.json")  # a dataset binarized with another phone set is an error, not silent garbage
    dataset = SingingDataset(binary_dir, split, max_items=max_items)
    if dataset.sample_rate != sample_rate or dataset.hop_size != hop_size:
        raise UserInputError(
            f"{binary_dir / split}: binarized at {dataset.sample_rate} Hz / hop {dataset.hop_size}, the config says "
            f"{sample_rate} Hz / hop {hop_size}; re-binarize or use the matching config"
        )
    if n_speakers is not None:
        check_speakers(dataset, n_speakers)
    dataset.collate_fn = collate_singing  # type: ignore[attr-defined]
    return dataset


def check_speakers(dataset: SingingDataset, n_speakers: int) -> None:
    """The dataset's speakers (binarize's sorted names, id order) must fit the model's speaker table: a
    multi-speaker dataset needs `model.n_speakers` equal to its count (a one-speaker model would ignore the
    ids and average the voices)."""
    speakers = list(dataset.store.attributes.get("speakers") or [])
    if len(speakers) > 1 and len(speakers) != n_speakers:
        raise UserInputError(
            f"{dataset.store.split_dir}: {len(speakers)} speakers ({', '.join(speakers)}) but model.n_speakers is {n_speakers}; "
            f"set model.n_speakers={len(speakers)} (and model.gin_channels > 0 for VISinger)"
        )
