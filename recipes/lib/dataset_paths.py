"""Print a dataset config's folders for the recipes, one `KEY=value` line each (shell-quoted).

    python recipes/lib/dataset_paths.py CONFIG [OVERRIDES]   ->  RAW_DIR=... PROCESSED_DIR=... BINARY_DIR=...
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere without PYTHONPATH

from config.errors import run_cli  # noqa: E402
from config.loader import load_config  # noqa: E402
from preprocessor.settings import data_pipeline_settings  # noqa: E402


def main() -> int:
    config, overrides = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    settings = data_pipeline_settings(load_config(config, overrides))
    dataset = settings.dataset
    for key, value in (("RAW_DIR", dataset.raw_data_dir), ("PROCESSED_DIR", settings.processed_dir), ("BINARY_DIR", settings.binary_dir)):
        print(f"{key}={shlex.quote(str(value))}")
    return 0


if __name__ == "__main__":
    run_cli(main)
