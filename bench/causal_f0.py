"""The live DDSP singer's causal trackers vs the offline ones, on a recording: agreement, lag and cost per block.

    python bench/causal_f0.py --wav ../shared/data/csd_early/wav/headshoulder_kr_0u.wav [--config config/models/ddsp_singer_demo.yaml] [--block_frames 1]

At the config's audio settings (rate, hop, F0 range, loudness window): `preprocessor.causal_features.CausalYin`
and `CausalLoudness` fed block by block, compared with the offline tracker (`audio.f0_extractor`, Praat by
default) and the offline loudness, each causal track shifted back by its stated lag (rounded to frames):
voicing agreement, share of the frames voiced in both within 50 cents, median cents, loudness median
absolute difference over audible frames; and the median wall / CPU time of one block of both trackers.
Prints the load average: on a shared machine the times are upper bounds.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "config" / "models" / "ddsp_singer_demo.yaml")
    parser.add_argument("--block_frames", type=int, default=1)
    args = parser.parse_args()
    from config.loader import config_section, load_config
    from preprocessor.audio import AudioSettings, extract_f0, load_wav
    from preprocessor.audio_folder import AudioFolderSettings
    from preprocessor.causal_features import CausalLoudness, CausalYin
    from preprocessor.loudness import a_loudness_db

    config = load_config(args.config)
    a = config_section(config, AudioSettings, "audio")
    n_fft = config_section(config, AudioFolderSettings, "audio_folder").loudness_n_fft
    wav = load_wav(args.wav, a.sample_rate)
    size = args.block_frames * a.hop_size
    wav = wav[: len(wav) // size * size]
    frames = len(wav) // a.hop_size
    pitch, loudness = CausalYin(a.sample_rate, a.hop_size, a.f0_min, a.f0_max), CausalLoudness(a.sample_rate, a.hop_size, n_fft)
    f0_parts, loud_parts, walls, cpus = [], [], [], []
    for start in range(0, len(wav), size):
        block = wav[start : start + size]
        wall, cpu = time.perf_counter(), time.process_time()
        f0_parts.append(pitch.push(block))
        loud_parts.append(loudness.push(block))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    causal_f0, causal_loudness = np.concatenate(f0_parts), np.concatenate(loud_parts)
    offline_f0 = extract_f0(wav, a.sample_rate, a.hop_size, frames, a.f0_min, a.f0_max, a.f0_extractor).f0_hz
    offline_loudness = a_loudness_db(wav, a.sample_rate, a.hop_size, n_fft)
    pitch_lag, loudness_lag = round(pitch.lag_samples / a.hop_size), round(loudness.lag_samples / a.hop_size)
    c, o = causal_f0[pitch_lag:], offline_f0[: frames - pitch_lag]
    both = (c > 0) & (o > 0)
    cents = np.abs(1200 * np.log2(c[both] / o[both]))
    cl, ol = causal_loudness[loudness_lag:], offline_loudness[: frames - loudness_lag]
    audible = ol > -70
    block_ms = 1000 * size / a.sample_rate
    print(f"{args.wav.name}: {frames} frames at {a.sample_rate} Hz / hop {a.hop_size}; offline tracker {a.f0_extractor}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"pitch: lag {pitch.lag_samples:.0f} samples ({1000 * pitch.lag_samples / a.sample_rate:.1f} ms, shifted {pitch_lag} frames); "
          f"voicing agrees on {float(((c > 0) == (o > 0)).mean()):.1%} of frames (offline voiced {float((o > 0).mean()):.1%}, causal {float((c > 0).mean()):.1%}); "
          f"of the {int(both.sum())} frames voiced in both, {float((cents < 50).mean()):.1%} within 50 cents (median {float(np.median(cents)):.1f} cents)")  # fmt: skip
    print(f"loudness: lag {loudness.lag_samples:.0f} samples ({1000 * loudness.lag_samples / a.sample_rate:.1f} ms, shifted {loudness_lag} frames); "
          f"median |causal - offline| {float(np.median(np.abs(cl[audible] - ol[audible]))):.2f} dB over {int(audible.sum())} audible frames")  # fmt: skip
    print(f"cost of one {args.block_frames}-frame block ({block_ms:g} ms) of both trackers: median wall {1000 * statistics.median(walls):.3f} ms, "
          f"CPU {1000 * statistics.median(cpus):.3f} ms (real-time factor {statistics.median(walls) * 1000 / block_ms:.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
