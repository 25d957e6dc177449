"""The one atomic-write module: every output is written to a temporary name beside it, then renamed into
place, so that a crash (or a kill) at any instant leaves the old file or the new one, never half of one.

Files: `atomic_path` (and `write_text_atomic`, `write_wav_atomic`, `tasks.checkpoint.atomic_torch_save`
over it); folders: `write_folder_atomically` (packs). `config.loader.save_config` is the one writer
outside it: `config` sits below every other package and imports none of them.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

from config.errors import UserInputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
# A full disk or quota, a read-only or forbidden place: a write failing so is the user's to fix (one line).
_USER_FIXABLE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + (path.suffix if keep_suffix else ""), dir=path.parent)
    except OSError as error:  # read-only, a file where a folder should be, no space: the user's to fix
        raise UserInputError(f"{path}: cannot write there ({error.strerror}: {error.filename}); choose another output path") from None
    os.close(fd)
    os.chmod(tmp_name, mode if mode is not None else 0o666 & ~_UMASK)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as error:
            if error.errno not in _USER_FIXABLE_ERRNOS:
                raise
            raise UserInputError(f"{path}: cannot write there ({error.strerror}); free some space or choose another output path") from None
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str, mode: int | None = None) -> None:
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] (clipped) -> int16 samples, as every wav this project writes stores them."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav_atomic(path: Path | str, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav of float audio in [-1, 1] (clipped)."""
    pcm = float_to_pcm16(audio)
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
