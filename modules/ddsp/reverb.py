"""Learnt impulse-response reverb (DDSP; Engel et al. 2020): the room is one trainable FIR filter.

`out = dry + dry ⊛ ir` (with `add_dry`), computed by FFT convolution and cut to the input length,
so the output has exactly `T * hop` samples and the tail past the end is dropped. The IR is causal
and its first tap is held at 0 when the dry signal is added (DDSP's `_mask_dry_ir`), so the
direct sound is the dry path alone.

    audio [B, 1, S] ─ mask ─┬────────────────────────┐
                            └─ ⊛ ir [ir_length] ─────┴─▶ + ─ mask ─▶ [B, 1, S]

Init: Gaussian noise under an exponential decay (`initial_decay_s`), scaled to `initial_gain`, a
quiet short room the training can grow or silence.
"""
from __future__ import annotations

import torch
from torch import nn

from modules.ddsp.core import apply_mask, fft_convolve, sample_mask


class LearntReverb(nn.Module):
    """Signal-chain processor: `audio [B, 1, T * hop]` -> reverberated `[B, 1, T * hop]`.

    Args:
        sample_rate: rate in Hz (sets the initial decay in samples).
        hop_size: samples per frame (turns the frame mask into a sample mask).
        ir_length: taps of the learnt impulse response (e.g. 0.1-1 s of samples).
        add_dry: output dry + wet (first tap fixed at 0) rather than the wet signal alone.
        initial_gain: peak of the initial IR.
        initial_decay_s: time constant of the initial IR's exponential decay.
    """

    PORTS = {"audio": "audio"}

    def __init__(
        self, sample_rate: int, hop_size: int, ir_length: int = 4800, add_dry: bool = True, initial_gain: float = 0.01, initial_decay_s: float = 0.05
    ) -> None:
        super().__init__()
        if ir_length < 2 or sample_rate <= 0 or hop_size <= 0 or initial_decay_s <= 0:
            raise ValueError(
                f"need ir_length >= 2, sample_rate > 0, hop_size > 0 and initial_decay_s > 0; got {ir_length}, {sample_rate}, {hop_size}, {initial_decay_s}"
            )
        self.hop_size = hop_size
        self.add_dry = add_dry
        generator = torch.Generator().manual_seed(0)  # a reproducible initial room, independent of the global seed
        decay = torch.exp(-torch.arange(ir_length, dtype=torch.float32) / (initial_decay_s * sample_rate))
        self.ir = nn.Parameter(torch.randn(ir_length, generator=generator) * decay * initial_gain)

    def frame_channels(self) -> dict[str, int]:
        return {}

    def impulse_response(self) -> torch.Tensor:
        """The IR as applied `[ir_length]`: with `add_dry` the first tap is 0 (the dry path is the direct sound)."""
        if not self.add_dry:
            return self.ir
        return torch.cat([self.ir.new_zeros(1), self.ir[1:]])

    def context_samples(self) -> int:
        """Samples before an output sample that can change it (the room's length; it hears nothing ahead)."""
        return int(self.ir.numel())

    def forward(self, audio: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`audio [B, 1, S]`, frame `mask [B, 1, T]` (S = T * hop) -> `[B, 1, S]`, zero past the mask."""
        samples = sample_mask(mask, self.hop_size)
        dry = apply_mask(audio, samples)
        wet = fft_convolve(dry, self.impulse_response())
        return apply_mask(dry + wet if self.add_dry else wet, samples)
