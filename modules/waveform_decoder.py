"""The contract every waveform decoder keeps (VISinger's `model.decoder`: hifigan, nsf_hifigan, ddsp, istft).

    decode(z [B, C, T], mask [B, 1, T] | None, g [B, gin, 1] | None, f0 [B, T] | None,
           source_noise [B, 1, T * hop] | None, start_phase [B] | None) -> DecoderOutput
    forward(...) -> DecoderOutput.wav
    context_frames() -> int

- `wav [B, 1, T * hop]`, exactly one hop of samples per frame, zero past the mask; a padded batch
  gives each item the samples it gets alone (in eval mode, where noise is a fixed sequence).
- `f0` (Hz, 0 = unvoiced) is the pitch the decoder sings at when `uses_f0` (the recording's in
  training, the predicted one at inference); decoders that do not use it ignore it.
- `source_wav [B, 1, T * hop]` is an auxiliary waveform the task trains with its own loss (the
  harmonic excitation of `nsf_hifigan`, the DDSP synthesiser's output of `ddsp`); None otherwise.
- `source_noise` (standard normal, `uses_noise` decoders) replaces the noise the decoder draws (in eval
  mode the fixed sequence `modules.ddsp.core.white_noise`), and `start_phase` (float64 cycles, `uses_f0`
  decoders) is the harmonic phase before the first sample (default 0): an exported graph has no random
  generator, and a chunk of a longer render takes its slice of the noise and the phase the whole render
  has there (`inference.backends.decode_chunks`). Left None, the render is exactly the usual one.
- `context_frames()`: latent frames on each side of an output frame that can change it (a bound on
  the receptive field): a chunk decoded with that many extra frames on both sides, then dropped,
  equals the whole render up to float rounding (what streaming relies on).
- `remove_weight_norm()` folds weight norm for export (a no-op for decoders without it).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class DecoderOutput(NamedTuple):
    wav: torch.Tensor  # [B, 1, T * hop]
    source_wav: torch.Tensor | None  # [B, 1, T * hop] the waveform trained with its own loss; None if the decoder has none


class WaveformDecoder(nn.Module):
    """Base of the decoders: frames -> samples (see the module docstring for the contract)."""

    hop_size: int
    uses_f0: bool = False
    uses_noise: bool = False  # reads `source_noise`

    def decode(
        self,
        z: torch.Tensor,
        mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
    ) -> DecoderOutput:
        raise NotImplementedError

    def context_frames(self) -> int:
        raise NotImplementedError

    def forward(
        self, z: torch.Tensor, mask: torch.Tensor | None = None, g: torch.Tensor | None = None, f0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`z [B, C, T]`, optional `mask [B, 1, T]`, `g [B, gin, 1]`, `f0 [B, T]` -> `wav [B, 1, T * hop]`."""
        return self.decode(z, mask, g, f0).wav

    def check_f0(self, z: torch.Tensor, f0: torch.Tensor | None) -> None:
        """Raise `ValueError` unless a decoder that sings at the F0 got `f0 [B, T]` matching `z [B, C, T]`."""
        if self.uses_f0 and (f0 is None or f0.shape != (z.size(0), z.size(2))):
            got = None if f0 is None else tuple(f0.shape)
            raise ValueError(f"this decoder sings at the given F0: pass f0 [B, T] = {(z.size(0), z.size(2))}, got {got}")

    def remove_weight_norm(self) -> None:
        """Fold weight norm for export; decoders without weight norm have nothing to fold."""
