"""data/processed/<name>/ -> data/binary/<name>/ (memory-mapped features per split + phone_set.json).

    python preprocessor/runs/base_binarize.py --config config/datasets/svs/csd/preprocess.yaml [--hparams "k=v"]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere without PYTHONPATH

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

from config.errors import run_cli  # noqa: E402
from config.loader import load_config  # noqa: E402
from preprocessor.binarize import run_binarize  # noqa: E402
from preprocessor.settings import data_pipeline_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="dataset config YAML")
    parser.add_argument("--hparams", default="", help='overrides, e.g. "preprocess.num_workers=4"')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.hparams)
    settings = data_pipeline_settings(cfg, args.config)
    started = time.perf_counter()
    summary = run_binarize(settings, config=cfg)  # config.yaml is swapped in with the dataset
    elapsed = time.perf_counter() - started
    for line in summary.lines():
        print(line)
    seconds = sum(summary.hours.values()) * 3600
    print(f"  {seconds:.1f} s of audio in {elapsed:.1f} s wall ({seconds / max(elapsed, 1e-9):.1f} s of audio per second)")
    return 0


if __name__ == "__main__":
    run_cli(main)
