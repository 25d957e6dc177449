"""The DDSP singer's control estimator: pitch and loudness (+ a speaker) -> the synthesiser's raw controls.

DDSP's RNN decoder (Engel et al. 2020, `RnnFcDecoder`): each input through its own small MLP, the
results concatenated, a GRU over time, the GRU output concatenated with the MLP features, an output
MLP and one linear projection to every control channel of the synthesiser. Every part is frame-wise
except the GRU, which only looks back: the estimator is causal, and `forward` with the `state` of the
previous call continues a sequence exactly where it stopped (block-by-block real-time processing
carries that state instead of looking ahead).

Inputs are already normalised by the caller (`modules.ddsp_singer.DDSPSinger`): a pitch feature, a
voicing flag and a standardised loudness, all `[B, T]`.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

N_FRAME_INPUTS = 3  # pitch, voiced, loudness


class EstimatorOutput(NamedTuple):
    controls: torch.Tensor  # [B, n_outputs, T] raw (pre-scaling) controls
    state: torch.Tensor  # [gru_layers, B, hidden] GRU state after the last frame


def _mlp(in_features: int, hidden: int, layers: int) -> nn.Sequential:
    """DDSP's MLP: `layers` x (Linear, LayerNorm, LeakyReLU)."""
    blocks: list[nn.Module] = []
    for index in range(layers):
        blocks += [nn.Linear(in_features if index == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU()]
    return nn.Sequential(*blocks)


class ControlEstimator(nn.Module):
    """`pitch, voiced, loudness [B, T]` (+ `speaker_id [B]`) -> raw controls `[B, n_outputs, T]`, causally.

    Args:
        n_outputs: control channels of the synthesiser (the sum over its frame-rate ports).
        hidden_size: width of the MLPs and of the GRU.
        mlp_layers: layers of each MLP.
        gru_layers: stacked GRU layers.
        n_speakers: speakers in the training data; above 1 a speaker embedding joins the inputs.
        speaker_channels: width of that embedding.
    """

    def __init__(
        self, n_outputs: int, hidden_size: int = 256, mlp_layers: int = 2, gru_layers: int = 1, n_speakers: int = 1, speaker_channels: int = 16
    ) -> None:
        super().__init__()
        if n_outputs < 1 or hidden_size < 1 or mlp_layers < 1 or gru_layers < 1 or n_speakers < 1:
            raise ValueError(
                f"need n_outputs, hidden_size, mlp_layers, gru_layers, n_speakers >= 1; got {n_outputs}, {hidden_size}, {mlp_layers}, {gru_layers}, {n_speakers}"
            )
        self.hidden_size = hidden_size
        self.gru_layers = gru_layers
        self.n_speakers = n_speakers
        self.input_mlps = nn.ModuleList([_mlp(1, hidden_size, mlp_layers) for _ in range(N_FRAME_INPUTS)])
        self.speaker_embedding = nn.Embedding(n_speakers, speaker_channels) if n_speakers > 1 else None
        concat = N_FRAME_INPUTS * hidden_size + (speaker_channels if n_speakers > 1 else 0)
        self.gru = nn.GRU(concat, hidden_size, num_layers=gru_layers, batch_first=True)
        self.output_mlp = _mlp(concat + hidden_size, hidden_size, mlp_layers)
        self.projection = nn.Linear(hidden_size, n_outputs)

    def initial_state(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """The GRU state before the first frame: zeros `[gru_layers, B, hidden]`."""
        return torch.zeros(self.gru_layers, batch_size, self.hidden_size, device=device)

    def forward(
        self,
        pitch: torch.Tensor,
        voiced: torch.Tensor,
        loudness: torch.Tensor,
        speaker_id: Optional[torch.Tensor] = None,
        state: Optional[torch.Tensor] = None,
    ) -> EstimatorOutput:
        """`pitch, voiced, loudness [B, T]`, `speaker_id [B]` (needed when n_speakers > 1), `state` from the previous block."""
        frames = [pitch, voiced, loudness]
        features = [mlp(x.unsqueeze(-1)) for mlp, x in zip(self.input_mlps, frames)]  # each [B, T, hidden] (a [B, T, C] boundary)
        if self.speaker_embedding is not None:
            if speaker_id is None:
                raise ValueError("this estimator was trained on several speakers: pass speaker_id [B]")
            speaker = self.speaker_embedding(speaker_id)  # [B, speaker_channels]
            features.append(speaker.unsqueeze(1).expand(-1, pitch.size(1), -1))
        inputs = torch.cat(features, dim=-1)  # [B, T, concat]
        if state is None:
            state = self.initial_state(pitch.size(0), pitch.device)
        recurrent, new_state = self.gru(inputs, state)  # [B, T, hidden]
        hidden = self.output_mlp(torch.cat([inputs, recurrent], dim=-1))  # [B, T, hidden]
        controls = self.projection(hidden).transpose(1, 2)  # [B, T, n_outputs] -> [B, n_outputs, T]
        return EstimatorOutput(controls, new_state)
