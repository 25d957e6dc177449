"""Raw dataset -> data/processed/<name>/ (segment wavs + metadata.jsonl).

    python preprocessor/runs/base_preprocess.py --config config/datasets/svs/csd/preprocess.yaml [--hparams "k=v"] [--force]
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
from config.loader import load_config, save_config  # noqa: E402
from preprocessor.preprocess import run_preprocess  # noqa: E402
from preprocessor.settings import data_pipeline_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="dataset config YAML")
    parser.add_argument("--hparams", default="", help='overrides, e.g. "dataset.raw_data_dir=/data/CSD,preprocess.num_workers=4"')
    parser.add_argument("--force", action="store_true", help="re-process recordings that are already done")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.hparams)
    settings = data_pipeline_settings(cfg, args.config)
    started = time.perf_counter()
    summary = run_preprocess(settings, force=args.force)
    elapsed = time.perf_counter() - started
    save_config(cfg, settings.processed_dir / "config.yaml")
    total = sum(summary.seconds_by_split.values())
    print(f"processed {summary.recordings} recordings ({summary.skipped} already done) into {summary.segments} segments: {summary.metadata_path}")
    print("  " + ", ".join(f"{split} {seconds / 60:.2f} min" for split, seconds in summary.seconds_by_split.items()))
    print(f"  {total:.1f} s of audio in {elapsed:.1f} s wall ({total / max(elapsed, 1e-9):.1f} s of audio per second)")
    return 0


if __name__ == "__main__":
    run_cli(main)
