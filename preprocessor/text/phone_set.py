"""The closed Korean phone set: every symbol the text frontend can emit, in a fixed order.

Symbols. Onset, nucleus and coda are the conjoining Hangul jamo that `jamo.h2j` produces, so the
onset ㄱ (U+1100 ``ᄀ``, choseong) and the coda ㄱ (U+11A8 ``ᆨ``, jongseong) are distinct symbols
by construction and no conversion table sits between the splitter and the ids. Because conjoining
jamo render as composed syllables in most terminals, every phone also has a readable name
(``onset_g``, ``nucleus_a``, ``coda_k``; Revised Romanization), written beside the symbol in
``phone_set.json`` and available through `phone_name`.

Order (ids): 0 ``<pad>``, 1 ``SP`` (rest), 2 ``AP`` (breath), then the 18 sounding onsets in
choseong order (the silent onset ㅇ is no phone: a vowel-initial syllable simply has no onset),
the 21 nuclei in jungseong order, and the 7 coda sounds ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅇ. 49 phones in all.

Codas. In pronunciation a Korean coda is one of 7 sounds (Standard Pronunciation rules 8-11).
g2pk resolves most of this from context; `CODA_NEUTRALIZATION` maps whatever jongseong remains to
its sound (the table is written in compatibility jamo for readability):

    ㄱ ㄲ ㅋ ㄳ ㄺ -> ㄱ      (부엌 [부억], 몫 [목], 닭 [닥])
    ㄴ ㄵ ㄶ       -> ㄴ      (앉 [안], 많 [만])
    ㄷ ㅅ ㅆ ㅈ ㅊ ㅌ ㅎ -> ㄷ (옷 [옫], 있 [읻], 낮 [낟], 꽃 [꼳], 밭 [받], 히읗 [히읃])
    ㄹ ㄼ ㄽ ㄾ ㅀ  -> ㄹ      (여덟 [여덜], 곬 [골], 핥 [할], 싫 [실])
    ㅁ ㄻ          -> ㅁ      (삶 [삼])
    ㅂ ㅍ ㅄ ㄿ     -> ㅂ      (앞 [압], 값 [갑], 읊 [읍])
    ㅇ             -> ㅇ
"""
from __future__ import annotations

import json
from pathlib import Path

from jamo import hcj_to_jamo

from config.errors import UserInputError
from preprocessor.atomic_io import write_text_atomic

PAD = "<pad>"
REST = "SP"
BREATH = "AP"

# (compatibility jamo, romanized name) in choseong order, silent ㅇ left out.
_ONSETS = (
    ("ㄱ", "g"), ("ㄲ", "kk"), ("ㄴ", "n"), ("ㄷ", "d"), ("ㄸ", "tt"), ("ㄹ", "r"), ("ㅁ", "m"),
    ("ㅂ", "b"), ("ㅃ", "pp"), ("ㅅ", "s"), ("ㅆ", "ss"), ("ㅈ", "j"), ("ㅉ", "jj"), ("ㅊ", "ch"),
    ("ㅋ", "k"), ("ㅌ", "t"), ("ㅍ", "p"), ("ㅎ", "h"),
)
# In jungseong order (U+1161..U+1175).
_NUCLEI = (
    ("ㅏ", "a"), ("ㅐ", "ae"), ("ㅑ", "ya"), ("ㅒ", "yae"), ("ㅓ", "eo"), ("ㅔ", "e"), ("ㅕ", "yeo"),
    ("ㅖ", "ye"), ("ㅗ", "o"), ("ㅘ", "wa"), ("ㅙ", "wae"), ("ㅚ", "oe"), ("ㅛ", "yo"), ("ㅜ", "u"),
    ("ㅝ", "wo"), ("ㅞ", "we"), ("ㅟ", "wi"), ("ㅠ", "yu"), ("ㅡ", "eu"), ("ㅢ", "ui"), ("ㅣ", "i"),
)
# The 7 coda sounds.
_CODAS = (("ㄱ", "k"), ("ㄴ", "n"), ("ㄷ", "t"), ("ㄹ", "l"), ("ㅁ", "m"), ("ㅂ", "p"), ("ㅇ", "ng"))

# Silent onset: a syllable spelled with it starts with its vowel.
SILENT_ONSET = hcj_to_jamo("ㅇ", "lead")

ONSETS: tuple[str, ...] = tuple(hcj_to_jamo(letter, "lead") for letter, _ in _ONSETS)
NUCLEI: tuple[str, ...] = tuple(hcj_to_jamo(letter, "vowel") for letter, _ in _NUCLEI)
CODAS: tuple[str, ...] = tuple(hcj_to_jamo(letter, "tail") for letter, _ in _CODAS)

_NEUTRALIZATION_HCJ = {
    "ㄱ": "ㄱ", "ㄲ": "ㄱ", "ㅋ": "ㄱ", "ㄳ": "ㄱ", "ㄺ": "ㄱ",
    "ㄴ": "ㄴ", "ㄵ": "ㄴ", "ㄶ": "ㄴ",
    "ㄷ": "ㄷ", "ㅅ": "ㄷ", "ㅆ": "ㄷ", "ㅈ": "ㄷ", "ㅊ": "ㄷ", "ㅌ": "ㄷ", "ㅎ": "ㄷ",
    "ㄹ": "ㄹ", "ㄼ": "ㄹ", "ㄽ": "ㄹ", "ㄾ": "ㄹ", "ㅀ": "ㄹ",
    "ㅁ": "ㅁ", "ㄻ": "ㅁ",
    "ㅂ": "ㅂ", "ㅍ": "ㅂ", "ㅄ": "ㅂ", "ㄿ": "ㅂ",
    "ㅇ": "ㅇ",
}
# Every modern jongseong (U+11A8..U+11C2) -> one of `CODAS`.
CODA_NEUTRALIZATION: dict[str, str] = {
    hcj_to_jamo(written, "tail"): hcj_to_jamo(sound, "tail") for written, sound in _NEUTRALIZATION_HCJ.items()
}

PHONE_SET: tuple[str, ...] = (PAD, REST, BREATH) + ONSETS + NUCLEI + CODAS

_NAMES: dict[str, str] = {
    PAD: "pad",
    REST: "rest",
    BREATH: "breath",
    **{symbol: f"onset_{name}" for symbol, (_, name) in zip(ONSETS, _ONSETS)},
    **{symbol: f"nucleus_{name}" for symbol, (_, name) in zip(NUCLEI, _NUCLEI)},
    **{symbol: f"coda_{name}" for symbol, (_, name) in zip(CODAS, _CODAS)},
}
_IDS: dict[str, int] = {symbol: index for index, symbol in enumerate(PHONE_SET)}

PHONE_SET_FORMAT = "korean-phone-set"
PHONE_SET_VERSION = 1


def phone_to_id(symbol: str) -> int:
    """The id of ``symbol`` in `PHONE_SET`; `KeyError` for a symbol outside the set (a frontend bug)."""
    return _IDS[symbol]


def phone_name(symbol: str) -> str:
    """A readable ASCII name for ``symbol`` (``onset_g``, ``nucleus_a``, ``coda_k``, ``rest``...)."""
    return _NAMES[symbol]


def _phone_set_document() -> dict:
    return {
        "format": PHONE_SET_FORMAT,
        "version": PHONE_SET_VERSION,
        "phones": [
            {"id": index, "symbol": symbol, "name": _NAMES[symbol], "codepoints": [f"U+{ord(c):04X}" for c in symbol]}
            for index, symbol in enumerate(PHONE_SET)
        ],
    }


def write_phone_set(path: Path) -> None:
    """Write `PHONE_SET` as JSON to ``path`` (temporary name, then rename)."""
    write_text_atomic(path, json.dumps(_phone_set_document(), ensure_ascii=False, indent=1) + "\n", mode=0o644)


def read_phone_set(path: Path) -> tuple[str, ...]:
    """Read a ``phone_set.json`` and return its symbols, which must equal this code's `PHONE_SET`.

    Raises `UserInputError` naming the file when it is missing, malformed, or lists another phone set
    (data binarized by a different version of the frontend: re-binarize).
    """
    path = Path(path)
    fix = "re-run base_binarize.py with this code to rewrite it"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: phone set file not found; fix: {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"{path}: cannot read the phone set ({error}); fix: {fix}") from None
    if not isinstance(document, dict) or document.get("format") != PHONE_SET_FORMAT:
        raise UserInputError(f"{path}: not a phone set file (expected \"format\": \"{PHONE_SET_FORMAT}\"); fix: {fix}")
    if document.get("version") != PHONE_SET_VERSION:
        raise UserInputError(
            f"{path}: phone set version {document.get('version')!r}, this code reads {PHONE_SET_VERSION}; fix: {fix}"
        )
    phones = document.get("phones")
    if not isinstance(phones, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("symbol"), str) and entry.get("id") == index
        for index, entry in enumerate(phones)
    ):
        raise UserInputError(f"{path}: \"phones\" must be a list of {{\"id\", \"symbol\", ...}} with ids 0, 1, 2, ...; fix: {fix}")
    symbols = tuple(entry["symbol"] for entry in phones)
    if symbols != PHONE_SET:
        for index, (theirs, ours) in enumerate(zip(symbols, PHONE_SET)):
            if theirs != ours:
                where = f"id {index} is {theirs!r} ({phones[index].get('name')}), this code has {ours!r} ({_NAMES[ours]})"
                break
        else:
            where = f"it has {len(symbols)} phones, this code has {len(PHONE_SET)}"
        raise UserInputError(f"{path}: phone set differs from this code's: {where}; fix: {fix}")
    return symbols


PHONE_CLASSES = ("pad", "rest", "onset", "nucleus", "coda")  # the class ids `phone_classes` gives


def phone_classes() -> tuple[int, ...]:
    """The class of every phone id (index into `PHONE_CLASSES`): the score encoder's shared embeddings
    (`modules.score_encoder`, ``embedding: shared``) give a phoneme never trained its class's vector."""
    kind = {PAD: 0, REST: 1, BREATH: 1, **{p: 2 for p in ONSETS}, **{p: 3 for p in NUCLEI}, **{p: 4 for p in CODAS}}
    return tuple(kind[symbol] for symbol in PHONE_SET)
