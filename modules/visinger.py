"""VISinger generator (Zhang et al., ICASSP 2022), adapted to Korean scores without a duration predictor.

Training (`forward`):

    score ─ ScoreEncoder ─ expand_to_frames(phone_frames) ─ h ┬─ F0Predictor ─▶ log-F0, uv logit
                                                               └─ FramePriorNetwork(+ true F0) ─▶ m_p, logs_p
    linear spec ─ PosteriorEncoder ─▶ z (m_q, logs_q) ─ flow ─▶ z_p      (KL between z_p and N(m_p, e^logs_p))
                                     z ─ PhonemePredictor ─▶ CTC logits
                                     z ─ random segment ─ decoder ─▶ wav slice (+ source_wav)
                                                          (+ the segment's true F0 for decoders that sing at it)

Inference (`infer`): the same score path, with the F0 predictor's contour as the prior's F0
condition; z_p ~ N(m_p, (noise_scale e^logs_p)^2), z = flow^-1(z_p), wav = decoder(z).

`decoder` chooses the waveform decoder (`DECODERS`, one interface: modules/waveform_decoder.py): the
paper's `hifigan`, or one that sings at the F0 that conditions the prior — the true F0 in training,
the predicted one at inference — so that it is in tune long before a plain HiFi-GAN would learn to
be: `nsf_hifigan` (a learnt harmonic-plus-noise source excites the HiFi-GAN), `ddsp` (VISinger 2's
DDSP synthesiser + refiner) and `istft` (Vocos-style ConvNeXt + inverse STFT shaping a harmonic comb,
the fast one).

Per-phoneme frame counts (`phone_frames`) always come from the notes by the frame rule, so the
model has no duration predictor and `sum(phone_frames) == frame_lengths` exactly.

Loss weights live in the task; this module returns every tensor the losses need, by name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.ddsp_decoder import DDSPDecoder

from modules.flow import ResidualCouplingFlow
from modules.frame_prior import F0Predictor, FramePriorNetwork, predicted_f0_hz
from modules.hifigan import HiFiGANGenerator, check_upsampling
from modules.istft_decoder import ISTFTDecoder
from modules.length_regulator import expand_to_frames
from modules.masks import length_mask, rand_slice_segments, slice_segments
from modules.phoneme_predictor import PhonemePredictor
from modules.posterior_encoder import PosteriorEncoder
from modules.score_encoder import ScoreEncoder
from modules.score_inputs import ScoreInputs, SingingOutput
from modules.speaker_embedding import speaker_vectors
from modules.variance import VARIANCE_NAMES, VarianceHeads, controlled_variance, variance_units
from modules.waveform_decoder import WaveformDecoder


# The waveform decoders `model.decoder` chooses from (one interface: modules/waveform_decoder.py):
#   hifigan      the paper's HiFi-GAN (modules/hifigan.py);
#   nsf_hifigan  the same, excited by a learnt harmonic-plus-noise source at the F0 (modules/harmonic_source.py);
#   ddsp         VISinger 2: a DDSP chain at the F0 refined by a HiFi-GAN (modules/ddsp_decoder.py, `ddsp_chain`);
#   istft        Vocos-style ConvNeXt + inverse STFT shaping a harmonic comb (modules/istft_decoder.py, `istft_*`).
DECODERS = ("hifigan", "nsf_hifigan", "ddsp", "istft")
HIFIGAN_STACK_DECODERS = ("hifigan", "nsf_hifigan", "ddsp")  # use upsample_* and resblock_*
DEFAULT_DDSP_CHAIN = tuple(harmonic_plus_noise_chain(n_harmonics=64, n_bands=65))


def build_decoder(config: VISingerGeneratorConfig) -> WaveformDecoder:
    """The decoder `config.decoder` names, built from the config's decoder fields."""
    c = config
    stack = dict(
        upsample_initial_channel=c.upsample_initial_channel, upsample_rates=c.upsample_rates, upsample_kernel_sizes=c.upsample_kernel_sizes,
        resblock_type=c.resblock_type, resblock_kernel_sizes=c.resblock_kernel_sizes, resblock_dilation_sizes=c.resblock_dilation_sizes,
        gin_channels=c.gin_channels, sample_rate=c.sample_rate,
    )  # fmt: skip
    if c.decoder in ("hifigan", "nsf_hifigan"):
        return HiFiGANGenerator(c.inter_channels, c.hop_size, harmonic_source=c.decoder == "nsf_hifigan", n_harmonics=c.n_harmonics, **stack)
    if c.decoder == "ddsp":
        return DDSPDecoder(c.inter_channels, c.hop_size, c.ddsp_chain, **stack)
    return ISTFTDecoder(
        c.inter_channels, c.hop_size, c.sample_rate, c.istft_channels, c.istft_intermediate_channels, c.istft_n_layers,
        c.istft_n_fft, harmonic_source=c.istft_harmonic_source, gin_channels=c.gin_channels,
    )  # fmt: skip


@dataclass(frozen=True)
class VISingerGeneratorConfig:
    """The generator's constructor arguments, one to one (build with `config_section`, rebuild from checkpoints).

    Sizes are the paper's (192-wide latent and transformer, 512-channel HiFi-GAN); the audio defaults
    match `preprocessor.audio.AudioSettings` (24 kHz, `n_fft = 2048` -> 1025 bins, hop 300 =
    5 * 5 * 4 * 3). For 44.1 kHz with hop 512 use e.g. rates (8, 8, 2, 2, 2), kernels (16, 16, 4, 4, 4).
    `segment_size` is in frames (32 * 300 = 9600 samples).
    """

    n_phones: int
    spec_channels: int = 1025
    segment_size: int = 32
    hop_size: int = 300
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 9
    dropout: float = 0.1
    window_size: int = 4
    prior_n_layers: int = 4
    f0_predictor_n_layers: int = 2
    phoneme_predictor_n_layers: int = 2
    rest_pitch: float = 60.0
    posterior_kernel_size: int = 5
    posterior_dilation_rate: int = 1
    posterior_n_layers: int = 16
    flow_kernel_size: int = 5
    flow_dilation_rate: int = 1
    flow_n_layers: int = 4
    flow_n_flows: int = 4
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (5, 5, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 10, 8, 6)
    resblock_type: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_speakers: int = 1
    gin_channels: int = 0
    decoder: str = "hifigan"
    sample_rate: int = 24000
    n_harmonics: int = 48
    ddsp_chain: tuple[dict[str, Any], ...] = DEFAULT_DDSP_CHAIN
    istft_channels: int = 384
    istft_intermediate_channels: int = 1152
    istft_n_layers: int = 6
    istft_n_fft: int = 0
    istft_harmonic_source: bool = True
    variance_controls: bool = False
    score_embedding: str = "table"
    phone_classes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # ValueError: config_section turns it into a one-line UserInputError naming the section.
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        # Lists from YAML or a JSON pack -> tuples (hashable, comparable with the defaults).
        object.__setattr__(self, "ddsp_chain", tuple(dict(component) for component in self.ddsp_chain))
        object.__setattr__(self, "phone_classes", tuple(int(c) for c in self.phone_classes))
        if self.decoder in HIFIGAN_STACK_DECODERS:
            check_upsampling(self.upsample_rates, self.hop_size, self.upsample_kernel_sizes)
        if self.n_phones < 2:
            raise ValueError(f"n_phones must count the <pad>/blank id and at least one phoneme, got {self.n_phones}")
        if self.n_speakers < 1:
            raise ValueError(f"n_speakers must be >= 1, got {self.n_speakers}")
        if (self.n_speakers > 1) != (self.gin_channels > 0):
            raise ValueError(
                f"n_speakers={self.n_speakers} with gin_channels={self.gin_channels}: "
                "use gin_channels > 0 exactly when n_speakers > 1"
            )
        if self.segment_size <= 0:
            raise ValueError(f"segment_size (frames) must be positive, got {self.segment_size}")
        if self.inter_channels % 2 != 0:
            raise ValueError(f"inter_channels must be even (flow coupling halves it), got {self.inter_channels}")


@dataclass(frozen=True)
class VISingerTrainOutput:
    """Everything the training losses need. Latents are `[B, inter, T]`, `T` = the batch's frames."""

    wav_slice: torch.Tensor  # [B, 1, segment_size * hop] decoded random segment
    slice_starts: torch.Tensor  # [B] first frame of each segment (samples: * hop); slice the targets with modules.masks.slice_segments
    slice_mask: torch.Tensor  # [B, 1, segment_size] frames of the segment inside the item (short items are padded)
    z: torch.Tensor  # posterior sample
    z_p: torch.Tensor  # z mapped through the flow (KL's sample)
    m_p: torch.Tensor  # prior mean
    logs_p: torch.Tensor  # prior log-scale
    m_q: torch.Tensor  # posterior mean
    logs_q: torch.Tensor  # posterior log-scale
    frame_mask: torch.Tensor  # [B, 1, T]
    log_f0_pred: torch.Tensor  # [B, T] predicted natural-log F0 (Hz)
    uv_logit_pred: torch.Tensor  # [B, T] logit of P(unvoiced) (target: batch `uv`)
    phoneme_logits: torch.Tensor  # [B, n_phones, T] for CTC (blank = 0)
    source_slice: torch.Tensor | None = None  # [B, 1, segment_size * hop] the decoder's harmonic excitation (None without one)
    variance_pred: torch.Tensor | None = None  # [B, 2, T] predicted energy, breathiness in dB (None without variance_controls)


@dataclass(frozen=True)
class VISingerInferOutput:
    wav: torch.Tensor  # [B, 1, T * hop], zero past frame_lengths * hop
    f0_pred: torch.Tensor  # [B, T] predicted F0 in Hz (0 where predicted unvoiced or padded)
    frame_mask: torch.Tensor  # [B, 1, T]
    frame_lengths: torch.Tensor  # [B] = phone_frames.sum(1)
    variance_db: torch.Tensor | None = None  # [B, 2, T] energy, breathiness (dB) the prior was given (None without variance_controls)


@dataclass(frozen=True)
class VISingerLatent:
    """What the decoder reads at inference (`infer_latent`)."""

    z: torch.Tensor  # [B, inter, T] latent after the reverse flow (zero past frame_lengths)
    f0_condition: torch.Tensor  # [B, T] the F0 (Hz) that conditioned the prior: the decoder's F0
    f0_pred: torch.Tensor  # [B, T] predicted F0 in Hz (0 where predicted unvoiced or padded)
    frame_mask: torch.Tensor  # [B, 1, T]
    frame_lengths: torch.Tensor  # [B] = phone_frames.sum(1)
    variance_db: torch.Tensor | None = None  # [B, 2, T] energy, breathiness (dB) the prior was given (None without variance_controls)


class VISingerGenerator(nn.Module):
    """Score -> waveform. Arguments mirror `VISingerGeneratorConfig` field by field (see there)."""

    def __init__(
        self,
        n_phones: int,
        spec_channels: int = 1025,
        segment_size: int = 32,
        hop_size: int = 300,
        inter_channels: int = 192,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        n_heads: int = 2,
        n_layers: int = 6,
        kernel_size: int = 9,
        dropout: float = 0.1,
        window_size: int = 4,
        prior_n_layers: int = 4,
        f0_predictor_n_layers: int = 2,
        phoneme_predictor_n_layers: int = 2,
        rest_pitch: float = 60.0,
        posterior_kernel_size: int = 5,
        posterior_dilation_rate: int = 1,
        posterior_n_layers: int = 16,
        flow_kernel_size: int = 5,
        flow_dilation_rate: int = 1,
        flow_n_layers: int = 4,
        flow_n_flows: int = 4,
        upsample_initial_channel: int = 512,
        upsample_rates: tuple[int, ...] = (5, 5, 4, 3),
        upsample_kernel_sizes: tuple[int, ...] = (10, 10, 8, 6),
        resblock_type: str = "1",
        resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11),
        resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        n_speakers: int = 1,
        gin_channels: int = 0,
        decoder: str = "hifigan",
        sample_rate: int = 24000,
        n_harmonics: int = 48,
        ddsp_chain: tuple[dict[str, Any], ...] = DEFAULT_DDSP_CHAIN,
        istft_channels: int = 384,
        istft_intermediate_channels: int = 1152,
        istft_n_layers: int = 6,
        istft_n_fft: int = 0,
        istft_harmonic_source: bool = True,
        variance_controls: bool = False,
        score_embedding: str = "table",
        phone_classes: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        # Validates the arguments and is what checkpoints store to rebuild the model.
        self.config = VISingerGeneratorConfig(
            n_phones=n_phones, spec_channels=spec_channels, segment_size=segment_size, hop_size=hop_size,
            inter_channels=inter_channels, hidden_channels=hidden_channels, filter_channels=filter_channels,
            n_heads=n_heads, n_layers=n_layers, kernel_size=kernel_size, dropout=dropout, window_size=window_size,
            prior_n_layers=prior_n_layers, f0_predictor_n_layers=f0_predictor_n_layers,
            phoneme_predictor_n_layers=phoneme_predictor_n_layers, rest_pitch=rest_pitch,
            posterior_kernel_size=posterior_kernel_size, posterior_dilation_rate=posterior_dilation_rate,
            posterior_n_layers=posterior_n_layers, flow_kernel_size=flow_kernel_size,
            flow_dilation_rate=flow_dilation_rate, flow_n_layers=flow_n_layers, flow_n_flows=flow_n_flows,
            upsample_initial_channel=upsample_initial_channel, upsample_rates=tuple(upsample_rates),
            upsample_kernel_sizes=tuple(upsample_kernel_sizes), resblock_type=resblock_type,
            resblock_kernel_sizes=tuple(resblock_kernel_sizes),
            resblock_dilation_sizes=tuple(tuple(d) for d in resblock_dilation_sizes),
            n_speakers=n_speakers, gin_channels=gin_channels, decoder=decoder,
            sample_rate=sample_rate, n_harmonics=n_harmonics, ddsp_chain=tuple(ddsp_chain), istft_channels=istft_channels,
            istft_intermediate_channels=istft_intermediate_channels, istft_n_layers=istft_n_layers, istft_n_fft=istft_n_fft,
            istft_harmonic_source=istft_harmonic_source, variance_controls=variance_controls,
            score_embedding=score_embedding, phone_classes=tuple(phone_classes),
        )  # fmt: skip
        self.segment_size = segment_size
        self.hop_size = hop_size
        blocks = dict(filter_channels=filter_channels, n_heads=n_heads, kernel_size=kernel_size, dropout=dropout, window_size=window_size)
        self.score_encoder = ScoreEncoder(n_phones, hidden_channels, n_layers=n_layers, embedding=score_embedding, phone_classes=tuple(phone_classes), **blocks)
        self.f0_predictor = F0Predictor(hidden_channels, n_layers=f0_predictor_n_layers, rest_pitch=rest_pitch, **blocks)
        variance_channels = len(VARIANCE_NAMES) if variance_controls else 0
        self.frame_prior = FramePriorNetwork(hidden_channels, n_layers=prior_n_layers, inter_channels=inter_channels, variance_channels=variance_channels, **blocks)
        self.posterior_encoder = PosteriorEncoder(
            spec_channels, inter_channels, hidden_channels, posterior_kernel_size, posterior_dilation_rate, posterior_n_layers, gin_channels
        )
        self.flow = ResidualCouplingFlow(
            inter_channels, hidden_channels, flow_kernel_size, flow_dilation_rate, flow_n_layers, flow_n_flows, gin_channels
        )
        self.decoder = build_decoder(self.config)
        self.phoneme_predictor = PhonemePredictor(
            inter_channels, n_phones, hidden_channels, n_layers=phoneme_predictor_n_layers, **blocks
        )
        self.speaker_embedding = nn.Embedding(n_speakers, gin_channels) if n_speakers > 1 else None
        # A multi-speaker model also tells the F0 predictor and the frame prior who sings (pitch style,
        # the prior's timbre); built only then, so a single-speaker model's weights and draws are as before.
        self.speaker_to_frames = nn.Conv1d(gin_channels, hidden_channels, 1) if n_speakers > 1 else None
        # Expressive controls (modules/variance.py): energy and breathiness predicted from h, read by the prior.
        self.variance_heads = VarianceHeads(hidden_channels) if variance_controls else None

    @property
    def variance_controls(self) -> bool:
        """Whether energy and breathiness can be steered (`sing(..., variance=, variance_offset_db=)`)."""
        return self.variance_heads is not None

    @classmethod
    def from_config(cls, config: VISingerGeneratorConfig) -> VISingerGenerator:
        return cls(**dataclasses.asdict(config))

    def _speaker_condition(self, speaker_id: torch.Tensor | None) -> torch.Tensor | None:
        """`[B]` ids or `[B, n_speakers]` mix weights -> `g [B, gin, 1]`; None for a single-speaker model
        (whatever ids the batch carries)."""
        if self.speaker_embedding is None:
            return None
        if speaker_id is None:
            raise ValueError(f"this generator has {self.config.n_speakers} speakers; pass speaker_id [B]")
        return speaker_vectors(self.speaker_embedding, speaker_id).unsqueeze(-1)

    def _frame_encoding(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        n_frames: int,
        g: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score (+ speaker `g [B, gin, 1]`) -> frame-level encoding `h [B, H, T]` and the note pitch per frame `[B, T]` (MIDI)."""
        encoded = self.score_encoder(phone_ids, note_pitch, note_dur, slur, phone_lengths)
        h = expand_to_frames(encoded.hidden, phone_frames, n_frames)  # [B, H, P] -> [B, H, T]
        if self.speaker_to_frames is not None and g is not None:
            frames = length_mask(phone_frames.long().sum(1), n_frames, h.dtype)  # [B, 1, T]
            h = h + self.speaker_to_frames(g) * frames  # [B, H, 1] broadcast over the item's frames
        pitch_frames = expand_to_frames(note_pitch.float().unsqueeze(1), phone_frames, n_frames).squeeze(1)  # [B, T]
        return h, pitch_frames

    def forward(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        spec: torch.Tensor,
        frame_lengths: torch.Tensor,
        f0: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        variance: torch.Tensor | None = None,
    ) -> VISingerTrainOutput:
        """Training pass.

        Args:
            phone_ids, note_pitch, note_dur, slur, phone_frames: `[B, P]` score per phoneme.
            phone_lengths: `[B]`.
            spec: `[B, spec_channels, T]` linear spectrogram (posterior input).
            frame_lengths: `[B]`; must equal `phone_frames.sum(1)`.
            f0: `[B, T]` ground-truth F0 in Hz (0 = unvoiced), the frame prior's condition.
            speaker_id: `[B]` ids, `[B, n_speakers]` mix weights, or None (ignored by a single-speaker model).
            variance: `[B, 2, T]` true energy and breathiness in dB (`modules.variance`), the prior's
                condition; required exactly with `variance_controls`.
        """
        n_frames = spec.size(2)
        if not torch.equal(phone_frames.long().sum(1), frame_lengths.long()):
            raise ValueError(
                f"phone_frames sum to {phone_frames.long().sum(1).tolist()} but frame_lengths is {frame_lengths.tolist()}"
            )
        if f0.shape != (spec.size(0), n_frames):
            raise ValueError(f"f0 must be [B, T] = {(spec.size(0), n_frames)}, got {tuple(f0.shape)}")
        g = self._speaker_condition(speaker_id)
        frame_mask = length_mask(frame_lengths, n_frames, spec.dtype)  # [B, 1, T]

        h, pitch_frames = self._frame_encoding(phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, n_frames, g)
        f0_prediction = self.f0_predictor(h, pitch_frames, frame_mask)
        variance_pred = None
        if self.variance_heads is not None:
            if variance is None or variance.shape != (spec.size(0), len(VARIANCE_NAMES), n_frames):
                raise ValueError(f"this generator has variance_controls; pass variance [B, 2, T] = {(spec.size(0), 2, n_frames)} (energy, breathiness dB)")
            variance_pred = self.variance_heads(h, frame_mask)
        # Prior p(z_p | score, F0) = N(m_p, exp(logs_p)^2), conditioned on the TRUE F0 (and variance) while training.
        variance_in = () if variance_pred is None else (variance_units(variance) * frame_mask,)
        prior = self.frame_prior(h, f0 * frame_mask.squeeze(1), frame_mask, *variance_in)
        # Posterior q(z | spec) = N(m_q, exp(logs_q)^2); z its sample, z_p = flow(z) for the KL.
        posterior = self.posterior_encoder(spec, frame_mask, g)
        z_p = self.flow(posterior.z, frame_mask, g).z

        segments = rand_slice_segments(posterior.z, frame_lengths, self.segment_size)
        f0_slice = slice_segments(f0.unsqueeze(1), segments.starts, self.segment_size).squeeze(1)  # [B, segment_size]
        decoded = self.decoder.decode(segments.segments, segments.mask, g, f0=f0_slice)  # [B, 1, segment_size * hop]
        phoneme_logits = self.phoneme_predictor(posterior.z, frame_mask)
        return VISingerTrainOutput(
            wav_slice=decoded.wav,
            source_slice=decoded.source_wav,
            slice_starts=segments.starts,
            slice_mask=segments.mask,
            z=posterior.z,
            z_p=z_p,
            m_p=prior.mean,
            logs_p=prior.log_scale,
            m_q=posterior.mean,
            logs_q=posterior.log_scale,
            frame_mask=frame_mask,
            log_f0_pred=f0_prediction.log_f0,
            uv_logit_pred=f0_prediction.uv_logit,
            phoneme_logits=phoneme_logits,
            variance_pred=variance_pred,
        )

    # ---- the singer contract (modules.score_inputs.SingingModel) ----------------------------------------
    @property
    def n_speakers(self) -> int:
        return self.config.n_speakers

    @property
    def waveform_stage(self) -> nn.Module:
        return self.decoder

    @torch.no_grad()
    def sing(
        self,
        score: ScoreInputs,
        speaker_id: torch.Tensor | None = None,
        noise_scale: float = 0.667,
        f0: torch.Tensor | None = None,
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> SingingOutput:
        """`infer` from a `ScoreInputs`: the waveform `[B, 1, T * hop]`, the F0 sung `[B, T]` (`f0` when given, else
        predicted) and, with `variance_controls`, the energy and breathiness sung `[B, 2, T]` dB (see `infer`)."""
        out = self.infer(*score, speaker_id=speaker_id, noise_scale=noise_scale, f0=f0, variance=variance, variance_offset_db=variance_offset_db)
        sung = out.f0_pred if f0 is None else f0 * out.frame_mask.squeeze(1)
        return SingingOutput(out.wav, sung, out.variance_db)

    @torch.no_grad()
    def infer(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        noise_scale: float = 0.667,
        f0: torch.Tensor | None = None,
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> VISingerInferOutput:
        """Score -> waveform. The prior is conditioned on the F0 predictor's contour unless `f0 [B, T]` (Hz) is given.

        `T = max(phone_frames.sum(1))`; `noise_scale` scales the prior sample (0 = its mean).
        With `variance_controls`, the prior also reads energy and breathiness: `variance [B, 2, T]` dB
        where not NaN, else the heads' prediction, plus `variance_offset_db` (`[2]` or `[B, 2]` dB).
        Call `.eval()` first to turn dropout off.
        """
        if self.variance_heads is None and (variance is not None or variance_offset_db is not None):
            raise ValueError("this generator has no variance controls (trained without model.variance_controls)")
        latent = self.infer_latent(
            phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, speaker_id, noise_scale, f0,
            variance=variance, variance_offset_db=variance_offset_db,
        )  # fmt: skip
        g = self._speaker_condition(speaker_id)
        wav = self.decoder(latent.z, latent.frame_mask, g, f0=latent.f0_condition)  # [B, 1, T * hop]
        f0_pred, frame_mask, frame_lengths = latent.f0_pred, latent.frame_mask, latent.frame_lengths
        return VISingerInferOutput(wav=wav, f0_pred=f0_pred, frame_mask=frame_mask, frame_lengths=frame_lengths, variance_db=latent.variance_db)

    def infer_latent(
        self,
        phone_ids: torch.Tensor,
        note_pitch: torch.Tensor,
        note_dur: torch.Tensor,
        slur: torch.Tensor,
        phone_frames: torch.Tensor,
        phone_lengths: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        noise_scale: float | torch.Tensor = 0.667,
        f0: torch.Tensor | None = None,
        prior_noise: torch.Tensor | None = None,
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> VISingerLatent:
        """Score -> what the decoder reads: the latent `z` after the reverse flow and the F0 that conditions it.

        `f0 [B, T]` (Hz) replaces the prediction where it is not NaN. `prior_noise [B, inter, T]`
        (standard normal) is the prior sample's noise, drawn from the global generator when None
        (as `infer`); given, its length is `T` (at least `max(phone_frames.sum(1))`), which is how an
        exported graph learns `T` without reading the data (modules/export_graphs.py). `variance`,
        `variance_offset_db`: the energy and breathiness controls (see `infer`).
        """
        frame_lengths = phone_frames.long().sum(1)
        n_frames = int(frame_lengths.max()) if prior_noise is None else prior_noise.size(2)
        g = self._speaker_condition(speaker_id)
        frame_mask = length_mask(frame_lengths, n_frames)  # [B, 1, T]
        h, pitch_frames = self._frame_encoding(phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, n_frames, g)
        f0_prediction = self.f0_predictor(h, pitch_frames, frame_mask)
        f0_pred = predicted_f0_hz(f0_prediction.log_f0, f0_prediction.uv_logit) * frame_mask.squeeze(1)  # [B, T]
        if f0 is not None and f0.shape != f0_pred.shape:
            raise ValueError(f"f0 override must be [B, T] = {tuple(f0_pred.shape)}, got {tuple(f0.shape)}")
        condition = f0_pred if f0 is None else torch.where(torch.isnan(f0), f0_pred, f0) * frame_mask.squeeze(1)
        variance_db = None
        if self.variance_heads is not None:
            variance_db = controlled_variance(self.variance_heads(h, frame_mask), variance, variance_offset_db, frame_mask)
        prior = self.frame_prior(h, condition, frame_mask, *(() if variance_db is None else (variance_units(variance_db) * frame_mask,)))
        if prior_noise is None:
            prior_noise = torch.randn_like(prior.mean)
        # z_p ~ N(m_p, (noise_scale * exp(logs_p))^2), then back through the flow to the posterior space.
        z_p = (prior.mean + prior_noise * torch.exp(prior.log_scale) * noise_scale) * frame_mask
        z = self.flow(z_p, frame_mask, g, reverse=True).z
        return VISingerLatent(z, condition, f0_pred, frame_mask, frame_lengths, variance_db)

    def speaker_condition(self, speaker_id: torch.Tensor | None) -> torch.Tensor | None:
        """`[B]` ids or `[B, n_speakers]` mix weights -> the decoder's and flow's condition `g [B, gin, 1]` (None for one speaker)."""
        return self._speaker_condition(speaker_id)

    @torch.no_grad()
    def infer_from_posterior(
        self,
        spec: torch.Tensor,
        frame_lengths: torch.Tensor,
        speaker_id: torch.Tensor | None = None,
        noise_scale: float = 1.0,
        f0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reconstruction upper bound: `spec [B, F, T]` -> posterior z -> decoder -> wav `[B, 1, T * hop]`.

        `f0 [B, T]` (Hz, the extracted F0) is required when the decoder has a harmonic source.
        """
        g = self._speaker_condition(speaker_id)
        frame_mask = length_mask(frame_lengths, spec.size(2), spec.dtype)
        z = self.posterior_encoder(spec, frame_mask, g, noise_scale=noise_scale).z
        return self.decoder(z, frame_mask, g, f0=f0)

    def remove_weight_norm(self) -> None:
        """Fold weight norm for export (irreversible; do it on an inference copy)."""
        self.posterior_encoder.remove_weight_norm()
        self.flow.remove_weight_norm()
        self.decoder.remove_weight_norm()
