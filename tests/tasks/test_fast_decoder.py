"""Outcome test of the fast decoder (`istft`, visinger_fast*.yaml): trained briefly from ground-truth mels
and F0, it sings at the recording's pitch and follows its spectrum (as the source-excited test)."""
from __future__ import annotations

import torch

from modules.istft_decoder import ISTFTDecoder
from modules.losses import mel_l1_loss
from preprocessor.audio import SpectrogramExtractor
from tests.tasks.decoder_outcome import DEMO_FEATURES, HOP, SR, sung_in_tune, train_on_mels


def test_fast_decoder_sings_in_tune_after_150_updates(demo_binary_dir):
    torch.manual_seed(0)
    # The demo config's decoder (config/models/visinger_fast_demo.yaml), fed with mels instead of latents.
    decoder = ISTFTDecoder(80, HOP, SR, channels=128, intermediate_channels=384, n_layers=4, n_fft=640)
    items = train_on_mels(decoder, demo_binary_dir, updates=150)
    in_tune, voiced, wav = sung_in_tune(decoder, items[0])
    assert voiced > 100 and in_tune > 0.9, f"only {in_tune:.0%} of the {voiced} voiced frames within 50 cents"
    mel_error = float(mel_l1_loss(SpectrogramExtractor(**DEMO_FEATURES).mel(torch.from_numpy(wav)[None]), items[0]["mel"][None]))
    assert mel_error < 1.0, f"mel L1 {mel_error:.2f}: the render does not follow the recording's spectrum"
