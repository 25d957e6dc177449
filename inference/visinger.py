"""Sing a score with Korean lyrics with a trained VISinger.

    python inference/visinger.py --exp_name csd_visinger --score song.musicxml --out song.wav [--plot]
    python inference/visinger.py --exp_name csd_visinger --score scores/ --out wavs/         # a folder (mixed formats), one model load
    python inference/visinger.py --ckpt PATH --midi song.mid --lyrics song.txt --out song.wav  # MIDI without lyrics
    python inference/visinger.py --exp_name csd_visinger --score song.ust --out song.wav --dump song.json  # editable render
    python inference/visinger.py --exp_name csd_visinger --score song.json --out edited.wav  # sing an (edited) dump
    python inference/visinger.py --pack csd_visinger --out packed/csd_visinger                 # self-contained folder
    python inference/visinger.py --ckpt packed/onnx --backend onnx --score song.mid --out song.wav  # onnxruntime (inference/export_onnx.py)
    python inference/visinger.py --exp_name csd_visinger --score song.mid --out song.wav --stream  # written as it is sung

Scores: MIDI (.mid), MusicXML (.musicxml/.xml/.mxl), UST (.ust), USTX (.ustx), DiffSinger (.ds),
chosen by the extension; `--midi` is the same option under its old name.

`--ckpt` takes a checkpoint file or a packed folder. `--backend onnx` runs the pack's ONNX graphs with
onnxruntime (same front end, phrases, noise and cross-fades as torch). `--stream` decodes each phrase
in chunks of `--chunk_frames` frames and writes the wav as it goes (the first audio after one phrase's
acoustic pass and one chunk). Exit code 2 with one line on a bad input; no partial wav is ever left
behind (written to a temporary name, then renamed; with `--stream`, removed on failure).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.devices import DEFAULT_DEVICE, DEVICE_HELP, check_device_name  # noqa: E402
from inference.api import DEFAULT_NOISE_SCALE  # noqa: E402
from model_io.checkpoint_file import ROOT_ENV, work_dir_for  # noqa: E402

DEFAULT_CHUNK_FRAMES = 32  # inference.synthesis.DEFAULT_CHUNK_FRAMES (not imported here: --help stays fast)
MATCHING_MODES = ("change", "absolute", "off")  # inference.variance_matching.MATCHING_MODES (likewise)

logger = logging.getLogger("inference")


def add_score_arguments(parser: argparse.ArgumentParser, stochastic: bool) -> None:
    """The flags every singing CLI shares (where models live, the score, the output, the device); with
    `stochastic`, also the prior's temperature and seed (a deterministic model takes neither)."""
    parser.add_argument("--work_dir_root", type=Path, default=None, help=f"where experiments live (default: ${ROOT_ENV}, else ./checkpoints)")
    score = parser.add_mutually_exclusive_group()
    score.add_argument("--score", type=Path, help="a score (.mid .musicxml .xml .mxl .ust .ustx .ds, or a --dump .json) or a folder of them")
    score.add_argument("--midi", type=Path, help="the same as --score (its old name)")
    parser.add_argument("--out", type=Path, required=True, help="output .wav (or folder, for a folder of scores / --pack)")
    parser.add_argument("--dump", type=Path, help="also write the editable render (.json; a folder for a folder of scores): sing it back with --score FILE.json")
    parser.add_argument("--lyrics", type=Path, help="Hangul lyrics for a MIDI without lyric events (one syllable per note, lines = phrases); a folder matches by file stem")
    parser.add_argument("--track", type=int, help="melody track: MIDI track index, MusicXML part (0-based), USTX track_no (default: the one with the lyrics)")
    parser.add_argument("--monophonic", choices=("strict", "top"), default="strict", help="overlapping notes: an error (strict) or keep the top voice")
    parser.add_argument("--key_shift", type=int, default=0, help="transpose by this many semitones")
    parser.add_argument("--speaker", default="0", help="who sings (a multi-speaker model): a name, an id, or a mix of names, e.g. a:0.7,b:0.3")
    parser.add_argument("--energy_db", type=float, default=0.0, help="dB added to the predicted loudness (a model with expressive controls: model.variance_controls)")
    parser.add_argument("--breathiness_db", type=float, default=0.0, help="dB added to the predicted breathiness (the same models)")
    parser.add_argument(
        "--variance_matching", choices=MATCHING_MODES, default="change",
        help="how energy/breathiness reach the audio: change = the asked change imposed on the render by a two-band gain (default), "
        "absolute = every render levelled to the sung curves, off = only what the model learnt",
    )  # fmt: skip
    if stochastic:
        parser.add_argument("--noise_scale", type=float, default=DEFAULT_NOISE_SCALE, help="prior sampling temperature (0 = the prior mean)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the prior sample")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument("--plot", action="store_true", help="also write a PNG beside each wav: score piano roll with the predicted F0, and the mel spectrogram")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="run the networks with torch, or a pack's ONNX graphs (inference/export_onnx.py) with onnxruntime")
    parser.add_argument("--stream", action="store_true", help="decode in chunks and write the wav progressively (bounded delay to the first audio)")
    parser.add_argument("--chunk_frames", type=int, default=None, help=f"frames per streamed chunk (default {DEFAULT_CHUNK_FRAMES}; needs --stream)")


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


def _jobs(score: Path, out: Path, lyrics: Path | None, dump: Path | None = None) -> list[tuple[Path, Path, Path | None, Path | None]]:
    """(score, wav, lyrics, dump) per score to render."""
    from inference.render_dump import is_render_dump
    from preprocessor.scores.dispatch import SCORE_SUFFIXES, is_score_file

    if score.is_dir():
        scores = sorted(p for p in score.iterdir() if p.is_file() and is_score_file(p))
        if not scores:
            raise UserInputError(f"{score}: no score files in this folder (looked for {', '.join(SCORE_SUFFIXES)})")
        stems = [p.stem for p in scores]
        twins = sorted({stem for stem in stems if stems.count(stem) > 1})
        if twins:
            raise UserInputError(f"{score}: several scores are named {twins[0]!r} (different formats); rename them, each gives {twins[0]}.wav")
        if out.suffix.lower() == ".wav":
            raise UserInputError(f"{out}: --score is a folder, so --out must be a folder too")
        if lyrics is not None and not lyrics.is_dir():
            raise UserInputError(f"{lyrics}: with a folder of scores, --lyrics must be a folder of <stem>.txt files")
        if dump is not None and dump.suffix.lower() == ".json":
            raise UserInputError(f"{dump}: --score is a folder, so --dump must be a folder too (one <stem>.json each)")
        return [
            (s, out / f"{s.stem}.wav", (lyrics / f"{s.stem}.txt") if lyrics and s.suffix.lower() in (".mid", ".midi") else None, dump / f"{s.stem}.json" if dump else None)
            for s in scores
        ]
    if not score.is_file():
        raise UserInputError(f"{score}: score file not found")
    if not is_score_file(score) and not is_render_dump(score):
        from preprocessor.scores.dispatch import read_any_score

        read_any_score(score)  # the one message for an unknown extension
    if out.suffix.lower() != ".wav":
        out = out / f"{score.stem}.wav"
    if lyrics is not None and lyrics.is_dir():  # as for a folder of scores: <stem>.txt inside it
        lyrics = lyrics / f"{score.stem}.txt"
    if dump is not None and dump.suffix.lower() != ".json":
        dump = dump / f"{score.stem}.json"
    if dump is not None and is_render_dump(score) and dump.resolve() == score.resolve():
        raise UserInputError(f"{dump}: --dump would overwrite the render file being sung; give another name")
    return [(score, out, lyrics, dump)]


def score_argument(args: argparse.Namespace) -> Path:
    """`--score` (or its old name `--midi`), required when singing."""
    score = args.score if args.score is not None else args.midi
    if score is None:
        raise UserInputError("no score: pass --score FILE_OR_FOLDER (.mid .musicxml .mxl .ust .ustx .ds, or a --dump .json)")
    return score


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
    check_stream_flags(args)
    jobs = _jobs(score_argument(args), args.out, args.lyrics, args.dump)
    source = work_dir_for(args.exp_name, args.work_dir_root) if args.exp_name else args.ckpt
    singer = Singer.load(source, device=args.device, backend=args.backend)
    sing_jobs(singer, jobs, args)
    return 0


def check_stream_flags(args: argparse.Namespace) -> None:
    """`--chunk_frames` only with `--stream`; a chunk too small to be worth its context is refused."""
    if args.chunk_frames is not None and not args.stream:
        raise UserInputError(f"--chunk_frames {args.chunk_frames} without --stream: add --stream (or drop --chunk_frames)")
    if args.stream:
        from inference.backends import check_chunk_frames

        args.chunk_frames = DEFAULT_CHUNK_FRAMES if args.chunk_frames is None else args.chunk_frames
        check_chunk_frames(args.chunk_frames)


def sing_jobs(singer, jobs: list[tuple[Path, Path, Path | None, Path | None]], args: argparse.Namespace) -> None:
    """Render every (score, wav, lyrics, dump) job with one loaded model (shared by the baseline CLI)."""
    from tqdm import tqdm

    from inference.render import render_score

    for midi, wav_path, lyrics, dump in tqdm(jobs, desc="sing", unit="song", disable=len(jobs) < 2):
        started = time.perf_counter()
        sung = render_score(
            singer, midi, wav_path, lyrics=lyrics, track=args.track, monophonic=args.monophonic, key_shift=args.key_shift,
            speaker=args.speaker, noise_scale=getattr(args, "noise_scale", DEFAULT_NOISE_SCALE), plot=args.plot,
            seed=getattr(args, "seed", 0), dump=dump, energy_db=args.energy_db, breathiness_db=args.breathiness_db,
            variance_matching=args.variance_matching, stream_chunk_frames=args.chunk_frames if args.stream else None,
        )  # fmt: skip
        for warning in sung.warnings:
            logger.warning("%s", warning)
        seconds = len(sung.wav) / sung.sample_rate
        elapsed = time.perf_counter() - started
        timings = sung.synthesis.timings
        streamed = f", first audio after {timings['first_audio']:.2f} s" if "first_audio" in timings else ""
        print(
            f"{wav_path}  ({seconds:.2f} s of audio, {sung.synthesis.phrases} phrases, {elapsed:.2f} s, "
            f"real-time factor {elapsed / max(seconds, 1e-9):.3f}{streamed}; {singer.backend})"
        )
        if args.plot:
            print(f"{wav_path.with_suffix('.png')}")
        if dump is not None:
            print(f"{dump}")


if __name__ == "__main__":
    run_cli(main)
