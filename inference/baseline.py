"""Sing a MIDI file whose notes carry Korean lyrics with the two-stage baseline: FS2 singer + HiFi-GAN.

    python inference/baseline.py --exp_name csd_fs2 --vocoder_exp csd_hifigan --midi song.mid --out song.wav [--plot]
    python inference/baseline.py --exp_name csd_fs2 --vocoder_exp csd_hifigan --midi scores/ --out wavs/
    python inference/baseline.py --ckpt fs2.pt --vocoder_ckpt hifigan.pt --midi song.mid --lyrics song.txt --out song.wav
    python inference/baseline.py --pack csd_fs2 --vocoder_exp csd_hifigan --out packed/csd_fs2_hifigan   # both models, one folder
    python inference/baseline.py --ckpt packed/csd_fs2_hifigan --midi song.mid --out song.wav           # a pack needs no vocoder flag

The flags are inference/visinger.py's (the same parser), plus the vocoder: `--vocoder_exp NAME` (an
experiment under --work_dir_root) or `--vocoder_ckpt PATH` (a checkpoint file or a pack). The score
goes through the same reader, frontend and phrase-by-phrase synthesizer as VISinger's. The pair is
deterministic: `--noise_scale` and `--seed` are accepted and have no effect. Exit code 2 with one
line on a bad input; no partial wav is ever left behind.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.visinger import _jobs, build_parser as visinger_parser, sing_jobs  # noqa: E402


def build_parser():
    parser = visinger_parser()
    parser.description = __doc__
    vocoder = parser.add_mutually_exclusive_group()
    vocoder.add_argument("--vocoder_exp", help="HiFi-GAN experiment under --work_dir_root (default checkpoint: best, else latest)")
    vocoder.add_argument("--vocoder_ckpt", type=Path, help="a HiFi-GAN checkpoint file or a baseline pack folder")
    return parser


def _load_models(args):
    """(LoadedAcoustic, LoadedVocoder) from the flags; a pair pack carries its own vocoder."""
    from inference.baseline_synthesis import VOCODER_FILE, load_acoustic, load_vocoder

    if args.pack:
        acoustic_dir, acoustic_ckpt = args.work_dir_root / args.pack, None
    elif args.exp_name:
        acoustic_dir, acoustic_ckpt = args.work_dir_root / args.exp_name, None
    elif args.ckpt is not None:
        acoustic_dir, acoustic_ckpt = None, args.ckpt
    else:
        raise UserInputError("no model: pass --exp_name NAME (or --ckpt PATH) for the acoustic model, and --vocoder_exp NAME")
    acoustic = load_acoustic(exp_dir=acoustic_dir, ckpt=acoustic_ckpt)
    if args.vocoder_exp:
        vocoder = load_vocoder(exp_dir=args.work_dir_root / args.vocoder_exp)
    elif args.vocoder_ckpt is not None:
        vocoder = load_vocoder(ckpt=args.vocoder_ckpt)
    elif acoustic.source.is_dir() and (acoustic.source / VOCODER_FILE).is_file():
        vocoder = load_vocoder(ckpt=acoustic.source)  # a pair pack
    else:
        raise UserInputError(f"{acoustic.source}: no vocoder; pass --vocoder_exp NAME (a HiFi-GAN experiment) or --vocoder_ckpt PATH")
    return acoustic, vocoder


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from inference.synthesis import limit_onednn_primitive_cache

    limit_onednn_primitive_cache()  # before any convolution runs
    import torch

    from inference.baseline_synthesis import pack_pair, pair_singer

    if not args.pack:
        score = args.score if args.score is not None else args.midi
        if score is None:
            raise UserInputError("no score: pass --score FILE_OR_FOLDER (.mid .musicxml .mxl .ust .ustx .ds, or a --dump .json)")
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UserInputError("--device cuda: no CUDA device is available here; use --device cpu")
        jobs = _jobs(score, args.out, args.lyrics, args.dump)
    acoustic, vocoder = _load_models(args)
    if args.pack:
        out = pack_pair(acoustic, vocoder, args.out)
        print(f"packed {acoustic.source} + {vocoder.source} -> {out}")
        return 0
    sing_jobs(pair_singer(acoustic, vocoder), jobs, args)
    return 0


if __name__ == "__main__":
    run_cli(main)
