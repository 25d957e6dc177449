"""Add the model description to checkpoints written before checkpoints described their models.

    python tasks/runs/describe_checkpoint.py checkpoints/csd_visinger/model_best.pt [more.pt ...]
    python tasks/runs/describe_checkpoint.py checkpoints/csd_visinger          # every checkpoint of the experiment

The description (class paths, constructor arguments, audio settings, phone set, F0 statistics; see
`model_io.description`) is made by the checkpoint's own task from its saved config, exactly as
training makes it now, and written into the file atomically; everything else in the file is kept,
so training resumes from it as before. A checkpoint that already has one is left alone. The F0
statistics come from the training data's `f0_stats.json` when it is still there.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root is the import root

import argparse  # noqa: E402

from config.errors import UserInputError, run_cli  # noqa: E402
from model_io.checkpoint_file import BEST_NAME, list_checkpoints, load_checkpoint  # noqa: E402
from model_io.class_path import import_class  # noqa: E402
from tasks.checkpoint import atomic_torch_save  # noqa: E402


def describe_checkpoint(path: Path) -> bool:
    """Write the description into the checkpoint at `path`; False when it already had one."""
    state = load_checkpoint(path)
    if "description" in state:
        return False
    config = state.get("config")
    if not isinstance(config, dict):
        raise UserInputError(f"{path}: no config saved with it, so its models cannot be described; retrain with this code")
    task = import_class(state.get("task_cls"), f"{path}: task_cls", "tasks.visinger_task.VISingerTask")(config)
    description = task.model_description()
    if description is None:
        raise UserInputError(f"{path}: task {state['task_cls']} does not describe its models; inference cannot load it")
    missing = set(description.models) - set(state.get("models") or {})
    if missing:
        raise UserInputError(f"{path}: the task describes models {sorted(missing)} that the checkpoint lacks; use the code version it was trained with")
    state["description"] = description.to_dict()
    atomic_torch_save(state, path)
    return True


def checkpoint_files(paths: list[Path]) -> list[Path]:
    """Each file as is; each experiment folder as its step checkpoints (model_best.pt is one of them, hard-linked or copied)."""
    files = []
    for path in paths:
        if path.is_dir():
            found = [p for _, p in list_checkpoints(path)] + ([path / BEST_NAME] if (path / BEST_NAME).is_file() else [])
            if not found:
                raise UserInputError(f"{path}: no checkpoint in this folder (model_ckpt_steps_*.pt, model_best.pt)")
            files += found
        else:
            files.append(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="checkpoint files or experiment folders")
    args = parser.parse_args(argv)
    for path in checkpoint_files(args.paths):
        print(f"{path}: {'description added' if describe_checkpoint(path) else 'already described'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
