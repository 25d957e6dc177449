"""How far the expressive controls move the audio: the render's measured energy and breathiness per asked offset.

    python bench/variance_controls.py --ckpt checkpoints/demo_controls --score song.mid [--lyrics song.txt] \
        --energy_db -6 -3 3 6 --breathiness_db -6 6

Sings the score once plainly and once per offset (same seed) with a model trained with
`model.variance_controls: true`, then measures on each render, over the frames where the plain render
is voiced (Praat) and sung: the energy (RMS dB, `preprocessor.audio.frame_energy`) and the breathiness
(WORLD aperiodic RMS dB, `preprocessor.variance.frame_breathiness`, with the plain render's F0), and
prints the median change against the plain render beside the change asked for, and the change of the
whole render's RMS.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from bench.machine import machine_line  # noqa: E402


def measure(wav: np.ndarray, f0_hz: np.ndarray, audio) -> tuple[np.ndarray, np.ndarray]:
    from preprocessor.audio import frame_energy
    from preprocessor.variance import frame_breathiness

    n = len(f0_hz)
    wav = wav[: n * audio.hop_size]
    return frame_energy(wav, audio.hop_size, audio.win_size, n), frame_breathiness(wav, audio.sample_rate, audio.hop_size, audio.win_size, f0_hz)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--score", type=Path, required=True)
    parser.add_argument("--lyrics", type=Path)
    parser.add_argument("--energy_db", type=float, nargs="*", default=[-6.0, -3.0, 3.0, 6.0])
    parser.add_argument("--breathiness_db", type=float, nargs="*", default=[-6.0, 6.0])
    args = parser.parse_args()

    import torch

    from inference.api import Singer
    from inference.plot import measured_f0

    torch.set_num_threads(1)
    singer = Singer.load(args.ckpt, device="cpu")
    audio = singer.audio
    print(machine_line())
    plain = singer.sing(args.score, args.lyrics)
    f0 = measured_f0(plain.synthesis, audio)
    voiced = (f0 > 0) & (plain.synthesis.f0_hz > 0)
    energy0, breath0 = measure(plain.wav, f0, audio)
    rms0 = 20 * np.log10(np.sqrt(np.mean(plain.wav**2)))
    print(f"model {singer.source}; score {args.score}; {int(voiced.sum())} voiced frames measured")
    print(f"{'asked':>22s} | {'energy change dB':>17s} | {'breathiness change dB':>22s} | {'whole-render RMS change dB':>27s}")
    cases = [("energy", v) for v in args.energy_db] + [("breathiness", v) for v in args.breathiness_db]
    for name, value in cases:
        sung = singer.sing(args.score, args.lyrics, **{f"{name}_db": value})
        energy, breath = measure(sung.wav, f0, audio)
        rms = 20 * np.log10(np.sqrt(np.mean(sung.wav**2)))
        de, db = np.median((energy - energy0)[voiced]), np.median((breath - breath0)[voiced])
        print(f"{name + f' {value:+.1f} dB':>22s} | {de:+17.2f} | {db:+22.2f} | {rms - rms0:+27.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
