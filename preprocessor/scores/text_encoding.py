"""One encoding per file for Korean score text: UTF-8 or CP949, decided from all of the file's text.

Deciding per text event (try UTF-8, then CP949) misreads valid CP949: 345 of the 11,172 Hangul
syllables (푸, 창, 짝, 책 among them) have CP949 bytes that are also valid UTF-8, for other
characters (짝 = ``C2 A6`` = "¦"). So a reader hands every text chunk of one file (all lyric events,
or the whole text file) to `decode_file_text`, which picks one encoding for all of them:

1. the encodings under which *every* chunk decodes (UTF-8 and CP949, a superset of EUC-KR);
2. of those, the one that yields more Hangul syllables (UTF-8 bytes of Hangul read as CP949 give
   Hanja or fail; CP949 Hangul read as UTF-8 gives Latin/Greek letters or fails), UTF-8 on a tie;
3. none: a `UserInputError` naming the file and the first chunk each encoding fails on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from config.errors import UserInputError

ENCODINGS = ("utf-8", "cp949")
_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3


class DecodedText(NamedTuple):
    encoding: str
    texts: list[str]  # one per chunk, in order


def _hangul_count(texts: Sequence[str]) -> int:
    return sum(_HANGUL_FIRST <= ord(c) <= _HANGUL_LAST for text in texts for c in text)


def choose_encoding(chunks: Sequence[bytes]) -> DecodedText | None:
    """The one encoding under which all `chunks` decode (see the module doc), or None when there is none."""
    candidates = []
    for encoding in ENCODINGS:
        try:
            candidates.append(DecodedText(encoding, [chunk.decode(encoding) for chunk in chunks]))
        except UnicodeDecodeError:
            continue
    if not candidates:
        return None
    # max() keeps the first of equals, and UTF-8 comes first.
    return max(candidates, key=lambda decoded: _hangul_count(decoded.texts))


def decode_file_text(
    chunks: Sequence[bytes], source: Path | str, describe: Callable[[int], str] = lambda index: f"text {index + 1}", fix: str = "save it as UTF-8"
) -> DecodedText:
    """`choose_encoding`, or a `UserInputError`: ``<source>: neither UTF-8 (<where>) nor CP949 (<where>); <fix>``.

    describe: the place of chunk `index` for the message (``"the lyric at bar:beat 3:1"``, ``"the file"``).
    """
    decoded = choose_encoding(chunks)
    if decoded is not None:
        return decoded
    failures = []
    for encoding in ENCODINGS:
        for index, chunk in enumerate(chunks):
            try:
                chunk.decode(encoding)
            except UnicodeDecodeError as error:
                bad = chunk[error.start : error.start + 4]
                name = "UTF-8" if encoding == "utf-8" else "CP949"
                failures.append(f"{name} fails at byte {error.start} of {describe(index)} ({bad!r})")
                break
    raise UserInputError(f"{source}: the text is neither UTF-8 nor CP949 throughout ({'; '.join(failures)}); {fix}")
