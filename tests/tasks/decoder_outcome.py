"""The outcome check shared by the decoder tests: train a decoder briefly from ground-truth mels and F0 of
the demo corpus, then measure on the audio how much of a recording it sings at the recording's pitch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modules.losses import mel_l1_loss
from modules.waveform_decoder import WaveformDecoder
from preprocessor.audio import SpectrogramExtractor, extract_f0
from tasks.svs_dataset import SingingDataset

SR, HOP, SEGMENT = 16000, 160, 24
DEMO_FEATURES = dict(sample_rate=SR, n_fft=1024, hop_size=HOP, win_size=640, n_mels=80, fmin=20, fmax=8000)


def train_on_mels(decoder: WaveformDecoder, binary_dir: Path, updates: int, lr: float = 2e-3) -> list[dict]:
    """`updates` AdamW steps of mel L1 (plus the mel L1 of `source_wav` where the decoder has one) on random
    `SEGMENT`-frame windows of 4 demo train items, batch 4, seeded; returns those items."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = [SingingDataset(binary_dir, "train")[i] for i in range(4)]
    features = SpectrogramExtractor(**DEMO_FEATURES)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr, betas=(0.8, 0.99))
    for _ in range(updates):
        mels, f0s = [], []
        for _ in range(4):
            item = items[rng.integers(len(items))]
            start = int(rng.integers(item["mel"].shape[-1] - SEGMENT))
            mels.append(item["mel"][:, start : start + SEGMENT])
            f0s.append(item["f0"][start : start + SEGMENT])
        mel, f0 = torch.stack(mels), torch.stack(f0s)  # [B, 80, SEGMENT], [B, SEGMENT]
        out = decoder.decode(mel, f0=f0)
        loss = mel_l1_loss(features.mel(out.wav.squeeze(1)), mel)
        if out.source_wav is not None:
            loss = loss + mel_l1_loss(features.mel(out.source_wav.squeeze(1)), mel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return items


def sung_in_tune(decoder: WaveformDecoder, item: dict) -> tuple[float, int, np.ndarray]:
    """(share of the recording's voiced frames the render sings within 50 cents, voiced frames, the render)."""
    decoder.eval()
    frames = item["mel"].shape[-1]
    with torch.no_grad():
        wav = decoder(item["mel"][None], f0=item["f0"][None])[0, 0].numpy()
    reference = extract_f0(item["wav"].numpy(), SR, HOP, frames, 50, 1100, "parselmouth").f0_hz
    sung = extract_f0(wav, SR, HOP, frames, 50, 1100, "parselmouth").f0_hz
    voiced = reference > 0
    both = voiced & (sung > 0)
    cents = 1200 * np.abs(np.log2(sung[both] / reference[both]))
    return float(np.sum(cents < 50) / max(voiced.sum(), 1)), int(voiced.sum()), wav
