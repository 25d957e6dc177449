"""Tiny VISinger configurations and random batches for fast CPU tests (reused by the task tests).

`make_generator_args(**overrides)` returns constructor arguments of a generator small enough to
train a step in well under a second; `TINY_AUDIO` holds spectrogram settings that agree with it
(`spec_channels == n_fft // 2 + 1`, `prod(upsample_rates) == hop_size`).
"""
from __future__ import annotations

from typing import Any

import torch

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.discriminators import VISingerDiscriminator
from modules.visinger import VISingerGenerator

# SpectrogramExtractor(**TINY_AUDIO) matches the tiny generator: 25 linear bins, hop 12.
TINY_AUDIO: dict[str, Any] = dict(sample_rate=2400, n_fft=48, hop_size=12, win_size=48, n_mels=12, fmin=0.0, fmax=1200.0)


def make_generator_args(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a tiny `VISingerGenerator`; any argument can be overridden by name."""
    args: dict[str, Any] = dict(
        n_phones=12,
        spec_channels=TINY_AUDIO["n_fft"] // 2 + 1,
        segment_size=8,
        hop_size=TINY_AUDIO["hop_size"],
        inter_channels=8,
        hidden_channels=16,
        filter_channels=32,
        n_heads=2,
        n_layers=2,
        kernel_size=3,
        dropout=0.1,
        window_size=2,
        prior_n_layers=1,
        f0_predictor_n_layers=1,
        phoneme_predictor_n_layers=1,
        rest_pitch=60.0,
        posterior_kernel_size=3,
        posterior_dilation_rate=1,
        posterior_n_layers=2,
        flow_kernel_size=3,
        flow_dilation_rate=1,
        flow_n_layers=2,
        flow_n_flows=2,
        upsample_initial_channel=16,
        upsample_rates=(3, 2, 2),  # an odd rate exercises the output-padding path
        upsample_kernel_sizes=(6, 4, 4),
        resblock_type="1",
        resblock_kernel_sizes=(3, 5),
        resblock_dilation_sizes=((1, 3), (1, 3)),
        n_speakers=1,
        gin_channels=0,
        decoder="hifigan",
        sample_rate=TINY_AUDIO["sample_rate"],
        n_harmonics=4,
        ddsp_chain=tuple(harmonic_plus_noise_chain(n_harmonics=4, n_bands=9)),
        istft_channels=16,
        istft_intermediate_channels=32,
        istft_n_layers=2,
        istft_n_fft=0,
        istft_harmonic_source=True,
        variance_controls=False,
        score_embedding="table",
        phone_classes=(),
    )
    unknown = set(overrides) - set(args)
    if unknown:
        raise TypeError(f"unknown generator arguments: {sorted(unknown)}")
    args.update(overrides)
    return args


def make_tiny_generator(seed: int = 0, **overrides: Any) -> VISingerGenerator:
    """A seeded tiny generator (train mode)."""
    torch.manual_seed(seed)
    return VISingerGenerator(**make_generator_args(**overrides))


def make_tiny_discriminator(seed: int = 0, **overrides: Any) -> VISingerDiscriminator:
    """The full MPD (periods 2, 3, 5, 7, 11) + 3-scale MSD, with every layer capped at 16 channels."""
    torch.manual_seed(seed)
    args: dict[str, Any] = dict(periods=(2, 3, 5, 7, 11), n_scales=3, period_use_spectral_norm=False, max_channels=16)
    args.update(overrides)
    return VISingerDiscriminator(**args)


def make_random_batch(
    generator_args: dict[str, Any],
    phones_per_item: tuple[int, ...] = (7, 4),
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A padded batch in the layout of docs/ARCHITECTURE.md ("Batches"), random but well formed.

    Each phoneme gets 2-4 frames (enough for CTC), `sum(phone_frames) == frame_lengths`, note 0 is a
    rest, f0 is 0 on rests and on a few random frames (`uv = 1` there), `wav` has `T * hop` samples.
    Keys: phone_ids, note_pitch, note_dur, slur, phone_frames, phone_lengths, spec, frame_lengths,
    f0, uv, wav, speaker_id.
    """
    rng = torch.Generator().manual_seed(seed)
    n_phones = generator_args["n_phones"]
    hop = generator_args["hop_size"]
    batch, max_phones = len(phones_per_item), max(phones_per_item)
    phone_ids = torch.zeros(batch, max_phones, dtype=torch.long)
    note_pitch = torch.zeros(batch, max_phones, dtype=torch.long)
    note_dur = torch.zeros(batch, max_phones)
    slur = torch.zeros(batch, max_phones, dtype=torch.long)
    phone_frames = torch.zeros(batch, max_phones, dtype=torch.long)
    for b, n in enumerate(phones_per_item):
        phone_ids[b, :n] = torch.randint(1, n_phones, (n,), generator=rng)
        pitches = torch.randint(55, 75, (n,), generator=rng)
        pitches[0] = 0  # a leading rest
        note_pitch[b, :n] = pitches
        phone_frames[b, :n] = torch.randint(2, 5, (n,), generator=rng)
        note_dur[b, :n] = phone_frames[b, :n].float() * 2  # the note spans this phoneme and a neighbour
        slur[b, :n] = torch.randint(0, 2, (n,), generator=rng)
    frame_lengths = phone_frames.sum(1)
    n_frames = int(frame_lengths.max())
    frame_valid = torch.arange(n_frames).unsqueeze(0) < frame_lengths.unsqueeze(1)  # [B, T]
    f0 = torch.zeros(batch, n_frames)
    for b in range(batch):
        length = int(frame_lengths[b])
        pitch = torch.repeat_interleave(note_pitch[b], phone_frames[b]).float()  # [length]
        hz = 440.0 * 2 ** ((pitch - 69.0) / 12.0) * (1 + 0.02 * torch.randn(length, generator=rng))
        voiced = (pitch > 0) & (torch.rand(length, generator=rng) > 0.15)
        f0[b, :length] = torch.where(voiced, hz, torch.zeros_like(hz))
    uv = ((f0 == 0) & frame_valid).long()
    spec = torch.rand(batch, generator_args["spec_channels"], n_frames, generator=rng) * frame_valid.unsqueeze(1)
    wav = (torch.rand(batch, 1, n_frames * hop, generator=rng) - 0.5) * torch.repeat_interleave(frame_valid, hop, dim=1).unsqueeze(1)
    return dict(
        phone_ids=phone_ids,
        note_pitch=note_pitch,
        note_dur=note_dur,
        slur=slur,
        phone_frames=phone_frames,
        phone_lengths=torch.tensor(phones_per_item),
        spec=spec,
        frame_lengths=frame_lengths,
        f0=f0,
        uv=uv,
        wav=wav,
        speaker_id=torch.zeros(batch, dtype=torch.long),
    )


def generator_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The subset of a batch that `VISingerGenerator.forward` takes."""
    keys = ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "phone_lengths", "spec", "frame_lengths", "f0", "speaker_id")
    return {key: batch[key] for key in keys}


def score_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The subset of a batch that `VISingerGenerator.infer` takes (the score)."""
    keys = ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "phone_lengths", "speaker_id")
    return {key: batch[key] for key in keys}


def take_item(batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """Item `index` of a batch as a batch of one, its padding cut away."""
    n_phones = int(batch["phone_lengths"][index])
    n_frames = int(batch["frame_lengths"][index])
    hop = batch["wav"].size(2) // batch["spec"].size(2)
    item = {}
    for key, value in batch.items():
        value = value[index : index + 1]
        if key in ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames"):
            value = value[:, :n_phones]
        elif key in ("f0", "uv", "spec"):
            value = value[..., :n_frames]
        elif key == "wav":
            value = value[..., : n_frames * hop]
        item[key] = value
    return item
