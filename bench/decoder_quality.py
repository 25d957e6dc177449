"""The decoders' quality at an equal, small budget, side by side: copy synthesis on the demo corpus.

    python bench/decoder_quality.py --updates 200 --decoders nsf_hifigan istft ddsp hifigan

A proxy for the whole-model comparison (each demo config trained for 750 updates and `--infer`, see
docs/BENCHMARKS.md) that costs a few CPU minutes per decoder: each decoder of its demo config
(bench/decoders.py's table) is built with the demo's 80 mel bins as its input instead of the latent,
trained for `--updates` AdamW updates (lr 2e-3, batch `--batch` random `--segment`-frame windows of
the demo train split, the recording's F0) on the task's reconstruction terms — mel L1 of the output
plus, for decoders with a synthesiser of their own, mel L1 of its waveform (both weight 1; no
discriminator) — with the same seed and the same windows for every decoder. Then it renders every
item of the demo test split from its ground-truth mel and F0 and scores it with `inference.metrics`
against the recording (MCD, F0 RMSE, semitone accuracy, V/UV error, and "in tune": voiced frames of
the render within 50 cents of the score's note), means over items as `--infer` reports them.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.decoders import DECODER_CONFIGS  # noqa: E402
from bench.inference_speed import machine  # noqa: E402
from config.loader import config_section, load_config  # noqa: E402
from inference.metrics import evaluate_pair, summarize  # noqa: E402
from modules.losses import mel_l1_loss  # noqa: E402
from modules.visinger import build_decoder  # noqa: E402
from preprocessor.audio import AudioSettings, SpectrogramExtractor  # noqa: E402
from tasks.svs_dataset import SingingDataset  # noqa: E402
from tasks.visinger_task import generator_config_from  # noqa: E402


def train_and_score(decoder: str, binary_dir: Path, updates: int, batch: int, segment: int, seed: int) -> dict:
    config_path, hparams = DECODER_CONFIGS[decoder][1]
    cfg = load_config(REPO_ROOT / config_path, hparams or None)
    audio = config_section(cfg, AudioSettings, "audio")
    generator_config = dataclasses.replace(generator_config_from(cfg), inter_channels=audio.n_mels)
    torch.manual_seed(seed)
    model = build_decoder(generator_config)
    features = SpectrogramExtractor(audio.sample_rate, audio.n_fft, audio.hop_size, audio.win_size, audio.n_mels, audio.fmin, audio.fmax)
    train = SingingDataset(binary_dir, "train")
    items = [train[i] for i in range(len(train))]
    items = [item for item in items if item["mel"].shape[-1] > segment]
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.8, 0.99))
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(updates):
        mels, f0s = [], []
        for _ in range(batch):
            item = items[rng.integers(len(items))]
            start = int(rng.integers(item["mel"].shape[-1] - segment))
            mels.append(item["mel"][:, start : start + segment])
            f0s.append(item["f0"][start : start + segment])
        mel, f0 = torch.stack(mels), torch.stack(f0s)
        out = model.decode(mel, f0=f0)
        loss = mel_l1_loss(features.mel(out.wav.squeeze(1)), mel)
        if out.source_wav is not None:
            loss = loss + mel_l1_loss(features.mel(out.source_wav.squeeze(1)), mel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds_per_update = (time.perf_counter() - started) / max(updates, 1)
    model.eval()
    scores = []
    test = SingingDataset(binary_dir, "test")
    for index in range(len(test)):
        item = test[index]
        with torch.no_grad():
            wav = model(item["mel"][None], f0=item["f0"][None])[0, 0].numpy()
        score_pitch = torch.repeat_interleave(item["note_pitch"], item["phone_frames"]).numpy()
        scores.append(evaluate_pair(item["wav"].numpy(), wav, audio.sample_rate, audio.hop_size, audio.f0_min, audio.f0_max, audio.f0_extractor, score_pitch))
    summary = summarize(scores)
    summary["seconds_per_update"] = seconds_per_update
    summary["decoder_parameters"] = sum(p.numel() for p in model.parameters())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoders", nargs="+", default=list(DECODER_CONFIGS), choices=list(DECODER_CONFIGS))
    parser.add_argument("--binary_dir", default=str(REPO_ROOT / "data/binary/demo"), help="the binarized demo corpus (tools/run_demo.sh makes it)")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--segment", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    rows = {}
    for decoder in args.decoders:
        rows[decoder] = train_and_score(decoder, Path(args.binary_dir), args.updates, args.batch, args.segment, args.seed)
        print(f"  {decoder}: done (load {os.getloadavg()[0]:.1f}): {json.dumps(rows[decoder])}", file=sys.stderr)
    print(f"\nCopy synthesis on the demo test split after {args.updates} updates (batch {args.batch} x {args.segment} frames, mel L1 only)\n")
    print("| decoder | params | MCD (dB) | log-F0 RMSE (cents) | semitone acc. | V/UV error | in tune | s / update |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for decoder, s in rows.items():
        print(
            f"| `{decoder}` | {s['decoder_parameters'] / 1e6:.2f} M | {s['mcd_db']:.2f} | {s['f0_rmse_cents']:.0f} | {100 * s['semitone_accuracy']:.1f} % "
            f"| {100 * s['vuv_error']:.1f} % | {100 * s['in_tune_share']:.1f} % | {s['seconds_per_update']:.2f} |"
        )
    print(f"load average at the end {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")


if __name__ == "__main__":
    main()
