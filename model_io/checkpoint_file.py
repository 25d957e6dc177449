"""Runner checkpoint files, read side: the format tag, discovery in a work dir, safe loading, state checks.

Layout in a work dir: `model_ckpt_steps_<step>.pt` and `model_best.pt` (written by `tasks/checkpoint.py`).
A checkpoint is a dict of plain types and tensors, loadable with `torch.load(weights_only=True)`;
see `Trainer.checkpoint_state` for its keys and `model_io.description` for its `description` entry,
which is what inference rebuilds models from.
"""
from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from config.errors import UserInputError

CHECKPOINT_FORMAT = "svs-runner-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
BEST_NAME = "model_best.pt"
PROJECT_NAME = "korean-visinger"  # the distribution name in pyproject.toml
ROOT_ENV = "SVS_CHECKPOINTS_ROOT"  # where experiments live when no --work_dir_root is given
_EXP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STEP_NAME = re.compile(r"^model_ckpt_steps_(\d+)\.pt$")
_REPO_ROOT = Path(__file__).resolve().parents[1]


def checkpoints_root(explicit: str | os.PathLike | None = None) -> Path:
    """Where experiments live: `explicit`, else `$SVS_CHECKPOINTS_ROOT`, else `./checkpoints`."""
    return Path(explicit or os.environ.get(ROOT_ENV) or "checkpoints")


def work_dir_for(exp_name: str, root: str | os.PathLike | None = None) -> Path:
    """`<root>/<exp_name>`; the name must be one plain path component."""
    if not _EXP_NAME.match(exp_name or ""):
        raise UserInputError(f"--exp_name: {exp_name!r} must be one plain name (letters, digits, '.', '_', '-'), e.g. csd_visinger")
    return checkpoints_root(root) / exp_name


def checkpoint_name(step: int) -> str:
    return f"model_ckpt_steps_{step}.pt"


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


def default_checkpoint(work_dir: Path) -> Path:
    """The experiment's best checkpoint, else its latest; an error naming the folder when there is none."""
    if not work_dir.is_dir():
        raise UserInputError(f"{work_dir}: experiment not found; train it with tasks/runs/run.py --exp_name {work_dir.name}, or pass --ckpt")
    best = work_dir / BEST_NAME
    if best.is_file():
        return best
    latest = latest_checkpoint(work_dir)
    if latest is None:
        raise UserInputError(f"{work_dir}: no checkpoint yet (model_best.pt or model_ckpt_steps_*.pt); train longer or pass --ckpt")
    return latest


def short_load_error(error: Exception) -> str:
    """The informative line of a (often many-line) `torch.load` error, without terminal colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    picked = next((line for line in lines if "unsupported global" in line.lower()), lines[0] if lines else "")
    return f"{type(error).__name__}: {picked[:160]}"


class UnreadableFileError(UserInputError):
    """The file is not a loadable torch file at all (truncated, emptied, overwritten); `reason` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_torch_file(path: Path, fix: str, what: str = "a model file") -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; an unreadable file is a one-line `UserInputError` ending in `fix`."""
    if not path.is_file():
        raise UserInputError(f"{path}: file not found; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle with code in it, not a torch file at all
        reason = short_load_error(error)
        raise UnreadableFileError(f"{path}: cannot be read as {what} ({reason}); {fix}", reason) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a runner checkpoint on the CPU with `weights_only=True`; unreadable or foreign files are user errors."""
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint not found; check the path")
    return checked_checkpoint(read_torch_file(path, "delete it to fall back to the previous one, or use --reset", "a checkpoint"), path)


def checked_checkpoint(state: Any, path: Path) -> dict[str, Any]:
    """`state` (read from `path`) when it is a runner checkpoint of this format version, else a `UserInputError`."""
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


def code_version() -> str:
    """"git:<commit>" of the checkout this code runs from (read from .git, no subprocess); else the installed
    project's version ("korean-visinger <version>"); else "unknown"."""
    git_dir = _REPO_ROOT / ".git"
    if git_dir.is_file():  # a git worktree: ".git" is a file "gitdir: <path>"
        try:
            git_dir = Path(git_dir.read_text().split(":", 1)[1].strip())
        except (OSError, IndexError):
            pass
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return f"git:{head}"
        ref = head[5:]
        for directory in (git_dir, _common_git_dir(git_dir)):
            ref_file = directory / ref
            if ref_file.is_file():
                return f"git:{ref_file.read_text().strip()}"
            packed = directory / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(f" {ref}"):
                        return f"git:{line.split()[0]}"
    except OSError:
        pass
    try:
        return f"{PROJECT_NAME} {metadata.version(PROJECT_NAME)}"
    except metadata.PackageNotFoundError:
        return "unknown"


def _common_git_dir(git_dir: Path) -> Path:
    """A worktree's shared git dir (where branch refs live), named by its `commondir` file; else `git_dir`."""
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir
