"""Length regulator: repeat each phoneme's vector for its frames, via a hard alignment path.

VISinger for Korean has no duration predictor: the frames of every phoneme come from the notes
by the frame rule (`preprocessor/text/frame_rule.py`), both in training and at inference. The path
matrix is built from cumulative sums, so the expansion is one batched matmul, differentiable with
respect to the phoneme features, and exact for padded phonemes (0 frames -> no columns).
"""
from __future__ import annotations

import torch


def alignment_path(phone_frames: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Hard monotonic alignment `[B, P, T]`: 1 where frame `t` belongs to phoneme `p`.

    Args:
        phone_frames: `[B, P]` non-negative frame counts (0 on padded phonemes).
        n_frames: `T`; defaults to the longest item's total. Must be at least every item's total.
    """
    if phone_frames.dim() != 2:
        raise ValueError(f"phone_frames must be [B, P], got shape {tuple(phone_frames.shape)}")
    # An exported graph cannot branch on values: there the caller passes n_frames, and the checks
    # (which read the data) stay in eager code.
    tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if not tracing and bool((phone_frames < 0).any()):
        raise ValueError("phone_frames must be non-negative")
    phone_frames = phone_frames.long()
    ends = torch.cumsum(phone_frames, dim=1)  # [B, P] exclusive end frame of each phoneme
    starts = ends - phone_frames  # [B, P]
    if n_frames is None or not tracing:
        totals = ends[:, -1] if phone_frames.size(1) > 0 else torch.zeros_like(phone_frames[:, 0])
        longest = int(totals.max()) if totals.numel() > 0 else 0
        if n_frames is None:
            n_frames = longest
        elif n_frames < longest:
            raise ValueError(f"n_frames={n_frames} is shorter than the longest item ({longest} frames)")
    frames = torch.arange(n_frames, device=phone_frames.device).view(1, 1, n_frames)  # [1, 1, T]
    path = (frames >= starts.unsqueeze(-1)) & (frames < ends.unsqueeze(-1))  # [B, P, T]
    return path


def expand_to_frames(x: torch.Tensor, phone_frames: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Expand phoneme-level `x [B, C, P]` to frame level `[B, C, T]` (zeros past each item's total).

    Args:
        x: `[B, C, P]` phoneme features.
        phone_frames: `[B, P]` frames per phoneme.
        n_frames: `T` (see `alignment_path`).
    """
    path = alignment_path(phone_frames, n_frames).to(x.dtype)  # [B, P, T]
    return torch.bmm(x, path)  # [B, C, P] @ [B, P, T] -> [B, C, T]
