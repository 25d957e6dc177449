"""Timbre transfer outcome: does the voice sing the input's pitch and follow its loudness?

    python bench/ddsp_transfer.py --exp_name demo_ddsp --wav ../shared/data/csd_early/wav/headshoulder_kr_0u.wav
                                  [--octave_shift -1] [--loudness_stats]

Transfers the recording twice (`--autotune 0` and `--autotune 1`, the other controls as given) and measures
on the output audio, with the same F0 tracker and loudness meter as training:
- pitch: share of the voiced output frames (voiced in the input too) within 50 cents of the input's F0
  times 2**octave_shift;
- loudness: Pearson correlation between the input's loudness and the output's, over the frames where
  the input is not silence (above -70 dB);
- autotune: share of the voiced output frames within 10 cents of a semitone, with `--autotune 1` and,
  for comparison, with 0; and the same share away from note changes (more than 3 frames from a step of the
  sung pitch curve: Praat's window, 3 periods of `audio.f0_min`, straddles two notes there).
With `--causal`, the same pitch and loudness measures for the live path (`--autotune 0`, no loudness statistics:
the live path refuses them), its output shifted back by its stated lag (rounded to frames).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

SILENCE_DB = -70.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exp_name", help="an experiment (its best checkpoint, else the latest)")
    source.add_argument("--ckpt", type=Path, help="a checkpoint file or pack folder")
    parser.add_argument("--work_dir_root", type=Path, default=REPO_ROOT / "checkpoints")
    parser.add_argument("--wav", type=Path, required=True)
    parser.add_argument("--octave_shift", type=float, default=0.0)
    parser.add_argument("--loudness_stats", action="store_true")
    parser.add_argument("--out_dir", type=Path, help="also write the two transfers here")
    parser.add_argument("--causal", action="store_true", help="also the live path: F0 and loudness tracked block by block (Singer.stream(causal=True))")
    parser.add_argument("--block_frames", type=int, default=1, help="block size of the live path")
    return parser


def semitone_share(f0_hz: np.ndarray, cents: float) -> float:
    from preprocessor.audio import hz_to_midi

    midi = hz_to_midi(f0_hz[f0_hz > 0])
    return float((np.abs(midi - np.round(midi)) * 100 < cents).mean()) if len(midi) else float("nan")


def main() -> int:
    args = build_parser().parse_args()
    from inference.api import Singer
    from preprocessor.audio import extract_f0
    from preprocessor.loudness import a_loudness_db

    voice = Singer.load(args.work_dir_root / args.exp_name if args.exp_name else args.ckpt, device="cpu")
    audio = voice.audio
    print(f"model {voice.source}; input {args.wav}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for amount in (0.0, 1.0):
        result = voice.transfer(args.wav, autotune=amount, octave_shift=args.octave_shift, loudness_stats=args.loudness_stats)
        if args.out_dir:
            result.write(args.out_dir / f"{args.wav.stem}_autotune{amount:g}.wav")
        frames = len(result.wav) // audio.hop_size
        sung = extract_f0(result.wav, audio.sample_rate, audio.hop_size, frames, audio.f0_min, audio.f0_max, audio.f0_extractor).f0_hz
        target = result.tracks.f0_input[:frames] * 2.0**args.octave_shift
        both = (sung > 0) & (target > 0)
        cents = np.abs(1200 * np.log2(sung[both] / target[both]))
        loud_in = result.tracks.loudness_input[:frames]
        loud_out = a_loudness_db(result.wav, audio.sample_rate, audio.hop_size, voice.loudness_n_fft)[:frames]
        audible = loud_in > SILENCE_DB
        correlation = float(np.corrcoef(loud_in[audible], loud_out[audible])[0, 1])
        sung_midi_steps = np.abs(np.diff(np.round(12 * np.log2(np.maximum(result.tracks.f0_output[:frames], 1e-3) / 440.0)))) > 0
        near_change = np.zeros(frames, bool)
        for offset in range(-3, 4):
            near_change |= np.roll(np.concatenate([sung_midi_steps, [False]]), offset)
        print(
            f"autotune {amount:g}: output voiced on {float((sung > 0).mean()):.1%} of frames (input {float((target > 0).mean()):.1%}); "
            f"within 50 cents of the input F0 x 2^{args.octave_shift:g}: {float((cents < 50).mean()):.1%} of {int(both.sum())} frames "
            f"(median {float(np.median(cents)):.1f} cents); loudness correlation {correlation:.3f} over {int(audible.sum())} frames; "
            f"within 10 cents of a semitone: output {semitone_share(sung, 10):.1%} (away from note changes {semitone_share(sung[~near_change], 10):.1%}), "
            f"input {semitone_share(result.tracks.f0_input, 10):.1%}"
        )
    if args.causal:
        live = voice.live(args.block_frames, octave_shift=args.octave_shift)
        lag = round(live.lag_frames)
        wav = np.concatenate(list(voice.stream(args.wav, block_frames=args.block_frames, octave_shift=args.octave_shift, causal=True)))
        reference = voice.transfer(args.wav, octave_shift=args.octave_shift)  # for the input's offline tracks
        frames = min(len(wav) // audio.hop_size - lag, len(reference.tracks.f0_input))
        sung = extract_f0(wav, audio.sample_rate, audio.hop_size, len(wav) // audio.hop_size, audio.f0_min, audio.f0_max, audio.f0_extractor).f0_hz[lag : lag + frames]
        target = reference.tracks.f0_input[:frames] * 2.0**args.octave_shift
        both = (sung > 0) & (target > 0)
        cents = np.abs(1200 * np.log2(sung[both] / target[both]))
        loud_in = reference.tracks.loudness_input[:frames]
        loud_out = a_loudness_db(wav, audio.sample_rate, audio.hop_size, voice.loudness_n_fft)[lag : lag + frames]
        audible = loud_in > SILENCE_DB
        print(
            f"live (causal tracker, {args.block_frames}-frame blocks, output {live.lag_frames:.2f} frames behind, shifted back {lag}): "
            f"output voiced on {float((sung > 0).mean()):.1%}; within 50 cents of the input F0 x 2^{args.octave_shift:g}: "
            f"{float((cents < 50).mean()):.1%} of {int(both.sum())} frames (median {float(np.median(cents)):.1f} cents); "
            f"loudness correlation {float(np.corrcoef(loud_in[audible], loud_out[audible])[0, 1]):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
