"""Writes that never leave a half-written file: write to a temporary name in the same folder, then rename."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from config.errors import UserInputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    except OSError as error:  # read-only, a file where a folder should be, no space: the user's to fix
        raise UserInputError(f"{path}: cannot write there ({error.strerror}: {error.filename}); choose another output path") from None
    os.close(fd)
    os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp's 0o600 would hide outputs from the rest of a team
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as error:  # a full disk, a quota: nothing is left under `path`
            if error.filename not in (None, str(tmp), tmp):
                raise
            raise UserInputError(f"{path}: cannot write there ({error.strerror or error}); free some space or choose another output path") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_wav_atomic(path: Path | str, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav of float audio in [-1, 1] (clipped)."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, sample_rate, subtype="PCM_16", format="WAV")


def _exchange_paths(a: Path, b: Path) -> bool:
    """Swap two directory entries in one atomic step (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem or kernel cannot exchange
        return False
    raise OSError(error, os.strerror(error), str(a), None, str(b))


def staging_directory(target: Path | str) -> Path:
    """A fresh hidden folder beside `target` (same filesystem) to build its replacement in; stale ones
    that a killed run left (``.<name>.staging-*``, ``.<name>.replaced-*``) are removed first."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*target.parent.glob(f".{target.name}.staging-*"), *target.parent.glob(f".{target.name}.replaced-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))


def replace_directory(staging: Path | str, target: Path | str) -> None:
    """Put the finished folder `staging` at `target`, replacing what is there as one step.

    Readers see either the old folder or the new one, never a mix: the two are exchanged atomically
    (renameat2), then the old one is deleted. Where the filesystem cannot exchange, the old folder is
    renamed aside and the new one renamed in (a crash between the two leaves `target` missing and the
    old folder under ``.<name>.replaced-*``, never a mixed folder).
    """
    import shutil

    staging, target = Path(staging), Path(target)
    os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp's 0o700 would hide the dataset from the rest of a team
    if not target.exists():
        os.replace(staging, target)
        return
    if _exchange_paths(staging, target):
        shutil.rmtree(staging)  # now the old folder
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
    os.replace(target, aside / target.name)
    os.replace(staging, target)
    shutil.rmtree(aside)
