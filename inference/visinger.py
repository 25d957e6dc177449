"""Sing a MIDI file whose notes carry Korean lyrics with a trained VISinger.

    python inference/visinger.py --exp_name csd_visinger --midi song.mid --out song.wav [--plot]
    python inference/visinger.py --exp_name csd_visinger --midi scores/ --out wavs/          # a folder, one model load
    python inference/visinger.py --ckpt PATH --midi song.mid --lyrics song.txt --out song.wav  # MIDI without lyrics
    python inference/visinger.py --pack csd_visinger --out packed/csd_visinger                 # self-contained folder

`--ckpt` takes a checkpoint file or a packed folder. Exit code 2 with one line on a bad input;
no partial wav is ever left behind (written to a temporary name, then renamed).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.devices import DEFAULT_DEVICE, DEVICE_HELP, check_device_name  # noqa: E402
from inference.api import DEFAULT_NOISE_SCALE  # noqa: E402
from model_io.checkpoint_file import ROOT_ENV, work_dir_for  # noqa: E402

logger = logging.getLogger("inference")


def add_score_arguments(parser: argparse.ArgumentParser, stochastic: bool) -> None:
    """The flags every singing CLI shares (where models live, the score, the output, the device); with
    `stochastic`, also the prior's temperature and seed (a deterministic model takes neither)."""
    parser.add_argument("--work_dir_root", type=Path, default=None, help=f"where experiments live (default: ${ROOT_ENV}, else ./checkpoints)")
    parser.add_argument("--midi", type=Path, help="a .mid file or a folder of them")
    parser.add_argument("--out", type=Path, required=True, help="output .wav (or folder, for a folder of MIDIs / --pack)")
    parser.add_argument("--lyrics", type=Path, help="Hangul lyrics for a MIDI without lyric events (one syllable per note, lines = phrases); a folder matches by file stem")
    parser.add_argument("--track", type=int, help="index of the melody track (default: the track that carries the lyrics)")
    parser.add_argument("--monophonic", choices=("strict", "top"), default="strict", help="overlapping notes: an error (strict) or keep the top voice")
    parser.add_argument("--key_shift", type=int, default=0, help="transpose by this many semitones")
    parser.add_argument("--speaker", type=int, default=0, help="speaker id of a multi-speaker model")
    if stochastic:
        parser.add_argument("--noise_scale", type=float, default=DEFAULT_NOISE_SCALE, help="prior sampling temperature (0 = the prior mean)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the prior sample")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument("--plot", action="store_true", help="also write a PNG beside each wav: score piano roll with the predicted F0, and the mel spectrogram")


def add_model_arguments(parser: argparse.ArgumentParser, model: str, ckpt_help: str) -> None:
    """`--exp_name` | `--ckpt` | `--pack` (one of them): where the `model` comes from."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--exp_name", help=f"{model} experiment under --work_dir_root (default checkpoint: best, else latest)")
    source.add_argument("--ckpt", type=Path, help=ckpt_help)
    source.add_argument("--pack", metavar="EXP_NAME", help=f"write the {model} experiment as a self-contained folder to --out and exit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, "VISinger", "a checkpoint file or a packed model folder")
    add_score_arguments(parser, stochastic=True)
    return parser


def _jobs(midi: Path, out: Path, lyrics: Path | None) -> list[tuple[Path, Path, Path | None]]:
    """(midi, wav, lyrics) per score to render."""
    if midi.is_dir():
        midis = sorted(p for p in midi.iterdir() if p.suffix.lower() in (".mid", ".midi"))
        if not midis:
            raise UserInputError(f"{midi}: no .mid files in this folder")
        if out.suffix.lower() == ".wav":
            raise UserInputError(f"{out}: --midi is a folder, so --out must be a folder too")
        if lyrics is not None and not lyrics.is_dir():
            raise UserInputError(f"{lyrics}: with a folder of MIDIs, --lyrics must be a folder of <stem>.txt files")
        return [(m, out / f"{m.stem}.wav", (lyrics / f"{m.stem}.txt") if lyrics else None) for m in midis]
    if not midi.is_file():
        raise UserInputError(f"{midi}: MIDI file not found")
    if out.suffix.lower() != ".wav":
        out = out / f"{midi.stem}.wav"
    if lyrics is not None and lyrics.is_dir():  # as for a folder of MIDIs: <stem>.txt inside it
        lyrics = lyrics / f"{midi.stem}.txt"
    return [(midi, out, lyrics)]


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from inference.synthesis import limit_onednn_primitive_cache

    limit_onednn_primitive_cache()  # before any convolution runs
    from inference.api import Singer

    check_device_name(args.device)
    if args.pack:
        singer = Singer.load(work_dir_for(args.pack, args.work_dir_root), device="cpu")
        out = singer.pack(args.out)
        print(f"packed {singer.source} -> {out}")
        return 0
    if args.exp_name is None and args.ckpt is None:
        raise UserInputError("no model: pass --exp_name NAME or --ckpt PATH")
    if args.midi is None:
        raise UserInputError("no score: pass --midi FILE_OR_FOLDER")
    jobs = _jobs(args.midi, args.out, args.lyrics)
    singer = Singer.load(work_dir_for(args.exp_name, args.work_dir_root) if args.exp_name else args.ckpt, device=args.device)
    sing_jobs(singer, jobs, args)
    return 0


def sing_jobs(singer, jobs: list[tuple[Path, Path, Path | None]], args: argparse.Namespace) -> None:
    """Render every (midi, wav, lyrics) job with one loaded model (shared by the baseline CLI)."""
    from tqdm import tqdm

    from inference.render import render_score

    for midi, wav_path, lyrics in tqdm(jobs, desc="sing", unit="song", disable=len(jobs) < 2):
        started = time.perf_counter()
        sung = render_score(
            singer, midi, wav_path, lyrics=lyrics, track=args.track, monophonic=args.monophonic, key_shift=args.key_shift,
            speaker=args.speaker, noise_scale=getattr(args, "noise_scale", DEFAULT_NOISE_SCALE), plot=args.plot,
            seed=getattr(args, "seed", 0),
        )  # fmt: skip
        for warning in sung.warnings:
            logger.warning("%s", warning)
        seconds = len(sung.wav) / sung.sample_rate
        elapsed = time.perf_counter() - started
        print(f"{wav_path}  ({seconds:.2f} s of audio, {sung.synthesis.phrases} phrases, {elapsed:.2f} s, real-time factor {elapsed / max(seconds, 1e-9):.3f})")
        if args.plot:
            print(f"{wav_path.with_suffix('.png')}")


if __name__ == "__main__":
    run_cli(main)
