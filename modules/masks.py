"""Masks from lengths and random training segments: the two small helpers every VISinger block shares.

Shapes follow the repository convention: features `[B, C, T]`, masks `[B, 1, T]` (float, 1 on valid
frames) so that `x * mask` zeroes the padding.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean mask `[B, T]`, True where `t < lengths[b]`.

    Args:
        lengths: `[B]` integer lengths.
        max_length: `T`; defaults to `lengths.max()` (0 for an empty batch).
    """
    if max_length is None:
        max_length = int(lengths.max()) if lengths.numel() > 0 else 0
    positions = torch.arange(max_length, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def length_mask(lengths: torch.Tensor, max_length: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`sequence_mask` as a float `[B, 1, T]` mask, the form every module multiplies by."""
    return sequence_mask(lengths, max_length).unsqueeze(1).to(dtype)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, segment_size: int) -> torch.Tensor:
    """Cut `x [B, C, T]` into `[B, C, segment_size]` windows beginning at `starts [B]`.

    Windows that run past `T` are filled with zeros (as padding would be), so an item shorter than
    the segment still yields a full-size window; its mask comes from `segment_mask`.
    """
    batch, channels, total = x.shape
    needed = int(starts.max()) + segment_size if batch > 0 else segment_size
    if needed > total:
        x = torch.nn.functional.pad(x, (0, needed - total))
    # index [B, C, segment_size]: start + offset for every channel
    offsets = torch.arange(segment_size, device=x.device)
    index = (starts.to(x.device).long().unsqueeze(1) + offsets.unsqueeze(0)).unsqueeze(1).expand(batch, channels, segment_size)
    return torch.gather(x, 2, index)


def segment_mask(lengths: torch.Tensor, starts: torch.Tensor, segment_size: int) -> torch.Tensor:
    """Float mask `[B, 1, segment_size]` of the window frames that lie inside `lengths`."""
    remaining = (lengths - starts).clamp(min=0, max=segment_size)
    return length_mask(remaining, segment_size)


class RandomSegments(NamedTuple):
    """Output of `rand_slice_segments`."""

    segments: torch.Tensor  # [B, C, segment_size]
    starts: torch.Tensor  # [B] first frame of each window (long)
    mask: torch.Tensor  # [B, 1, segment_size], 1 on frames inside the item


@torch.compiler.disable
def _uniform_on_cpu(batch: int, generator: torch.Generator | None) -> torch.Tensor:
    """`[batch]` uniform draws from the CPU generator (the same stream on CPU and GPU runs).

    Kept out of torch.compile graphs: under dynamic shapes the batch size is symbolic, and a draw
    from an explicit generator with a symbolic size cannot be traced.
    """
    return torch.rand(int(batch), generator=generator, device="cpu")


def rand_slice_segments(x: torch.Tensor, lengths: torch.Tensor, segment_size: int, generator: torch.Generator | None = None) -> RandomSegments:
    """Pick one random window of `segment_size` frames per item that stays inside its length.

    Items shorter than the window start at 0 and the rest of their window is padding (see the mask);
    VITS computes `rand * (length - size + 1)` and can produce a negative start in that case.

    Args:
        x: `[B, C, T]` features.
        lengths: `[B]` valid frames per item.
        segment_size: window length in frames.
        generator: optional random generator for reproducible windows.
    """
    if segment_size <= 0:
        raise ValueError(f"segment_size must be positive, got {segment_size}")
    n_starts = (lengths - segment_size + 1).clamp(min=1)  # number of admissible starts per item
    uniform = _uniform_on_cpu(lengths.shape[0], generator).to(lengths.device)
    starts = (uniform * n_starts).long().clamp(max=n_starts - 1)
    return RandomSegments(slice_segments(x, starts, segment_size), starts, segment_mask(lengths, starts, segment_size))
