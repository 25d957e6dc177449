"""Expressive controls for VISinger: DiffSinger's variance parameters energy and breathiness, per frame.

Both are levels in dB (energy: RMS of the whole signal; breathiness: RMS of its aperiodic part, see
`preprocessor.variance`). `VarianceHeads` predicts them from the frame-level score encoding `h`
(one FastSpeech 2 variance predictor each, `modules.fs2_singer.VariancePredictor`); the frame prior
reads them (the true curves while training, the predicted ones at inference, plus any offset or
curve the user gives), so changing them changes the prior and hence the audio (by how much is learnt;
`inference.variance_matching` imposes the asked change on the rendered audio).

Scale: dB / 20 = log10 of the RMS (as the FS2 singer's energy), so the losses are of order 1 and
an offset of +3 dB is +0.15 on the prior's input. Levels are clamped to `DB_FLOOR` first: silence is
stored at -100 dB, far below anything sung, and would otherwise dominate the L1.
"""
from __future__ import annotations

import torch
from torch import nn

from modules.fs2_singer import VariancePredictor

VARIANCE_NAMES = ("energy", "breathiness")  # channel order of every [B, 2, T] variance tensor
DB_PER_UNIT = 20.0
DB_FLOOR = -80.0


def variance_units(db: torch.Tensor) -> torch.Tensor:
    """dB (any shape) -> the heads' and the prior's scale: ``max(db, DB_FLOOR) / 20``."""
    return db.clamp(min=DB_FLOOR) / DB_PER_UNIT


def variance_l1(pred_db: torch.Tensor, target_db: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 in units (dB / 20) between `[B, C, T]` curves over the valid frames of `mask [B, 1, T]`, mean over channels."""
    mask = mask.to(pred_db.dtype)
    error = torch.abs(variance_units(pred_db) - variance_units(target_db)) * mask
    return error.sum() / (mask.sum() * pred_db.size(1)).clamp(min=1.0)


class VarianceHeads(nn.Module):
    """`h [B, H, T]` -> predicted energy and breathiness `[B, 2, T]` in dB (zero on padding).

    Args:
        hidden_channels: width of `h`.
        kernel_size: the predictors' (odd) convolution kernel.
        dropout: after each of their layers.
    """

    def __init__(self, hidden_channels: int, kernel_size: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.predictors = nn.ModuleList(VariancePredictor(hidden_channels, hidden_channels, kernel_size, dropout) for _ in VARIANCE_NAMES)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([predictor(h, mask) for predictor in self.predictors], dim=1) * DB_PER_UNIT * mask


def controlled_variance(predicted_db: torch.Tensor, given_db: torch.Tensor | None, offset_db: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """The curves to sing `[B, 2, T]` dB: `given_db` where it is not NaN, else the prediction, plus `offset_db [2]` (or `[B, 2]`)."""
    sung = predicted_db
    if given_db is not None:
        if given_db.shape != predicted_db.shape:
            raise ValueError(f"variance curves must be [B, 2, T] = {tuple(predicted_db.shape)}, got {tuple(given_db.shape)}")
        sung = torch.where(torch.isnan(given_db), predicted_db, given_db.to(predicted_db.dtype))
    if offset_db is not None:
        offset = offset_db.to(sung.dtype)
        sung = sung + (offset.view(1, -1, 1) if offset.dim() == 1 else offset.unsqueeze(-1))
    return sung * mask
