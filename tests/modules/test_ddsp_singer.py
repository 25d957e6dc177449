"""The DDSP singer's model: trainable and decodable, F0 held causally, padding-independent, statistics in the buffers."""
from __future__ import annotations

import torch

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.ddsp_singer import DDSPSinger, hold_voiced_f0
from modules.spectral_loss import MultiResolutionSpectralLoss

SR, HOP = 4000, 40


def tiny_singer(n_speakers: int = 1, reverb: int = 200) -> DDSPSinger:
    torch.manual_seed(0)
    return DDSPSinger(SR, HOP, harmonic_plus_noise_chain(8, 17, reverb), hidden_size=16, mlp_layers=1, n_speakers=n_speakers)


def test_unvoiced_frames_hold_the_last_voiced_f0_and_start_at_the_initial_pitch():
    f0 = torch.tensor([[0.0, 0.0, 200.0, 0.0, 0.0, 300.0, 0.0]])
    held = hold_voiced_f0(f0, torch.tensor([150.0]))
    assert held.tolist() == [[150.0, 150.0, 200.0, 200.0, 200.0, 300.0, 300.0]]


def test_trainable_and_decodable():
    singer = tiny_singer(n_speakers=2)
    f0 = torch.full((2, 30), 220.0)
    loudness = torch.full((2, 30), -30.0)
    target = torch.randn(2, 1, 30 * HOP) * 0.1
    loss_fn = MultiResolutionSpectralLoss((256, 64))
    out = singer(f0, loudness, torch.tensor([0, 1]))
    assert out.audio.shape == (2, 1, 30 * HOP) and set(out.signals) == {"harmonic", "noise", "mix", "reverb"}
    loss = loss_fn(out.audio, target)
    loss.backward()
    grads = {name: p.grad for name, p in singer.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["synth.processors.reverb.ir"].abs().sum() > 0 and grads["estimator.speaker_embedding.weight"].abs().sum() > 0
    singer.eval()
    with torch.no_grad():
        first, second = singer(f0, loudness, torch.tensor([0, 1])).audio, singer(f0, loudness, torch.tensor([0, 1])).audio
    assert torch.equal(first, second)  # eval renders depend on the inputs alone


def test_a_padded_batch_gives_each_item_its_samples_alone():
    singer = tiny_singer().eval()
    f0 = torch.linspace(180, 260, 40).unsqueeze(0).repeat(2, 1)
    loudness = torch.linspace(-50, -20, 40).unsqueeze(0).repeat(2, 1)
    mask = torch.ones(2, 1, 40)
    mask[1, :, 25:] = 0
    with torch.no_grad():
        batch = singer(f0, loudness, mask=mask).audio
        alone = singer(f0[1:, :25], loudness[1:, :25]).audio
    assert torch.allclose(batch[1, :, : 25 * HOP], alone[0], atol=1e-5)
    assert batch[1, :, 25 * HOP :].abs().max() == 0


def test_statistics_live_in_the_state_dict():
    singer = tiny_singer()
    stats = {"loudness_mean": -33.0, "loudness_std": 7.0, "pitch_mean_midi": 64.0, "pitch_std_midi": 3.0,
             "loudness_quantiles": list(range(101)), "voiced_loudness_quantiles": [float(-i) for i in range(101)][::-1]}  # fmt: skip
    singer.set_statistics(stats)
    fresh = tiny_singer()
    fresh.load_state_dict(singer.state_dict())
    assert fresh.statistics() == singer.statistics()
    assert fresh.statistics()["pitch_mean_midi"] == 64.0
