"""Preprocess + binarize throughput on the real recordings (seconds of audio per wall second).

    .venv/bin/python bench/preprocess_speed.py [--workers 2] [--repeats 3] [--shared ../shared/data]

Builds a temporary early-layout CSD tree linked to `../shared/data/csd_early` (song headshoulder,
both keys: 34 s of audio), runs `run_preprocess(force=True)` and `run_binarize` `--repeats` times
and prints the median throughput of each stage, with the machine it ran on.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

from bench.machine import machine_line  # noqa: E402
from config.loader import load_config  # noqa: E402
from preprocessor.binarize import run_binarize  # noqa: E402
from preprocessor.csd_convert import link_early_tree  # noqa: E402
from preprocessor.preprocess import run_preprocess  # noqa: E402
from preprocessor.settings import data_pipeline_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--f0_extractor", default="parselmouth")
    args = parser.parse_args()
    early = args.shared / "csd_early"
    if not early.is_dir():
        sys.exit(f"{early}: not found; pass --shared PATH to the shared data folder")
    with tempfile.TemporaryDirectory() as tmp:
        raw = link_early_tree(early, Path(tmp) / "raw", ["headshoulder_kr_0u", "headshoulder_kr_4d"])
        cfg = load_config(
            REPO / "config/datasets/svs/csd/preprocess.yaml",
            f"dataset.raw_data_dir={raw},dataset.processed_dir={tmp}/processed,dataset.binary_dir={tmp}/binary,"
            f"dataset.valid_songs=[],dataset.test_songs=[],preprocess.num_workers={args.workers},audio.f0_extractor={args.f0_extractor}",
        )
        settings = data_pipeline_settings(cfg)
        pre_times, bin_times, seconds = [], [], 0.0
        for _ in range(args.repeats):
            started = time.perf_counter()
            summary = run_preprocess(settings, force=True, show_progress=False)
            pre_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            run_binarize(settings, show_progress=False)
            bin_times.append(time.perf_counter() - started)
            seconds = sum(summary.seconds_by_split.values())
    pre, binar = statistics.median(pre_times), statistics.median(bin_times)
    print(f"machine: {machine_line()}")
    print(f"audio: {seconds:.1f} s (segments of 2 real recordings), workers: {args.workers}, f0: {args.f0_extractor}, median of {args.repeats}")
    print("| stage | wall s | audio s / wall s |")
    print("|---|---|---|")
    print(f"| preprocess | {pre:.2f} | {seconds / pre:.1f} |")
    print(f"| binarize | {binar:.2f} | {seconds / binar:.1f} |")
    print(f"| both | {pre + binar:.2f} | {seconds / (pre + binar):.1f} |")


if __name__ == "__main__":
    main()
