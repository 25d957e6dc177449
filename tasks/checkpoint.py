"""Checkpoint files: atomic writes, discovery, pruning, the best copy, safe loading, compatibility checks.

Layout in the work dir: `model_ckpt_steps_<step>.pt` (the last `num_ckpt_keep` are kept) and
`model_best.pt` (a copy of the checkpoint with the best validation metric). A write goes to a
hidden temporary file in the same directory, is flushed and fsynced, then renamed over the final
name (`os.replace` is atomic), and the directory entry is fsynced: a kill at any instant leaves
either the old file set or the new one, never a truncated checkpoint under a checkpoint name.
Stray temporaries of a killed write start with "." and are ignored (and removed at the next start).

Contents (plain types and tensors only, loadable with `torch.load(weights_only=True)`): see
`Trainer.checkpoint_state` — format tag and version, code version, task class, config, model
class names, model/optimizer/scheduler/grad-scaler states, step, epoch and batch position, per-rank
RNG states, best metric so far, skipped-update count.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from config.errors import UserInputError

CHECKPOINT_FORMAT = "svs-runner-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
BEST_NAME = "model_best.pt"
_STEP_NAME = re.compile(r"^model_ckpt_steps_(\d+)\.pt$")
_REPO_ROOT = Path(__file__).resolve().parents[1]


def checkpoint_name(step: int) -> str:
    return f"model_ckpt_steps_{step}.pt"


def _serialize(obj: Any, handle: BinaryIO) -> None:
    """The one place bytes are produced (tests replace it to simulate a crash in the middle of a write)."""
    torch.save(obj, handle)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_file_mode() -> int:
    """0o666 minus the umask: what `open()` would have given (mkstemp's 0o600 would hide checkpoints from a team)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save(obj)` to `path` so that `path` is always either the old complete file or the new one."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, _default_file_mode())
        with os.fdopen(fd, "wb") as handle:
            _serialize(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def publish_best(source: Path, work_dir: Path) -> Path:
    """Make `model_best.pt` an independent copy of `source`, atomically (copy to a temporary, fsync, rename).

    Never a hard link: with a shared inode, damage to one file (a truncation, an edit) would be damage
    to both, and the fallback to the best model would be gone with the step checkpoint.
    """
    target = work_dir / BEST_NAME
    fd, tmp_name = tempfile.mkstemp(prefix=f".{BEST_NAME}.", suffix=".tmp", dir=work_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, _default_file_mode())
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(work_dir)
    return target


def list_checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    """`(step, path)` of every `model_ckpt_steps_<step>.pt` in `work_dir`, oldest first."""
    if not work_dir.is_dir():
        return []
    found = []
    for entry in work_dir.iterdir():
        match = _STEP_NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(work_dir: Path) -> Path | None:
    checkpoints = list_checkpoints(work_dir)
    return checkpoints[-1][1] if checkpoints else None


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


def _short_reason(error: Exception) -> str:
    """The informative line of a (often many-line) load error, without terminal colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    picked = next((line for line in lines if "unsupported global" in line.lower()), lines[0] if lines else "")
    return f"{type(error).__name__}: {picked[:160]}"


class UnreadableCheckpointError(UserInputError):
    """The file is not a loadable torch file at all (truncated, emptied, overwritten)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: cannot be read as a checkpoint ({reason}); delete it to fall back to the previous one, or use --reset")
        self.reason = reason


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
        except UnreadableCheckpointError as error:
            if number == len(candidates) - 1:
                if skipped:
                    raise UserInputError(
                        f"{work_dir}: no step checkpoint loads ({len(skipped) + 1} tried; the oldest, {path.name}: {error.reason}); "
                        "use --reset to start over"
                    ) from None
                raise
            skipped.append(f"{path.name} does not load ({error.reason})")
    raise AssertionError("unreachable")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a runner checkpoint on the CPU with `weights_only=True`; unreadable or foreign files are user errors."""
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint not found; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle with code in it, not a torch file at all
        reason = _short_reason(error)
        raise UnreadableCheckpointError(path, reason) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserInputError(f"{path}: not a checkpoint written by tasks/runs/run.py (no '{CHECKPOINT_FORMAT}' tag)")
    if state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise UserInputError(
            f"{path}: checkpoint format version {state.get('format_version')} is not {CHECKPOINT_FORMAT_VERSION}; use a matching code version"
        )
    return state


def _shape(tensor: torch.Tensor) -> list[int]:
    return list(tensor.shape)


def first_state_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str | None:
    """A description of the first tensor that differs (missing / unexpected / shape), or None when they match."""
    for name, tensor in expected.items():
        if name not in found:
            return f"tensor '{name}' is missing from the checkpoint"
        if tuple(found[name].shape) != tuple(tensor.shape):
            return f"tensor '{name}' has shape {_shape(found[name])} in the checkpoint but {_shape(tensor)} in the model"
    for name in found:
        if name not in expected:
            return f"the checkpoint has tensor '{name}' that the model lacks"
    return None


def flat_model_states(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """All models' state as one dict keyed `<model name>.<tensor name>` (the names prefixes refer to)."""
    return {f"{model_name}.{key}": value for model_name, model in models.items() for key, value in model.state_dict().items()}


def code_version() -> str:
    """"git:<commit>" of the repository this code runs from (read from .git, no subprocess), else "unknown"."""
    git_dir = _REPO_ROOT / ".git"
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return f"git:{head}"
        ref = head[5:]
        ref_file = git_dir / ref
        if ref_file.is_file():
            return f"git:{ref_file.read_text().strip()}"
        packed = git_dir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(f" {ref}"):
                    return f"git:{line.split()[0]}"
    except OSError:
        pass
    return "unknown"
