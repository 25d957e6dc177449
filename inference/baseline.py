"""Sing a score (any format of inference/visinger.py's --score) with Korean lyrics with the two-stage baseline: FS2 singer + HiFi-GAN.

    python inference/baseline.py --exp_name csd_fs2 --vocoder_exp csd_hifigan --midi song.mid --out song.wav [--plot]
    python inference/baseline.py --exp_name csd_fs2 --vocoder_exp csd_hifigan --midi scores/ --out wavs/
    python inference/baseline.py --ckpt fs2.pt --vocoder_ckpt hifigan.pt --midi song.mid --lyrics song.txt --out song.wav
    python inference/baseline.py --pack csd_fs2 --vocoder_exp csd_hifigan --out packed/csd_fs2_hifigan   # both models, one folder
    python inference/baseline.py --ckpt packed/csd_fs2_hifigan --midi song.mid --out song.wav           # a pack needs no vocoder flag

The flags are inference/visinger.py's, plus the vocoder: `--vocoder_exp NAME` (an experiment under
--work_dir_root) or `--vocoder_ckpt PATH` (a checkpoint file or a pack); the pair is deterministic, so
it has no `--noise_scale` or `--seed`. The score goes through the same reader, frontend and
phrase-by-phrase synthesizer as VISinger's (`inference.api.Singer`). Exit code 2 with one line on a
bad input; no partial wav is ever left behind.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.devices import check_device_name  # noqa: E402
from inference.visinger import _jobs, add_model_arguments, add_score_arguments, check_stream_flags, score_argument, sing_jobs  # noqa: E402
from model_io.checkpoint_file import work_dir_for  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, "FS2 singer", "an FS2 singer checkpoint file, or a pair pack folder")
    vocoder = parser.add_mutually_exclusive_group()
    vocoder.add_argument("--vocoder_exp", help="HiFi-GAN experiment under --work_dir_root (default checkpoint: best, else latest)")
    vocoder.add_argument("--vocoder_ckpt", type=Path, help="a HiFi-GAN checkpoint file or pack folder")
    add_score_arguments(parser, stochastic=False)
    return parser


def _sources(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """(acoustic source, vocoder source or None for a pair pack) from the flags."""
    if args.pack or args.exp_name:
        acoustic = work_dir_for(args.pack or args.exp_name, args.work_dir_root)
    elif args.ckpt is not None:
        acoustic = args.ckpt
    else:
        raise UserInputError("no model: pass --exp_name NAME (or --ckpt PATH) for the acoustic model, and --vocoder_exp NAME")
    if args.vocoder_exp:
        return acoustic, work_dir_for(args.vocoder_exp, args.work_dir_root)
    return acoustic, args.vocoder_ckpt


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from inference.synthesis import limit_onednn_primitive_cache

    limit_onednn_primitive_cache()  # before any convolution runs
    from inference.api import Singer

    check_device_name(args.device)
    if not args.pack:
        jobs = _jobs(score_argument(args), args.out, args.lyrics, args.dump)
        check_stream_flags(args)
    acoustic, vocoder = _sources(args)
    backend = "torch" if args.pack else args.backend  # a pair pack exported by inference/export_onnx.py holds both graphs
    singer = Singer.load(acoustic, vocoder=vocoder, device="cpu" if args.pack else args.device, backend=backend)
    if args.pack:
        out = singer.pack(args.out)
        print(f"packed {', '.join(record.source for record in singer.saved.trained)} -> {out}")
        return 0
    sing_jobs(singer, jobs, args)
    return 0


if __name__ == "__main__":
    run_cli(main)
