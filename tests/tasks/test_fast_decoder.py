"""Outcome test of the fast decoder (`istft`, the demo's): trained briefly from ground-truth mels and F0, it
sings at the recording's pitch (as tests/tasks/test_source_excited_decoder.py for the source-excited one)."""
from __future__ import annotations

import numpy as np
import torch

from modules.istft_decoder import ISTFTDecoder
from modules.losses import mel_l1_loss
from preprocessor.audio import SpectrogramExtractor, extract_f0
from tasks.svs_dataset import SingingDataset

SR, HOP, SEGMENT = 16000, 160, 24


def test_fast_decoder_sings_in_tune_after_150_updates(demo_binary_dir):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = [SingingDataset(demo_binary_dir, "train")[i] for i in range(4)]
    features = SpectrogramExtractor(SR, 1024, HOP, 640, 80, 20, 8000)
    # The demo config's decoder (config/models/visinger_fast_demo.yaml), fed with mels instead of latents.
    decoder = ISTFTDecoder(80, HOP, SR, channels=128, intermediate_channels=384, n_layers=4, n_fft=640)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=2e-3, betas=(0.8, 0.99))
    for _ in range(150):
        mels, f0s = [], []
        for _ in range(4):
            item = items[rng.integers(len(items))]
            start = int(rng.integers(item["mel"].shape[-1] - SEGMENT))
            mels.append(item["mel"][:, start : start + SEGMENT])
            f0s.append(item["f0"][start : start + SEGMENT])
        mel, f0 = torch.stack(mels), torch.stack(f0s)  # [B, 80, SEGMENT], [B, SEGMENT]
        loss = mel_l1_loss(features.mel(decoder(mel, f0=f0).squeeze(1)), mel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    decoder.eval()
    item = items[0]
    frames = item["mel"].shape[-1]
    with torch.no_grad():
        wav = decoder(item["mel"][None], f0=item["f0"][None])[0, 0].numpy()
    reference = extract_f0(item["wav"].numpy(), SR, HOP, frames, 50, 1100, "parselmouth").f0_hz
    sung = extract_f0(wav, SR, HOP, frames, 50, 1100, "parselmouth").f0_hz
    voiced = reference > 0
    both = voiced & (sung > 0)
    cents = 1200 * np.abs(np.log2(sung[both] / reference[both]))
    in_tune = np.sum(cents < 50) / voiced.sum()
    assert voiced.sum() > 100 and in_tune > 0.9, f"only {in_tune:.0%} of the {voiced.sum()} voiced frames within 50 cents"
    mel_error = float(mel_l1_loss(features.mel(torch.from_numpy(wav)[None]), item["mel"][None]))
    assert mel_error < 1.0, f"mel L1 {mel_error:.2f}: the render does not follow the recording's spectrum"
