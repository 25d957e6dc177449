"""The harmonic-plus-noise source of the source-excited HiFi-GAN: determinism of its noise, the decoder's
F0 contract and its excitation output (the synthesis itself: tests/modules/ddsp/test_harmonic.py)."""
from __future__ import annotations

import pytest
import torch

from modules.harmonic_source import HarmonicNoiseSynth
from modules.hifigan import HiFiGANGenerator

SR, HOP = 16000, 160


def test_noise_is_fixed_at_inference_and_random_in_training():
    torch.manual_seed(0)
    synth = HarmonicNoiseSynth(in_channels=3, sample_rate=SR, hop_size=HOP, n_harmonics=3)
    x, f0 = torch.randn(1, 3, 10), torch.zeros(1, 10)  # unvoiced: the output is the noise alone
    synth.train()
    assert not torch.equal(synth(x, f0), synth(x, f0))
    synth.eval()
    first = synth(x, f0)
    assert torch.equal(first, synth(x, f0)) and first.abs().max() > 0


def test_source_excited_decoder_needs_f0_and_returns_its_excitation():
    torch.manual_seed(0)
    decoder = HiFiGANGenerator(
        in_channels=8, hop_size=300, upsample_initial_channel=32, upsample_rates=(5, 5, 4, 3), upsample_kernel_sizes=(10, 10, 8, 6),
        resblock_type="2", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), harmonic_source=True, sample_rate=24000,
        n_harmonics=4,
    )  # fmt: skip
    z = torch.randn(2, 8, 9)
    with pytest.raises(ValueError, match="pass f0"):
        decoder(z)
    with pytest.raises(ValueError, match="pass f0"):
        decoder(z, f0=torch.full((2, 8), 200.0))
    out = decoder.decode(z, f0=torch.full((2, 9), 200.0))
    assert out.wav.shape == out.source_wav.shape == (2, 1, 9 * 300)  # odd rates (5, 5, 3): the strided source convs fit exactly
    plain = HiFiGANGenerator(in_channels=8, hop_size=300, upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),))
    assert plain.decode(z).source_wav is None and plain(z).shape == (2, 1, 2700)
