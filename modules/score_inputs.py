"""The contract between a score and a singer: one typed score structure and the "singer" Protocol.

`ScoreInputs` is what a singing model reads from a score, at phoneme level, built once — by
`tasks.svs_dataset.collate_singing` for a training batch (`batch["score"]`) and by
`inference.synthesis.SingingSynthesizer` for each phrase — instead of six tensors passed by position.
`SingingModel` is what every model that sings a score implements (VISinger's generator, the FS2 +
HiFi-GAN pair, later families): the synthesizer, the API and the CLIs call nothing else.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn


class ScoreInputs(NamedTuple):
    """A batch of scores at phoneme level, zero-padded past `phone_lengths`.

    phone_ids `[B, P]` long (index into the phone set, 0 = pad); note_pitch `[B, P]` long (MIDI, 0 = rest);
    note_dur `[B, P]` float (the note's length in frames); slur `[B, P]` long (1 = melisma continuation);
    phone_frames `[B, P]` long (frames of each phoneme: their row sums are the frame lengths);
    phone_lengths `[B]` long.
    """

    phone_ids: torch.Tensor
    note_pitch: torch.Tensor
    note_dur: torch.Tensor
    slur: torch.Tensor
    phone_frames: torch.Tensor
    phone_lengths: torch.Tensor

    @property
    def frame_lengths(self) -> torch.Tensor:
        """`[B]` frames of each score."""
        return self.phone_frames.long().sum(1)

    def to(self, device: torch.device | str) -> ScoreInputs:
        return ScoreInputs(*(tensor.to(device) for tensor in self))


class SingingOutput(NamedTuple):
    wav: torch.Tensor  # [B, 1, T * hop], zero past each score's frames
    f0_hz: torch.Tensor  # [B, T] the F0 sung, in Hz (0 = unvoiced or padding)
    variance_db: torch.Tensor | None = None  # [B, 2, T] energy, breathiness sung (dB), for a model with expressive controls


@runtime_checkable
class SingingModel(Protocol):
    """A model that sings a score: `sing(score, speaker_id, noise_scale) -> SingingOutput`.

    n_speakers: the speaker ids it accepts are 0 .. n_speakers - 1; `speaker_id` is `[B]` ids or `[B, n_speakers]`
        float weights (a mix of the speakers' embeddings, `modules.speaker_embedding`).
    waveform_stage: the submodule that makes the waveform (timed apart from the rest by the synthesizer).
    noise_scale: the sampling temperature of a stochastic singer (VISinger's prior; 0 = its mean); a
        deterministic singer documents that it has none and ignores the value.
    f0: `[B, T]` F0 in Hz sung instead of the model's prediction (an edited render, a score's curve); None = predicted.
    A model with expressive controls (VISinger with `variance_controls`) has `variance_controls = True`
    and its `sing` also takes `variance=` (`[B, 2, T]` energy, breathiness dB, NaN = predicted) and
    `variance_offset_db=` (`[2]` dB); the synthesizer passes them only to such a model.
    """

    @property
    def n_speakers(self) -> int: ...

    @property
    def waveform_stage(self) -> nn.Module: ...

    def sing(
        self, score: ScoreInputs, speaker_id: torch.Tensor | None = None, noise_scale: float = 0.667, f0: torch.Tensor | None = None
    ) -> SingingOutput: ...
