"""How far the expressive controls move the audio: the render's measured energy and breathiness per asked offset.

    python bench/variance_controls.py --ckpt checkpoints/demo_controls --score song.mid [--lyrics song.txt] \
        --energy_db -6 -3 3 6 --breathiness_db -6 6 [--variance_matching off change absolute]

For each matching mode (`inference.variance_matching`: off = only the prior reads the curves; change =
the asked change imposed on the render; absolute = every render levelled to the sung curves), sings the
score once plainly and once per offset (same seed) with a model trained with
`model.variance_controls: true`, then measures on each render, over the frames where the plain render
is voiced (Praat) and sung: the energy (RMS dB, `preprocessor.audio.frame_energy`) and the breathiness
(WORLD aperiodic RMS dB, `preprocessor.variance.frame_breathiness`, with the plain render's F0), and
prints the median change against the plain render (of the same mode) beside the change asked for, the
change of the whole render's RMS and, per mode, how far the plain render is from the plain render
without matching (sample RMS of the difference, dB below the signal) and the median |measured - sung|
of the plain render's levels.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import time  # noqa: E402

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
    parser.add_argument("--variance_matching", nargs="*", default=["off", "change", "absolute"], choices=("off", "change", "absolute"))
    args = parser.parse_args()

    import torch

    from inference.api import Singer
    from inference.plot import measured_f0

    torch.set_num_threads(1)
    singer = Singer.load(args.ckpt, device="cpu")
    audio = singer.audio
    print(machine_line())
    reference = singer.sing(args.score, args.lyrics, variance_matching="off")
    f0 = measured_f0(reference.synthesis, audio)
    voiced = (f0 > 0) & (reference.synthesis.f0_hz > 0)
    print(f"model {singer.source}; score {args.score}; {int(voiced.sum())} voiced frames measured")
    for mode in args.variance_matching:
        started = time.perf_counter()
        plain = singer.sing(args.score, args.lyrics, variance_matching=mode)
        energy0, breath0 = measure(plain.wav, f0, audio)
        rms0 = 20 * np.log10(np.sqrt(np.mean(plain.wav**2)))
        sung = np.concatenate([v[:, p.trim_start : p.trim_start + p.body_frames] for v, p in zip(plain.synthesis.phrase_variance_db, plain.plan.phrases)], axis=1)
        off_by = np.abs(np.stack([energy0, breath0]) - sung[:, : len(f0)])[:, voiced]
        difference = np.sqrt(np.mean((plain.wav - reference.wav) ** 2))
        changed = "is matching-off's, sample for sample" if difference == 0 else (
            f"differs from matching-off by {20 * np.log10(difference / np.sqrt(np.mean(reference.wav**2))):+.1f} dB (re. its RMS)"
        )  # fmt: skip
        print(
            f"\n## variance_matching={mode}: plain render {changed}; "
            f"median |measured - sung| on the plain render: energy {np.median(off_by[0]):.2f} dB, breathiness {np.median(off_by[1]):.2f} dB"
        )  # fmt: skip
        print(f"{'asked':>22s} | {'energy change dB':>17s} | {'breathiness change dB':>22s} | {'whole-render RMS change dB':>27s}")
        cases = [("energy", v) for v in args.energy_db] + [("breathiness", v) for v in args.breathiness_db]
        for name, value in cases:
            sung = singer.sing(args.score, args.lyrics, variance_matching=mode, **{f"{name}_db": value})
            energy, breath = measure(sung.wav, f0, audio)
            rms = 20 * np.log10(np.sqrt(np.mean(sung.wav**2)))
            de, db = np.median((energy - energy0)[voiced]), np.median((breath - breath0)[voiced])
            print(f"{name + f' {value:+.1f} dB':>22s} | {de:+17.2f} | {db:+22.2f} | {rms - rms0:+27.2f}")
        print(f"({len(cases) + 1} renders in {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
