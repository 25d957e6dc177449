"""Phrase renderers: the two networks of a singer behind one numpy interface, run by torch or by onnxruntime.

`inference.synthesis.SingingSynthesizer` owns the front end, the phrase plan, the pieces of long
phrases, the noise and the cross-fades; a renderer only runs the networks on one window of one phrase
(batch 1, no padding):

    acoustic(score, f0, prior_noise, noise_scale, speaker) -> AcousticResult(latent [C, T], f0 [T])
    decode(latent [C, t], f0 [t], source_noise [t * hop], start_phase, speaker) -> wav [t * hop]

`TorchRenderer` wraps a `VISingerGenerator` or the FS2 + HiFi-GAN pair (`AcousticVocoderPair`);
`OnnxRenderer` (inference/onnx_backend.py) runs the graphs that inference/export_onnx.py wrote, which
are `modules/export_graphs.py` traced. Both take every random draw as an input, so the same noise
gives the same audio from either backend. `decode_chunks` runs a renderer's decoder over a window in
chunks with enough context on both sides that the chunks join into the whole-window render.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import torch

from config.errors import UserInputError
from inference.speakers import SpeakerValue

MIN_CHUNK_FRAMES = 8
SCORE_FIELDS = ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames")


def speaker_tensor(speaker: SpeakerValue, device: torch.device | str = "cpu") -> torch.Tensor:
    """`[1]` id, or `[1, n_speakers]` float mix weights (`inference.speakers`): what the models' speaker input takes."""
    if isinstance(speaker, tuple):
        return torch.tensor([list(speaker)], dtype=torch.float32, device=device)
    return torch.tensor([int(speaker)], device=device)


@dataclass(frozen=True)
class AcousticResult:
    latent: np.ndarray  # [C, T] float32: VISinger's z after the reverse flow, or the FS2 singer's log-mel
    f0: np.ndarray  # [T] float32 Hz (0 = unvoiced): the F0 sung (given, else predicted), which the decoder follows
    variance_db: np.ndarray | None = None  # [2, T] energy, breathiness sung (dB): a torch model with expressive controls, asked for them


class PhraseRenderer(Protocol):
    name: str  # "torch" or "onnx"
    sample_rate: int
    hop_size: int
    n_speakers: int
    prior_noise_channels: int  # channels of the prior noise `acoustic` takes (0: the model draws none)
    uses_f0: bool  # the decoder reads f0 and a start phase
    uses_noise: bool  # the decoder reads source noise
    context_frames: int  # decoder frames on each side that can change an output frame

    def acoustic(
        self, score: dict[str, np.ndarray], f0: np.ndarray | None, prior_noise: np.ndarray | None, noise_scale: float, speaker_id: SpeakerValue
    ) -> AcousticResult: ...

    def decode(self, latent: np.ndarray, f0: np.ndarray, source_noise: np.ndarray | None, start_phase: float, speaker_id: SpeakerValue) -> np.ndarray: ...


def phase_before_frames(f0: np.ndarray, hop_size: int, sample_rate: int) -> float:
    """The harmonic phase (cycles, in [0, 1)) after the frames `f0 [t]`: what a chunk starting there passes
    as `start_phase` (float64, as `modules.ddsp.harmonic.harmonic_synthesis` sums it)."""
    return float(np.remainder(np.sum(f0.astype(np.float32).astype(np.float64)) * hop_size / sample_rate, 1.0))


def check_chunk_frames(chunk_frames: int) -> None:
    if chunk_frames < MIN_CHUNK_FRAMES:
        raise UserInputError(
            f"--chunk_frames {chunk_frames}: a streamed chunk must hold at least {MIN_CHUNK_FRAMES} frames "
            "(each chunk also decodes the decoder's context on both sides, so tiny chunks only repeat work); pass a larger --chunk_frames"
        )


@dataclass(frozen=True)
class DecodedChunk:
    first_frame: int  # of the window (the same frames as `latent`'s)
    wav: np.ndarray  # [frames * hop] float32


def decode_chunks(
    renderer: PhraseRenderer,
    latent: np.ndarray,
    f0: np.ndarray,
    source_noise: np.ndarray | None,
    speaker_id: SpeakerValue,
    chunk_frames: int | None,
    first_frame: int = 0,
    last_frame: int | None = None,
) -> Iterator[DecodedChunk]:
    """Decode frames `[first_frame, last_frame)` of a window (`latent [C, T]`, `f0 [T]`, `source_noise [T * hop]`).

    `chunk_frames=None` decodes the whole window in one call and returns that range of it. Otherwise
    each chunk is decoded with `renderer.context_frames` extra frames on both sides (cut at the window's
    edges, where the whole render sees the same zero padding), its harmonic phase starting where the
    whole render has it and with its slice of the noise; the extra frames are dropped. The chunks then
    equal the whole render up to float rounding.
    """
    hop = renderer.hop_size
    total = latent.shape[1]
    last_frame = total if last_frame is None else last_frame
    if chunk_frames is None:
        wav = renderer.decode(latent, f0, source_noise, 0.0, speaker_id)
        yield DecodedChunk(first_frame, wav[first_frame * hop : last_frame * hop])
        return
    check_chunk_frames(chunk_frames)
    context = renderer.context_frames
    for start in range(first_frame, last_frame, chunk_frames):
        end = min(start + chunk_frames, last_frame)
        window_start, window_end = max(0, start - context), min(total, end + context)
        noise = None if source_noise is None else source_noise[window_start * hop : window_end * hop]
        phase = phase_before_frames(f0[:window_start], hop, renderer.sample_rate) if renderer.uses_f0 else 0.0
        wav = renderer.decode(latent[:, window_start:window_end], f0[window_start:window_end], noise, phase, speaker_id)
        yield DecodedChunk(start, wav[(start - window_start) * hop : (end - window_start) * hop])


class TorchRenderer:
    """A `VISingerGenerator` (has `infer_latent`) or an `AcousticVocoderPair` (has `acoustic`) as a `PhraseRenderer`."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, sample_rate: int, hop_size: int, device: torch.device | str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.is_visinger = hasattr(model, "infer_latent")
        if not self.is_visinger and not hasattr(model, "acoustic"):
            raise TypeError(f"{type(model).__name__} is neither a VISinger generator nor an acoustic model + vocoder pair")
        self.decoder = model.waveform_stage  # VISinger's decoder, or the pair's vocoder (the singer contract's name)
        self.prior_noise_channels = model.config.inter_channels if self.is_visinger else 0
        self.uses_f0 = bool(getattr(self.decoder, "uses_f0", False))
        self.uses_noise = bool(getattr(self.decoder, "uses_noise", False))
        self.n_speakers = model.n_speakers
        self.context_frames = int(self.decoder.context_frames())

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def _speaker(self, speaker_id: SpeakerValue) -> torch.Tensor:
        return speaker_tensor(speaker_id, self.device)

    @torch.no_grad()
    def acoustic(
        self,
        score: dict[str, np.ndarray],
        f0: np.ndarray | None,
        prior_noise: np.ndarray | None,
        noise_scale: float,
        speaker_id: SpeakerValue,
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> AcousticResult:
        """`variance [1, 2, T]` / `variance_offset_db [2]`: a VISinger with expressive controls (see its `infer`)."""
        inputs = {key: self._tensor(score[key]) for key in SCORE_FIELDS}
        inputs["phone_lengths"] = torch.tensor([score["phone_ids"].shape[1]], device=self.device)
        given = None if f0 is None else self._tensor(f0.astype(np.float32)).unsqueeze(0)
        if self.is_visinger:
            noise = None if prior_noise is None else self._tensor(prior_noise)
            out = self.model.infer_latent(
                **inputs, speaker_id=self._speaker(speaker_id), noise_scale=noise_scale, f0=given, prior_noise=noise,
                variance=variance, variance_offset_db=variance_offset_db,
            )  # fmt: skip
            latent, sung = out.z, out.f0_condition
            if variance_offset_db is not None and out.variance_db is not None:
                return AcousticResult(latent[0].float().cpu().numpy(), sung[0].float().cpu().numpy(), out.variance_db[0].float().cpu().numpy())
        else:
            out = self.model.acoustic.infer(**inputs, speaker_id=self._speaker(speaker_id), f0=given)
            latent, sung = out.mel, out.f0_hz
        return AcousticResult(latent[0].float().cpu().numpy(), sung[0].float().cpu().numpy())

    @torch.no_grad()
    def decode(self, latent: np.ndarray, f0: np.ndarray, source_noise: np.ndarray | None, start_phase: float, speaker_id: SpeakerValue) -> np.ndarray:
        g = self.model.speaker_condition(self._speaker(speaker_id)) if self.is_visinger else None
        noise = None if source_noise is None or not self.uses_noise else self._tensor(source_noise).view(1, 1, -1)
        phase = torch.tensor([start_phase], dtype=torch.float64, device=self.device) if self.uses_f0 else None
        out = self.decoder.decode(self._tensor(latent).unsqueeze(0), None, g, f0=self._tensor(f0).unsqueeze(0), source_noise=noise, start_phase=phase)
        return out.wav[0, 0].float().cpu().numpy()
