"""The one atomic-write module: every output is written to a temporary name beside it, then renamed into
place, so that a crash (or a kill) at any instant leaves the old file or the new one, never half of one.

Files: `atomic_path` (and `write_text_atomic`, `write_wav_atomic`, `tasks.checkpoint.atomic_torch_save`
over it); folders: `write_folder_atomically` (packs). `config.loader.save_config` is the one writer
outside it: `config` sits below every other package and imports none of them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the platform can open a directory at all)."""
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


@contextmanager
def atomic_path(path: Path | str, keep_suffix: bool = True, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path` (and the folder
    fsynced); on failure it is removed. The temporary is hidden (`.<name>.<random>.tmp`, plus `path`'s suffix
    with `keep_suffix`, for writers that choose the format by it). `mode`: the file's permissions (default:
    0o666 minus the umask, what `open()` gives; mkstemp's 0o600 would hide outputs from the rest of a team)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + (path.suffix if keep_suffix else ""), dir=path.parent)
    os.close(fd)
    os.chmod(tmp_name, mode if mode is not None else 0o666 & ~_UMASK)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str, mode: int | None = None) -> None:
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_wav_atomic(path: Path | str, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav of float audio in [-1, 1] (clipped)."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, sample_rate, subtype="PCM_16", format="WAV")


def write_folder_atomically(out_dir: Path, write: Callable[[Path], None], may_replace: Callable[[Path], bool], what: str = "a packed model") -> Path:
    """Call `write(partial)` on a fresh folder beside `out_dir`, then rename it to `out_dir`.

    An existing `out_dir` is replaced only when it is empty or `may_replace(out_dir)`; anything else is a
    `UserInputError` (naming `what` the folder is not), never deleted. A failure removes the partial folder
    and leaves `out_dir` as it was; the old folder is moved aside before the new one is renamed in, so a
    crash leaves one complete folder under some name.
    """
    from config.errors import UserInputError

    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not (out_dir.is_dir() and (not any(out_dir.iterdir()) or may_replace(out_dir))):
        raise UserInputError(f"{out_dir}: exists and is not {what} (writing would delete it); pass a new folder to --out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    partial.chmod(0o777 & ~_UMASK)  # mkdtemp's 0o700 would hide the folder from the rest of a team
    try:
        write(partial)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
            partial.rename(out_dir)
            shutil.rmtree(old)
        else:
            partial.rename(out_dir)
        fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir
