"""Timbre transfer: sing any recording's pitch and loudness with a trained DDSP singer.

    python inference/transfer.py --exp_name demo_ddsp --wav in.wav --out out.wav [--plot]
    python inference/transfer.py --ckpt packed/demo_ddsp --wav in.wav --out out.wav --autotune 1 --octave_shift -1
    python inference/transfer.py --exp_name demo_ddsp --wav in.wav --out out.wav --loudness_stats --mask_threshold 1 --attenuation 10
    python inference/transfer.py --exp_name demo_ddsp --wav in.wav --out out.wav --stream --block_frames 2   # the real-time path
    python inference/transfer.py --exp_name demo_ddsp --wav in.wav --out out.wav --stream --causal          # live: F0 tracked block by block
    python inference/transfer.py --exp_name demo_ddsp --export_torchscript stream.pt --block_frames 1         # for a plug-in host
    python inference/transfer.py --pack demo_ddsp --out packed/demo_ddsp          # a self-contained folder

`--ckpt` takes a runner checkpoint or a pack folder (`model_io`'s pack: `model.pt` + `README.md`; the
first DDSP pack format, `ddsp_singer.pt` + `config.yaml`, still loads; `--pack` writes the new one). The
work is `inference.api.Singer.transfer`. The input may be any rate, mono or stereo, wav/flac/mp3/ogg. Exit code 2 with one line on a bad input; no partial wav is left behind.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.devices import DEFAULT_DEVICE, DEVICE_HELP  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--exp_name", help="experiment under --work_dir_root (best checkpoint, else latest)")
    source.add_argument("--ckpt", type=Path, help="a checkpoint file or a packed model folder")
    source.add_argument("--pack", metavar="EXP_NAME", help="write the experiment as a self-contained folder to --out and exit")
    parser.add_argument("--work_dir_root", type=Path, default=None, help="where experiments live (default: $SVS_CHECKPOINTS_ROOT, else ./checkpoints)")
    parser.add_argument("--wav", type=Path, help="the recording to transfer")
    parser.add_argument("--out", type=Path, help="output .wav (a folder for --pack)")
    parser.add_argument("--autotune", type=float, default=0.0, help="0 = pitch untouched .. 1 = snapped to the nearest semitone (or --score's notes)")
    parser.add_argument("--score", type=Path, help="a score whose melody --autotune snaps to: MIDI (lyrics not needed), MusicXML, UST, USTX or DS")
    parser.add_argument("--octave_shift", type=float, default=0.0, help="shift the pitch by this many octaves")
    parser.add_argument("--loudness_db", type=float, default=0.0, help="shift the loudness by this many dB")
    parser.add_argument("--loudness_stats", action="store_true", help="map the input's loudness distribution onto the model's training distribution")
    parser.add_argument("--mask_threshold", type=float, help="note-on mask: frames whose note-on ratio is below this are attenuated (1.0 = mean loudness)")
    parser.add_argument("--attenuation", type=float, default=1.0, help="dB taken off the frames outside notes (scaled by how far below the threshold)")
    parser.add_argument("--speaker", type=int, default=0, help="speaker id of a multi-speaker model")
    parser.add_argument("--stream", action="store_true", help="render block by block through the real-time path (same samples as offline)")
    parser.add_argument("--causal", action="store_true", help="with --stream: track F0 and loudness block by block from the audio (no look-ahead; live)")
    parser.add_argument("--block_frames", type=int, default=1, help="frames per real-time block (1 frame = one hop, 10 ms in the demo)")
    parser.add_argument("--export_torchscript", type=Path, metavar="FILE", help="write the real-time stream as TorchScript (for --block_frames) and exit")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP + "; --stream and --export_torchscript run on the CPU")
    parser.add_argument("--plot", action="store_true", help="also write a PNG beside the wav: spectrograms, loudness, F0 curves, the mask")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    from inference.api import Singer
    from model_io.checkpoint_file import work_dir_for

    if args.block_frames < 1:
        raise UserInputError(f"--block_frames {args.block_frames}: a block must hold at least one frame (1 frame = one hop); pass 1 or more")
    if args.pack:
        if args.out is None:
            raise UserInputError("--pack: pass --out DIR, the folder to write")
        singer = Singer.load(work_dir_for(args.pack, args.work_dir_root), device=args.device)
        print(f"packed {singer.source} -> {singer.pack(args.out)}")
        return 0
    if args.exp_name is None and args.ckpt is None:
        raise UserInputError("no model: pass --exp_name NAME or --ckpt PATH")
    source = work_dir_for(args.exp_name, args.work_dir_root) if args.exp_name else args.ckpt
    if args.export_torchscript is not None:
        singer = Singer.load(source, device="cpu")
        path = singer.export_torchscript(args.export_torchscript, args.block_frames, args.speaker)
        hop_ms = 1000.0 * singer.audio.hop_size / singer.sample_rate
        print(f"{path}  (blocks of {args.block_frames} frames = {args.block_frames * hop_ms:g} ms; output {hop_ms:g} ms behind the input)")
        return 0
    if args.out is None:
        raise UserInputError("no output: pass --out FILE.wav")
    if args.wav is None:
        raise UserInputError("no input: pass --wav FILE (the recording to transfer)")
    if args.out.suffix.lower() != ".wav":
        raise UserInputError(f"--out {args.out}: give a .wav file name")
    if args.score is not None and args.autotune == 0:
        raise UserInputError("--score is used by --autotune; pass --autotune 1 (or less) with it")
    singer = Singer.load(source, device=args.device)
    if args.causal:
        return live(singer, args)
    started = time.perf_counter()
    result = singer.transfer(
        args.wav, autotune=args.autotune, score=args.score, octave_shift=args.octave_shift, loudness_db=args.loudness_db,
        loudness_stats=args.loudness_stats, mask_threshold=args.mask_threshold, attenuation=args.attenuation, speaker=args.speaker,
        block_frames=args.block_frames if args.stream else None,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    result.write(args.out)
    print(f"{args.out}  ({result.seconds:.2f} s of audio at {result.sample_rate} Hz, {elapsed:.2f} s, real-time factor {elapsed / max(result.seconds, 1e-9):.3f})")
    if args.plot:
        from inference.transfer_plot import plot_transfer

        print(plot_transfer(result, singer.audio, float(singer.model.pitch_mean_midi), args.out.with_suffix(".png")))
    return 0


def live(singer, args: argparse.Namespace) -> int:
    """`--stream --causal`: the recording fed block by block as a live input would be; the output as it comes out."""
    from inference.sung_audio import SungAudio

    if not args.stream:
        raise UserInputError("--causal is a mode of --stream; pass --stream --causal")
    if args.plot:
        raise UserInputError("--plot shows the whole recording's tracks; not with --causal")
    started = time.perf_counter()
    blocks = singer.stream(
        args.wav, block_frames=args.block_frames, autotune=args.autotune, score=args.score, octave_shift=args.octave_shift,
        loudness_db=args.loudness_db, loudness_stats=args.loudness_stats, mask_threshold=args.mask_threshold,
        attenuation=args.attenuation, speaker=args.speaker, causal=True,
    )  # fmt: skip
    result = SungAudio(np.concatenate(list(blocks)), singer.sample_rate)
    elapsed = time.perf_counter() - started
    result.write(args.out)
    lag = singer.live(args.block_frames).lag_frames * singer.audio.hop_size / singer.sample_rate * 1000
    print(f"{args.out}  ({result.seconds:.2f} s at {result.sample_rate} Hz, {elapsed:.2f} s, real-time factor {elapsed / max(result.seconds, 1e-9):.3f}; "
          f"output {lag:.1f} ms behind the input + one block)")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_cli(main)
