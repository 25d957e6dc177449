"""Checkpoint files, write side: atomic writes, pruning, the best copy (the read side is `model_io.checkpoint_file`).

A write goes to a hidden temporary file in the same directory, is flushed and fsynced, then renamed
over the final name (`os.replace` is atomic), and the directory entry is fsynced: a kill at any
instant leaves either the old file set or the new one, never a truncated checkpoint under a
checkpoint name. Stray temporaries of a killed write start with "." and are ignored (and removed at
the next start).

Contents (plain types and tensors only, loadable with `torch.load(weights_only=True)`): see
`Trainer.checkpoint_state` — format tag and version, code version, task class, config, the model
description (`model_io.description`: class paths, constructor arguments, audio settings, phone
set, F0 statistics), model/optimizer/scheduler/grad-scaler states, step, epoch and batch position,
per-rank RNG states, best metric so far, skipped-update count.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from model_io.checkpoint_file import (  # noqa: F401  (the read side, re-exported for the runner)
    BEST_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    checkpoint_name,
    code_version,
    first_state_mismatch,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from model_io.checkpoint_file import UnreadableFileError
from config.errors import UserInputError
from preprocessor.atomic_io import atomic_path, fsync_dir


def _serialize(obj: Any, handle: BinaryIO) -> None:
    """The one place bytes are produced (tests replace it to simulate a crash in the middle of a write)."""
    torch.save(obj, handle)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save(obj)` to `path` so that `path` is always either the old complete file or the new one."""
    with atomic_path(path, keep_suffix=False) as tmp:  # `.<name>.<random>.tmp`: what remove_stale_temporaries finds
        with open(tmp, "wb") as handle:
            _serialize(obj, handle)


def publish_best(source: Path, work_dir: Path) -> Path:
    """Make `model_best.pt` an independent copy of `source`, atomically (copy to a temporary, fsync, rename).

    Never a hard link: with a shared inode, damage to one file (a truncation, an edit) would be damage
    to both, and the fallback to the best model would be gone with the step checkpoint.
    """
    target = work_dir / BEST_NAME
    with atomic_path(target, keep_suffix=False) as tmp:
        shutil.copyfile(source, tmp)
    return target


def load_resumable_checkpoint(work_dir: Path, newest: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest step checkpoint that loads, from `newest` back: (path, state, one line per skipped file).

    A newest checkpoint that cannot be read (a disk that filled up, a copy cut short) falls back to the
    previous one instead of ending the run; the caller reports the skipped files. A checkpoint that reads
    but does not fit (another format version, another task) is still an error: older ones would not fit
    either. The skipped file is left in place: the next checkpoint at its step replaces it atomically.
    """
    candidates = [path for _, path in reversed(list_checkpoints(work_dir))]
    if newest in candidates:
        candidates = candidates[candidates.index(newest):]
    else:
        candidates.insert(0, newest)
    skipped: list[str] = []
    for number, path in enumerate(candidates):
        try:
            return path, load_checkpoint(path), skipped
        except UnreadableFileError as error:
            if number == len(candidates) - 1:
                if skipped:
                    raise UserInputError(
                        f"{work_dir}: no step checkpoint loads ({len(skipped) + 1} tried; the oldest, {path.name}: {error.reason}); "
                        "use --reset to start over"
                    ) from None
                raise
            skipped.append(f"{path.name} does not load ({error.reason})")
    raise AssertionError("unreachable")


def prune_checkpoints(work_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step checkpoints (never `model_best.pt`); the removed paths."""
    removed = [path for _, path in list_checkpoints(work_dir)[:-keep]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def remove_stale_temporaries(work_dir: Path) -> list[Path]:
    """Delete temporaries left by a write that was killed (hidden `.*.tmp` files)."""
    stale = [p for p in work_dir.glob(".*.tmp") if p.is_file()] if work_dir.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale










def flat_model_states(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """All models' state as one dict keyed `<model name>.<tensor name>` (the names prefixes refer to)."""
    return {f"{model_name}.{key}": value for model_name, model in models.items() for key, value in model.state_dict().items()}

