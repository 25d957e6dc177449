"""Learnt reverb: the output keeps the input's length, an impulse returns dry + IR, it is causal and masked,
and the IR learns (gradients reach it)."""
from __future__ import annotations

import torch

from modules.ddsp.reverb import LearntReverb

SR, HOP = 16000, 160


def test_impulse_returns_dry_plus_room_cut_to_the_input_length():
    reverb = LearntReverb(SR, HOP, ir_length=3000)
    impulse = torch.zeros(1, 1, 10 * HOP)  # 1600 samples: shorter than the IR, whose tail is cut
    impulse[..., 0] = 1.0
    out = reverb(impulse)
    assert out.shape == impulse.shape
    expected = reverb.impulse_response().detach()[: 10 * HOP].clone()
    expected[0] += 1.0  # the dry path; the IR's own first tap is held at 0
    torch.testing.assert_close(out[0, 0].detach(), expected, rtol=0, atol=1e-5)
    assert reverb.impulse_response()[0] == 0


def test_wet_only_reverb_uses_the_whole_ir():
    reverb = LearntReverb(SR, HOP, ir_length=200, add_dry=False)
    impulse = torch.zeros(1, 1, 4 * HOP)
    impulse[..., 0] = 1.0
    out = reverb(impulse)[0, 0].detach()
    torch.testing.assert_close(out[:200], reverb.ir.detach(), rtol=0, atol=1e-5)
    assert torch.all(out[200:].abs() < 1e-5)


def test_causal_masked_and_padding_invariant():
    torch.manual_seed(0)
    reverb = LearntReverb(SR, HOP, ir_length=800, initial_gain=0.5)
    lengths = [12, 5]
    audio = torch.randn(2, 1, 12 * HOP)
    mask = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).float().unsqueeze(1)
    batch = reverb(audio, mask).detach()
    for row, length in enumerate(lengths):
        alone = reverb(audio[row : row + 1, :, : length * HOP]).detach()
        torch.testing.assert_close(batch[row : row + 1, :, : length * HOP], alone, rtol=0, atol=1e-5)
        assert torch.all(batch[row, :, length * HOP :] == 0)


def test_the_room_is_learnt():
    reverb = LearntReverb(SR, HOP, ir_length=400)
    audio = torch.randn(1, 1, 8 * HOP)
    reverb(audio).pow(2).mean().backward()
    assert reverb.ir.grad is not None and torch.isfinite(reverb.ir.grad).all() and reverb.ir.grad[1:].abs().sum() > 0
