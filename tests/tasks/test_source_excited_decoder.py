"""Outcome test of the source-excited decoder (`nsf_hifigan`): trained briefly from ground-truth mels and
F0, it sings at the recording's pitch. A plain HiFi-GAN of the same size still buzzes at the frame
rate after thousands of such updates, which is why the demo configs sing at the F0."""
from __future__ import annotations

import torch

from modules.hifigan import HiFiGANGenerator
from tests.tasks.decoder_outcome import HOP, SR, sung_in_tune, train_on_mels


def test_source_excited_decoder_sings_in_tune_after_150_updates(demo_binary_dir):
    torch.manual_seed(0)
    # The demo config's decoder, fed with mels instead of latents.
    decoder = HiFiGANGenerator(
        80, HOP, 96, (5, 4, 4, 2), (10, 8, 8, 4), "2", (3, 5), ((1, 3), (1, 3)), harmonic_source=True, sample_rate=SR, n_harmonics=32
    )
    items = train_on_mels(decoder, demo_binary_dir, updates=150)
    in_tune, voiced, _ = sung_in_tune(decoder, items[0])
    assert voiced > 100 and in_tune > 0.8, f"only {in_tune:.0%} of the {voiced} voiced frames within 50 cents"
