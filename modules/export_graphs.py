"""The inference graphs that `inference/export_onnx.py` writes as ONNX, as plain modules with tensor-only inputs.

A render is cut in two graphs, so that the waveform stage can run in chunks (streaming) while the
score stage sees the whole phrase (its attention is global):

    acoustic: score [1, P], given_f0 [1, T] (NaN = predict) (+ prior noise [1, C, T]) ─▶ latent [1, C, T], f0 [1, T]
        VISinger: score encoder, length regulator, F0 predictor, frame prior, reverse flow
        FS2 singer: score encoder, length regulator, F0 predictor, variance adaptor, mel decoder (latent = log-mel)
    decoder:  latent [1, C, T] (+ f0 [1, T] and start phase [1] for a decoder at the F0, + source noise
              [1, 1, T * hop] for one that draws noise) ─▶ wav [1, 1, T * hop]

Every decoder the project has exports (hifigan, nsf_hifigan, ddsp, istft; the pair's HiFi-GAN): the
FFT-based ones (istft, ddsp's filtered noise and room) switch to their DFT-matmul paths while exporting
(`modules.ddsp.core.export_ops_enabled`).

Every random draw is an input (the prior's noise, the harmonic source's noise), so a graph is a pure
function and a render can be reproduced in any runtime. The graphs take one item (batch 1, no
padding); a multi-speaker model reads `speaker_weights [1, n_speakers]` (a mix of the speakers'
embeddings, `modules.speaker_embedding`; one speaker is one-hot); `T` is read from the length of the `given_f0` input (whose NaN frames take the predicted F0), never
from the values of `phone_frames`, so that the graph has no data-dependent shapes.
"""
from __future__ import annotations

import torch
from torch import nn

from modules.fs2_singer import FS2Singer
from modules.speaker_embedding import speaker_vectors
from modules.visinger import VISingerGenerator
from modules.waveform_decoder import WaveformDecoder


def _phone_lengths(phone_ids: torch.Tensor) -> torch.Tensor:
    """`[1, P]` -> `[1]` holding `P` (one unpadded item)."""
    return torch.ones_like(phone_ids).sum(dim=1)


class VISingerAcousticGraph(nn.Module):
    """Score + F0 (NaN = predict) + prior noise -> (latent `[1, inter, T]`, F0 sung `[1, T]` Hz): `VISingerGenerator.infer_latent`."""

    def __init__(self, generator: VISingerGenerator) -> None:
        super().__init__()
        self.generator = generator
        self.multi_speaker = generator.speaker_embedding is not None

    def forward(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        given_f0: torch.Tensor,
        prior_noise: torch.Tensor,
        noise_scale: torch.Tensor,
        speaker_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.generator.infer_latent(
            phone_ids, note_pitch, note_dur, slur, phone_frames, _phone_lengths(phone_ids),
            speaker_id=speaker_weights if self.multi_speaker else None, noise_scale=noise_scale, f0=given_f0, prior_noise=prior_noise,
        )  # fmt: skip
        return latent.z, latent.f0_condition


class FS2AcousticGraph(nn.Module):
    """Score + F0 (NaN = predict) -> (log-mel `[1, n_mels, T]`, F0 sung `[1, T]` Hz): `FS2Singer.forward`
    with the predicted energy; the `given_f0` input's length is `T = sum(phone_frames)`."""

    def __init__(self, acoustic: FS2Singer) -> None:
        super().__init__()
        self.acoustic = acoustic
        self.multi_speaker = acoustic.speaker_embedding is not None

    def forward(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        given_f0: torch.Tensor,
        speaker_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.acoustic(
            phone_ids, note_pitch, note_dur, slur, phone_frames, _phone_lengths(phone_ids), f0=given_f0,
            speaker_id=speaker_weights if self.multi_speaker else None, n_frames=given_f0.size(1),
        )  # fmt: skip
        return out.mel, out.f0_hz


class DecoderGraph(nn.Module):
    """Latent `[1, C, T]` (+ F0 and start phase for a decoder at the F0, + source noise for one that
    draws noise) -> wav `[1, 1, T * hop]`. `speaker_embedding`: VISinger's (the decoder's speaker
    condition, read with `speaker_weights [1, n_speakers]`: a mix, or one-hot for one speaker), None for one speaker. Any `WaveformDecoder` (modules/waveform_decoder.py)."""

    def __init__(self, decoder: WaveformDecoder, speaker_embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.decoder = decoder
        self.speaker_embedding = speaker_embedding
        self.uses_f0 = bool(decoder.uses_f0)
        self.uses_noise = bool(decoder.uses_noise)

    def input_names(self) -> list[str]:
        """The graph's inputs in order (what `forward` reads by name)."""
        names = ["latent"]
        names += ["f0", "start_phase"] if self.uses_f0 else []
        names += ["source_noise"] if self.uses_noise else []
        return names + (["speaker_weights"] if self.speaker_embedding is not None else [])

    def forward(
        self,
        latent: torch.Tensor,
        f0: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        speaker_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        g = None if self.speaker_embedding is None or speaker_weights is None else speaker_vectors(self.speaker_embedding, speaker_weights).unsqueeze(-1)
        return self.decoder.decode(latent, None, g, f0=f0, source_noise=source_noise, start_phase=start_phase).wav
