"""The embedded demo corpus: a few original Korean children's songs sung by a source-filter voice.

A fresh machine without the Children's Song Dataset still runs the whole pipeline on this corpus.
Nothing is downloaded and no audio is committed: `generate_demo_corpus` writes the CSD final-release
layout from the songs written below, deterministically (same seed, same bytes).

    korean/wav/krNNNa.wav    44.1 kHz (default) 16-bit mono
    korean/csv/krNNNa.csv    start,end,pitch,syllable  (one row per sung note, seconds)
    korean/lyric/krNNNa.txt  Hangul, one line per phrase, one syllable per note
    korean/txt/krNNNa.txt    romanized pronunciation, CSD style (m_eo r_i ... b_a_l)
    korean/mid/krNNNa.mid    the notes (no lyric events)

Songs kr001a..kr008a; the demo config splits kr007 off for validation and kr008 for test
(`DEMO_VALID_SONGS`, `DEMO_TEST_SONGS`). Lyrics and tunes are original, written for this project.
A melisma is written as CSD writes it, a repeated vowel over the extra note (춰어, 야안).

The voice: a band-limited harmonic source (1/k spectrum) at the note pitch with vibrato, shaped by a
cascade of vowel formants (F1-F5) that move smoothly between phonemes; filtered noise for
obstruents (bursts, frication, aspiration); nasal murmur and laterals as low-gain voiced segments;
white noise at -60 dBFS under everything, a recording room's floor.
The sung pronunciation applies the common rules (liaison, coda neutralization, nasalization,
aspiration, tensification, lateralization) inside each word.

Voices (`DEMO_VOICES`): ``default`` is the voice above (the single-speaker demo, byte for byte as
before); ``low`` is a second singer for the multi-speaker demo (config/datasets/svs/demo_multi): the
same songs a fifth lower (-7 semitones), formants 18 % lower (a longer vocal tract), a deeper and
slower vibrato and twice the breath noise, with its own noise seed.

CLI: ``python -m preprocessor.demo_corpus --out data/raw/demo [--voice low]`` prints the summary.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jamo
import numpy as np
import soundfile as sf
from scipy import signal

from config.errors import UserInputError, run_cli

GENERATOR_VERSION = 2
MARKER_NAME = ".demo_corpus.json"
FILES = (("wav", "wav"), ("csv", "csv"), ("lyric", "txt"), ("txt", "txt"), ("mid", "mid"))  # (folder, extension)
DEMO_VALID_SONGS = ("kr007",)
DEMO_TEST_SONGS = ("kr008",)

LEAD_IN_SECONDS = 0.5
TAIL_SECONDS = 0.6
REST_BEATS = 1.5  # between phrases: long enough (> 0.3 s at every tempo) for the segmenter to cut
CONTROL_HOP_SECONDS = 0.0015  # formant, gain and pitch tracks are built at this step, then interpolated
HARMONIC_CUTOFF_HZ = 12000.0  # the voice's harmonics stop here (tapered from 10 kHz): no aliasing at 24 kHz
PEAK_LEVEL = 0.6
# A room's noise floor under the whole song (RMS, dB re full scale), as every real recording has.
# Without it rests are digital zeros, whose log-mel sits on the extractor's clamp (ln 1e-5): a
# target no vocoder output reaches, which then dominates the mel loss of the demo model.
NOISE_FLOOR_DBFS = -60.0
MIN_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class DemoVoice:
    """A synthetic singer: its key (semitones added to every note), formant scale, vibrato and breath.

    seed_salt: None keeps the default voice's noise streams; a number gives the voice its own.
    """

    name: str
    transpose: int = 0
    formant_scale: float = 1.0
    vibrato_depth: float = 0.3  # semitones, after the fade-in
    vibrato_offset_hz: float = 0.0
    breath: float = 0.03  # aspiration noise in the voiced part, relative to the voice
    seed_salt: int | None = None


DEMO_VOICES: dict[str, DemoVoice] = {
    "default": DemoVoice("default"),
    "low": DemoVoice("low", transpose=-7, formant_scale=0.82, vibrato_depth=0.45, vibrato_offset_hz=-0.8, breath=0.06, seed_salt=2),
}


def demo_voice(name: str) -> DemoVoice:
    if name not in DEMO_VOICES:
        raise ValueError(f"unknown demo voice {name!r}; choose one of {', '.join(DEMO_VOICES)}")
    return DEMO_VOICES[name]


@dataclass(frozen=True)
class DemoSong:
    """One song: ``phrases`` are (lyric line, melody); the melody has one ``NOTE:beats`` per syllable."""

    recording_id: str
    title: str
    tempo_bpm: float
    phrases: tuple[tuple[str, str], ...]


DEMO_SONGS: tuple[DemoSong, ...] = (
    DemoSong("kr001a", "아침 인사", 104, (
        ("아침 해가 방긋 웃어요", "C4:1 E4:.5 G4:.5 G4:1 A4:.5 G4:.5 E4:.5 D4:.5 C4:1.5"),
        ("참새들이 짹짹 노래해", "E4:.5 E4:.5 G4:.5 G4:.5 C5:1 A4:1 G4:.5 E4:.5 G4:1.5"),
        ("창문 열고 인사해요", "A4:1 A4:.5 G4:.5 E4:1 D4:.5 E4:.5 G4:1 D4:1.5"),
        ("안녕 안녕 좋은 아침", "C5:1 G4:1 C5:1 G4:1 A4:.5 G4:.5 D4:1 C4:2"),
    )),
    DemoSong("kr002a", "꽃밭", 96, (
        ("꽃밭에 나비가 날아요", "G4:.5 G4:.5 A4:.5 B4:.5 D5:.5 B4:.5 A4:1 G4:.5 A4:1.5"),
        ("노랑 나비 예쁜 나비", "B4:.5 A4:.5 G4:.5 A4:.5 B4:.5 D5:.5 B4:.5 A4:1.5"),
        ("빨간 장미 위에 올라", "D5:.5 D5:.5 B4:.5 G4:.5 A4:.5 B4:.5 A4:.5 D4:1.5"),
        ("살랑살랑 춤을 춰어요", "G4:.5 A4:.5 B4:.5 A4:.5 G4:.5 E4:.5 D4:.5 E4:.5 G4:1.5"),
    )),
    DemoSong("kr003a", "비 오는 날", 112, (
        ("똑똑똑 빗방울 소리", "C5:.5 C5:.5 C5:1 A4:.5 A#4:.5 C5:1 A4:1 F4:2"),
        ("우산 쓰고 유치원 가요", "F4:.5 G4:.5 A4:1 F4:.5 G4:.5 A4:.5 C5:.5 A4:.5 F4:1.5"),
        ("첨벙첨벙 물웅덩이", "A4:.5 A4:.5 G4:.5 G4:.5 F4:.5 A4:.5 C5:.5 A4:1.5"),
        ("개구리도 폴짝 뛰어요", "C5:.5 A4:.5 F4:.5 A4:.5 C5:1 C5:1 A#4:.5 G4:.5 F4:2"),
    )),
    DemoSong("kr004a", "우리 집 강아지", 100, (
        ("우리 집 강아지는", "D4:.5 F#4:.5 A4:1 A4:.5 B4:.5 A4:.5 F#4:1.5"),
        ("꼬리를 흔들어요", "G4:.5 G4:.5 B4:1 A4:.5 F#4:.5 E4:.5 D4:1.5"),
        ("멍멍 짖으며 뛰어와", "A4:.5 A4:.5 F#4:.5 A4:.5 D5:1 B4:.5 A4:.5 F#4:1.5"),
        ("내 볼에 뽀뽀해요", "E4:.5 F#4:.5 G4:1 A4:.5 F#4:.5 E4:.5 D4:2"),
    )),
    DemoSong("kr005a", "밤하늘", 84, (
        ("밤하늘에 별이 떴네", "E4:.5 E4:.5 G4:.5 A4:.5 G4:1 E4:.5 D4:.5 C4:1.5"),
        ("하나 둘 셋 세어 봐요", "C4:.5 D4:.5 E4:1 G4:1 A4:.5 G4:.5 E4:.5 D4:1.5"),
        ("둥근 달도 웃어요오", "E4:.5 G4:.5 A4:1 G4:.5 E4:.5 D4:.5 E4:1 C4:1.5"),
        ("잘 자라 귀여운 아기", "G4:1 E4:.5 G4:.5 A4:1 G4:.5 E4:.5 D4:.5 C4:1.5"),
    )),
    DemoSong("kr006a", "바닷가", 112, (
        ("파도가 철썩 부서져요", "D4:.5 G4:.5 B4:.5 D5:1 B4:1 A4:.5 G4:.5 A4:.5 G4:2"),
        ("모래성을 쌓아 봐요", "B4:.5 B4:.5 A4:.5 G4:.5 A4:1 B4:1 A4:.5 D4:1.5"),
        ("조개껍질 주워 담고", "G4:.5 A4:.5 B4:.5 G4:.5 E4:.5 G4:.5 A4:.5 D4:1.5"),
        ("갈매기와 함께 놀아요", "D5:.5 B4:.5 G4:.5 B4:.5 A4:1 F#4:.5 E4:.5 F#4:.5 G4:2"),
    )),
    DemoSong("kr007a", "소풍", 108, (
        ("김밥 싸서 소풍 가요", "E4:.5 E4:.5 A4:.5 A4:.5 C#5:1 B4:.5 A4:.5 E4:2"),
        ("얘들아 손을 잡고", "A4:.5 A4:.5 F#4:1 E4:.5 F#4:.5 A4:.5 B4:1.5"),
        ("뒤뚱뒤뚱 오리 걸음", "C#5:.5 B4:.5 A4:.5 F#4:.5 E4:.5 F#4:.5 E4:.5 C#4:1.5"),
        ("웃음소리 퍼져가요오", "E4:.5 F#4:.5 A4:.5 B4:.5 C#5:1 B4:.5 A4:.5 F#4:1 A4:2"),
    )),
    DemoSong("kr008a", "겨울", 92, (
        ("하야안 눈이 펑펑 와요", "F4:.5 A4:.5 C5:.5 A4:.5 G4:.5 F4:.5 G4:.5 A4:.5 G4:1.5"),
        ("눈사람을 만들어요", "A4:.5 A4:.5 A#4:.5 A4:.5 G4:.5 F4:.5 D4:.5 F4:1.5"),
        ("코는 당근 눈은 단추", "C5:.5 A4:.5 F4:.5 G4:.5 A4:.5 G4:.5 F4:.5 D4:1.5"),
        ("털장갑 끼고 놀아요", "C4:.5 F4:.5 A4:.5 C5:.5 A#4:.5 A4:.5 G4:.5 F4:1.5"),
    )),
)

# ---------------------------------------------------------------------------------------------
# Syllables and pronunciation

SOUNDING_ONSETS = tuple("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅈㅉㅊㅋㅌㅍㅎ")  # the 18 choseong that make a sound
ALL_NUCLEI = tuple("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ")
CODA_SOUNDS = tuple("ㄱㄴㄷㄹㅁㅂㅇ")  # the 7 coda sounds of spoken Korean (k n t l m p ng)

ONSET_ROMAN = {
    "": "", "ㄱ": "g", "ㄲ": "kk", "ㄴ": "n", "ㄷ": "d", "ㄸ": "tt", "ㄹ": "r", "ㅁ": "m", "ㅂ": "b", "ㅃ": "pp",
    "ㅅ": "s", "ㅆ": "ss", "ㅈ": "j", "ㅉ": "jj", "ㅊ": "ch", "ㅋ": "k", "ㅌ": "t", "ㅍ": "p", "ㅎ": "h",
}
NUCLEUS_ROMAN = {
    "ㅏ": "a", "ㅐ": "ae", "ㅑ": "y_a", "ㅒ": "y_ae", "ㅓ": "eo", "ㅔ": "e", "ㅕ": "y_eo", "ㅖ": "y_e", "ㅗ": "o",
    "ㅘ": "w_a", "ㅙ": "w_ae", "ㅚ": "oe", "ㅛ": "y_o", "ㅜ": "u", "ㅝ": "w_eo", "ㅞ": "w_e", "ㅟ": "w_i",
    "ㅠ": "y_u", "ㅡ": "eu", "ㅢ": "ui", "ㅣ": "i",
}
CODA_ROMAN = {"": "", "ㄱ": "k", "ㄴ": "n", "ㄷ": "t", "ㄹ": "l", "ㅁ": "m", "ㅂ": "p", "ㅇ": "ng"}
NEUTRALIZED_CODA = {
    "ㄱ": "ㄱ", "ㄲ": "ㄱ", "ㅋ": "ㄱ", "ㄴ": "ㄴ", "ㄷ": "ㄷ", "ㅅ": "ㄷ", "ㅆ": "ㄷ", "ㅈ": "ㄷ", "ㅊ": "ㄷ",
    "ㅌ": "ㄷ", "ㅎ": "ㄷ", "ㄹ": "ㄹ", "ㅁ": "ㅁ", "ㅂ": "ㅂ", "ㅍ": "ㅂ", "ㅇ": "ㅇ",
}
ASPIRATED = {"ㄱ": "ㅋ", "ㄷ": "ㅌ", "ㅂ": "ㅍ", "ㅈ": "ㅊ"}
TENSE = {"ㄱ": "ㄲ", "ㄷ": "ㄸ", "ㅂ": "ㅃ", "ㅅ": "ㅆ", "ㅈ": "ㅉ"}
NASALIZED = {"ㄱ": "ㅇ", "ㄷ": "ㄴ", "ㅂ": "ㅁ"}
# Glide and vowel of each nucleus (the vowel is what a melisma continues).
NUCLEUS_PARTS = {
    "ㅏ": ("", "a"), "ㅐ": ("", "ae"), "ㅑ": ("y", "a"), "ㅒ": ("y", "ae"), "ㅓ": ("", "eo"), "ㅔ": ("", "e"),
    "ㅕ": ("y", "eo"), "ㅖ": ("y", "e"), "ㅗ": ("", "o"), "ㅘ": ("w", "a"), "ㅙ": ("w", "ae"), "ㅚ": ("w", "e"),
    "ㅛ": ("y", "o"), "ㅜ": ("", "u"), "ㅝ": ("w", "eo"), "ㅞ": ("w", "e"), "ㅟ": ("w", "i"), "ㅠ": ("y", "u"),
    "ㅡ": ("", "eu"), "ㅢ": ("eu", "i"), "ㅣ": ("", "i"),
}
VOWEL_JAMO = {"a": "ㅏ", "ae": "ㅐ", "eo": "ㅓ", "e": "ㅔ", "o": "ㅗ", "u": "ㅜ", "eu": "ㅡ", "i": "ㅣ"}


class Syllable(NamedTuple):
    """A syllable as compatibility jamo; onset '' = silent ㅇ, coda '' = none."""

    onset: str
    nucleus: str
    coda: str

    @property
    def roman(self) -> str:
        parts = [ONSET_ROMAN[self.onset], NUCLEUS_ROMAN[self.nucleus], CODA_ROMAN[self.coda]]
        return "_".join(p for p in parts if p)


def split_syllable(char: str) -> Syllable:
    """`jamo.h2j` split of one Hangul syllable; double codas are not used by the demo songs."""
    parts = jamo.j2hcj(jamo.h2j(char))
    if not "\uac00" <= char <= "\ud7a3" or len(parts) not in (2, 3):
        raise ValueError(f"'{char}' is not a Hangul syllable")
    coda = parts[2] if len(parts) == 3 else ""
    if coda and coda not in NEUTRALIZED_CODA:
        raise ValueError(f"'{char}': double coda '{coda}' is not supported by the demo pronunciation rules")
    return Syllable("" if parts[0] == "ㅇ" else parts[0], parts[1], coda)


def is_continuation(previous: Syllable, current: Syllable) -> bool:
    """A melisma note written CSD-style: silent onset, the previous vowel repeated, previous open."""
    return not previous.coda and not current.onset and current.nucleus == VOWEL_JAMO[NUCLEUS_PARTS[previous.nucleus][1]]


def pronounce_word(written: list[Syllable]) -> list[Syllable]:
    """The sung form of one word: liaison, neutralization, aspiration, nasalization, tensification, lateralization."""
    sylls = list(written)
    for i in range(len(sylls) - 1):
        current, following = sylls[i], sylls[i + 1]
        coda, onset = current.coda, following.onset
        if not coda:
            continue
        if not onset:  # liaison: the coda moves over (ㅎ falls silent, ㅇ stays)
            if coda == "ㅎ":
                sylls[i] = current._replace(coda="")
            elif coda != "ㅇ":
                sylls[i], sylls[i + 1] = current._replace(coda=""), following._replace(onset=coda)
            continue
        if coda == "ㅎ" and onset in ASPIRATED:
            sylls[i], sylls[i + 1] = current._replace(coda=""), following._replace(onset=ASPIRATED[onset])
            continue
        sound = NEUTRALIZED_CODA[coda]
        if onset == "ㅎ" and sound in ASPIRATED:
            sylls[i], sylls[i + 1] = current._replace(coda=""), following._replace(onset=ASPIRATED[sound])
        elif onset in ("ㄴ", "ㅁ") and sound in NASALIZED:
            sylls[i] = current._replace(coda=NASALIZED[sound])
        elif sound in ("ㄱ", "ㄷ", "ㅂ") and onset in TENSE:
            sylls[i], sylls[i + 1] = current._replace(coda=sound), following._replace(onset=TENSE[onset])
        elif (sound, onset) in (("ㄹ", "ㄴ"), ("ㄴ", "ㄹ")):
            sylls[i], sylls[i + 1] = current._replace(coda="ㄹ"), following._replace(onset="ㄹ")
        else:
            sylls[i] = current._replace(coda=sound)
    last = sylls[-1]
    sylls[-1] = last._replace(coda=NEUTRALIZED_CODA[last.coda] if last.coda else "")
    return sylls


# ---------------------------------------------------------------------------------------------
# Scores

NOTE_NAMES = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8, "A": 9, "A#": 10, "B": 11}


def parse_note_name(name: str) -> int:
    """``A4`` -> 69, ``C#5`` -> 73."""
    return 12 * (int(name[-1]) + 1) + NOTE_NAMES[name[:-1]]


class DemoNote(NamedTuple):
    """One sung note of a rendered song (times in seconds, rounded to 0.1 ms as in the csv)."""

    start: float
    end: float
    pitch: int
    written: str  # the Hangul syllable of the lyric file
    sung: Syllable  # what the voice pronounces
    continuation: bool  # melisma: no new onset, the previous vowel goes on
    phrase: int


class SongScore(NamedTuple):
    song: DemoSong
    notes: tuple[DemoNote, ...]
    seconds: float  # length of the wav


def song_score(song: DemoSong, transpose: int = 0) -> SongScore:
    """Note times, pronunciation and melisma flags of a song (its notes moved by `transpose` semitones);
    raises ValueError on a malformed song."""
    beat = 60.0 / song.tempo_bpm
    time = LEAD_IN_SECONDS
    notes: list[DemoNote] = []
    for phrase_index, (line, melody) in enumerate(song.phrases):
        tokens = melody.split()
        words = line.split()
        if sum(len(w) for w in words) != len(tokens):
            raise ValueError(f"{song.recording_id} phrase {phrase_index + 1}: {sum(len(w) for w in words)} syllables, {len(tokens)} notes")
        token_iter = iter(tokens)
        for word in words:
            written = [split_syllable(c) for c in word]
            sung = pronounce_word(written)
            for index, char in enumerate(word):
                name, beats = next(token_iter).split(":")
                start, end = round(time, 4), round(time + float(beats) * beat, 4)
                continuation = index > 0 and is_continuation(written[index - 1], written[index])
                notes.append(DemoNote(start, end, parse_note_name(name) + transpose, char, sung[index], continuation, phrase_index))
                time += float(beats) * beat
        time += REST_BEATS * beat
    seconds = notes[-1].end + TAIL_SECONDS
    return SongScore(song, tuple(notes), seconds)


# ---------------------------------------------------------------------------------------------
# The voice

# Formants (Hz) of an adult female voice per vowel (F1, F2, F3), and per consonant target.
VOWEL_FORMANTS = {
    "a": (850, 1350, 2800), "ae": (650, 1950, 2850), "e": (560, 2050, 2900), "eo": (650, 1100, 2750),
    "o": (460, 850, 2750), "u": (380, 950, 2650), "eu": (420, 1550, 2800), "i": (320, 2700, 3300),
}
GLIDE_FORMANTS = {"y": (300, 2500, 3200), "w": (330, 750, 2600), "eu": (380, 1500, 2700)}
PLACE_FORMANTS = {  # closure loci: where formants point during a consonant (transitions into vowels)
    "labial": (250, 900, 2300), "alveolar": (250, 1700, 2700), "velar": (250, 2000, 2400), "palatal": (250, 2200, 2900),
}
NASAL_FORMANTS = {"ㅁ": (250, 1000, 2300), "ㄴ": (250, 1500, 2600), "ㅇ": (250, 1800, 2500)}
LIQUID_FORMANTS = (360, 1350, 2600)
BANDWIDTHS = (90.0, 110.0, 160.0)
F4_F5 = ((3800.0, 250.0), (4800.0, 350.0))
# Noise bands (Hz) of the obstruent noises.
NOISE_BANDS = {
    "labial": (300, 2500), "alveolar": (3000, 8000), "velar": (1400, 3500), "sibilant": (4000, 10000),
    "palatal": (2500, 7000), "aspiration": (400, 5000),
}
STOPS = {"ㄱ": ("velar", "lenis"), "ㄲ": ("velar", "tense"), "ㅋ": ("velar", "aspirated"),
         "ㄷ": ("alveolar", "lenis"), "ㄸ": ("alveolar", "tense"), "ㅌ": ("alveolar", "aspirated"),
         "ㅂ": ("labial", "lenis"), "ㅃ": ("labial", "tense"), "ㅍ": ("labial", "aspirated")}
AFFRICATES = {"ㅈ": "lenis", "ㅉ": "tense", "ㅊ": "aspirated"}
ONSET_SECONDS = {"lenis": 0.045, "tense": 0.055, "aspirated": 0.060, "ㅅ": 0.055, "ㅆ": 0.065, "ㅎ": 0.045,
                 "ㅈ": 0.050, "ㅉ": 0.055, "ㅊ": 0.060, "nasal": 0.045, "ㄹ": 0.030}
CODA_SECONDS = {"nasal": 0.070, "ㄹ": 0.060, "stop": 0.050}
CODA_PLACE = {"ㄱ": "velar", "ㄷ": "alveolar", "ㅂ": "labial"}


class _Segment(NamedTuple):
    start: float  # seconds from the phrase start
    end: float
    formants: tuple[float, float, float]
    gain: float  # voiced level (RMS of the harmonic part)
    tilt: float  # extra high-frequency damping exponent (nasal murmur is dull)


class _Noise(NamedTuple):
    start: float
    end: float
    band: str
    level: float  # RMS
    shape: str  # "burst" (fast decay) or "flat" (sustained, short fades)


class _PhrasePlan(NamedTuple):
    segments: list[_Segment]
    noises: list[_Noise]
    pitch_points: list[tuple[float, float, float, bool]]  # (start, end, midi, glide_in) per note


def _onset_plan(onset: str, t0: float, duration: float, vowel: tuple[float, float, float], first: bool) -> tuple[list[_Segment], list[_Noise]]:
    """Segments and noises of an onset consonant occupying [t0, t0 + duration)."""
    t1 = t0 + duration
    if onset in STOPS or onset in AFFRICATES:
        place, kind = STOPS[onset] if onset in STOPS else ("palatal", AFFRICATES[onset])
        closure = {"lenis": 0.55, "tense": 0.8, "aspirated": 0.35}[kind] * duration
        if onset in AFFRICATES:
            closure = 0.4 * duration
        release = t0 + closure
        # Lenis stops between vowels keep a faint voice bar, as in Korean (아기 [agi]).
        bar = 0.06 if kind == "lenis" and not first else 0.0
        segments = [_Segment(t0, release, PLACE_FORMANTS[place], bar, 1.0), _Segment(release, t1, vowel, 0.0, 0.0)]
        noises = [_Noise(release, release + 0.008, place if onset in STOPS else "palatal", 0.35 if kind != "lenis" else 0.2, "burst")]
        if onset in AFFRICATES:
            noises.append(_Noise(release, t1, "palatal", {"lenis": 0.12, "tense": 0.16, "aspirated": 0.18}[kind], "flat"))
        if kind == "aspirated":
            noises.append(_Noise(release + 0.006, t1, "aspiration", 0.16, "flat"))
        elif kind == "lenis":
            noises.append(_Noise(release + 0.006, t1, "aspiration", 0.06, "flat"))
        return segments, noises
    if onset in ("ㅅ", "ㅆ"):
        level = 0.16 if onset == "ㅅ" else 0.22
        return [_Segment(t0, t1, PLACE_FORMANTS["alveolar"], 0.0, 0.0)], [_Noise(t0, t1, "sibilant", level, "flat")]
    if onset == "ㅎ":
        return [_Segment(t0, t1, vowel, 0.0, 0.0)], [_Noise(t0, t1, "aspiration", 0.12, "flat")]
    if onset in ("ㄴ", "ㅁ"):
        return [_Segment(t0, t1, NASAL_FORMANTS[onset], 0.35, 1.5)], []
    if onset == "ㄹ":
        return [_Segment(t0, t1, LIQUID_FORMANTS, 0.5, 0.5)], []
    raise ValueError(f"no onset plan for '{onset}'")


def _onset_seconds(onset: str) -> float:
    if onset in STOPS:
        return ONSET_SECONDS[STOPS[onset][1]]
    if onset in ("ㄴ", "ㅁ"):
        return ONSET_SECONDS["nasal"]
    return ONSET_SECONDS[onset]


def _plan_phrase(notes: list[DemoNote]) -> _PhrasePlan:
    """Phoneme segments, noises and pitch targets of one phrase, times relative to its first note."""
    origin = notes[0].start
    segments: list[_Segment] = []
    noises: list[_Noise] = []
    pitch_points = []
    for index, note in enumerate(notes):
        start, end = note.start - origin, note.end - origin
        duration = end - start
        glide, vowel_key = NUCLEUS_PARTS[note.sung.nucleus]
        if note.continuation:
            glide = ""  # the melisma note continues the vowel
        vowel = VOWEL_FORMANTS[vowel_key]
        t = start
        if note.sung.onset and not note.continuation:
            onset_duration = min(_onset_seconds(note.sung.onset), 0.3 * duration)
            more_segments, more_noises = _onset_plan(note.sung.onset, t, onset_duration, GLIDE_FORMANTS[glide] if glide else vowel, index == 0)
            segments += more_segments
            noises += more_noises
            t += onset_duration
        coda = note.sung.coda
        coda_duration = 0.0
        if coda:
            kind = "nasal" if coda in NASAL_FORMANTS else ("ㄹ" if coda == "ㄹ" else "stop")
            coda_duration = min(CODA_SECONDS[kind], 0.3 * duration)
        vowel_end = end - coda_duration
        if glide:
            glide_end = min(t + 0.04, (t + vowel_end) / 2)
            segments.append(_Segment(t, glide_end, GLIDE_FORMANTS[glide], 0.8, 0.0))
            t = glide_end
        segments.append(_Segment(t, vowel_end, vowel, 1.0, 0.0))
        if coda in NASAL_FORMANTS:
            segments.append(_Segment(vowel_end, end, NASAL_FORMANTS[coda], 0.35, 1.5))
        elif coda == "ㄹ":
            segments.append(_Segment(vowel_end, end, LIQUID_FORMANTS, 0.5, 0.5))
        elif coda:  # unreleased stop: the formants move to the closure, then silence
            segments.append(_Segment(vowel_end, end, PLACE_FORMANTS[CODA_PLACE[coda]], 0.0, 1.0))
        pitch_points.append((start, end, float(note.pitch), index > 0))
    return _PhrasePlan(segments, noises, pitch_points)


def _smooth(track: np.ndarray, taps: int) -> np.ndarray:
    """Hann-weighted moving average along the last axis (edges held)."""
    if taps < 2:
        return track
    kernel = np.hanning(taps + 2)[1:-1]
    kernel /= kernel.sum()
    pad = taps // 2
    padded = np.pad(track, [(0, 0)] * (track.ndim - 1) + [(pad, taps - 1 - pad)], mode="edge")
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, padded)


def _resonance(freq: np.ndarray, formant: np.ndarray, bandwidth: np.ndarray | float) -> np.ndarray:
    """Magnitude of a two-pole resonator (unit gain at 0 Hz) at ``freq``."""
    half = np.asarray(bandwidth) / 2.0
    return (formant**2 + half**2) / np.sqrt(((freq - formant) ** 2 + half**2) * ((freq + formant) ** 2 + half**2))


def _render_phrase(
    plan: _PhrasePlan, n_samples: int, sample_rate: int, rng: np.random.Generator, vibrato_hz: float, voice_settings: DemoVoice = DEMO_VOICES["default"]
) -> np.ndarray:
    """The phrase's audio, float64 ``[n_samples]``."""
    control_hop = max(1, int(round(CONTROL_HOP_SECONDS * sample_rate)))
    n_control = n_samples // control_hop + 2
    control_times = np.arange(n_control) * control_hop / sample_rate

    # Phoneme targets at control rate, then smoothed into coarticulated transitions.
    formants = np.zeros((3, n_control))
    gain = np.zeros(n_control)
    tilt = np.zeros(n_control)
    for segment in plan.segments:
        inside = (control_times >= segment.start) & (control_times < segment.end)
        formants[:, inside] = np.asarray(segment.formants, dtype=np.float64)[:, None]
        gain[inside] = segment.gain
        tilt[inside] = segment.tilt
    last = plan.segments[-1]
    formants[:, control_times >= last.end] = np.asarray(last.formants, dtype=np.float64)[:, None]
    formants = _smooth(formants, int(0.025 / CONTROL_HOP_SECONDS))
    if voice_settings.formant_scale != 1.0:  # the default voice keeps its exact numbers
        formants = formants * voice_settings.formant_scale
    gain = _smooth(gain, int(0.010 / CONTROL_HOP_SECONDS))
    tilt = _smooth(tilt, int(0.010 / CONTROL_HOP_SECONDS))
    end_time = plan.pitch_points[-1][1]
    release = np.clip((end_time - control_times) / 0.04, 0.0, 1.0)  # phrase ends fade over 40 ms
    attack = np.clip(control_times / 0.02, 0.0, 1.0)
    gain *= release * attack

    # Pitch: each note's MIDI pitch, a 60 ms glide from the previous note, a small scoop on the
    # first note, vibrato fading in after 150 ms, and a slow random drift of a few cents.
    midi = np.zeros(n_control)
    vibrato_depth = np.zeros(n_control)
    for index, (start, end, pitch, glide_in) in enumerate(plan.pitch_points):
        inside = (control_times >= start) & ((control_times < end) | (index == len(plan.pitch_points) - 1))
        since = control_times[inside] - start
        midi[inside] = pitch
        glide_seconds = min(0.06, 0.25 * (end - start))
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.clip(since / glide_seconds, 0.0, 1.0))
        from_pitch = plan.pitch_points[index - 1][2] if glide_in else pitch - 0.3
        midi[inside] = from_pitch + (pitch - from_pitch) * ramp
        vibrato_depth[inside] = voice_settings.vibrato_depth * np.clip((since - 0.15) / 0.3, 0.0, 1.0)
    drift = _smooth(rng.standard_normal(n_control)[None], int(0.2 / CONTROL_HOP_SECONDS))[0]
    drift *= 0.05 / max(np.abs(drift).max(), 1e-9)
    midi = midi + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * control_times) + drift
    f0_control = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)

    # Harmonic amplitudes at control rate: 1/k source x formant cascade x damping, normalised so the
    # voiced RMS equals the gain track; harmonics taper off below the cutoff (no aliasing).
    cutoff = min(HARMONIC_CUTOFF_HZ, 0.45 * sample_rate)
    n_harmonics = int(cutoff / f0_control.min())
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)[:, None]  # [K, 1]
    freq = k * f0_control[None, :]  # [K, C]
    response = np.ones_like(freq)
    for i in range(3):
        response *= _resonance(freq, formants[i][None, :], BANDWIDTHS[i])
    for formant, bandwidth in F4_F5:
        response *= _resonance(freq, formant if voice_settings.formant_scale == 1.0 else formant * voice_settings.formant_scale, bandwidth)
    amplitude = (response + 1e-3) / k * (1.0 + (freq / 500.0) ** 2) ** (-0.5 * tilt[None, :])
    amplitude *= np.clip((cutoff - freq) / 2000.0, 0.0, 1.0)
    amplitude *= gain[None, :] / np.sqrt(0.5 * np.sum(amplitude**2, axis=0, keepdims=True) + 1e-12)

    sample_times = np.arange(n_samples) / sample_rate
    f0 = np.interp(sample_times, control_times, f0_control)
    phase = np.mod(2 * np.pi * np.cumsum(f0) / sample_rate, 2 * np.pi)
    voice = np.zeros(n_samples)
    chunk = 16384
    for s0 in range(0, n_samples, chunk):
        s1 = min(n_samples, s0 + chunk)
        position = np.arange(s0, s1) / control_hop
        left = position.astype(np.int64)
        weight = position - left
        amp = amplitude[:, left] * (1.0 - weight) + amplitude[:, left + 1] * weight  # [K, chunk]
        voice[s0:s1] = np.sum(amp * np.sin(k * phase[None, s0:s1]), axis=0)

    # A little breath in the voice, then the obstruent noises.
    gain_samples = np.interp(sample_times, control_times, gain)
    voice += voice_settings.breath * gain_samples * _band_noise(rng, n_samples, "aspiration", sample_rate)
    for noise in plan.noises:
        s0, s1 = int(round(noise.start * sample_rate)), min(n_samples, int(round(noise.end * sample_rate)))
        if s1 - s0 < 8:
            continue
        length = s1 - s0
        t = np.arange(length) / sample_rate
        if noise.shape == "burst":
            envelope = np.exp(-t / 0.003)
        else:
            fade = max(1, min(int(0.008 * sample_rate), length // 3))
            envelope = np.ones(length)
            envelope[:fade] = np.linspace(0.0, 1.0, fade)
            envelope[-fade:] = np.minimum(envelope[-fade:], np.linspace(1.0, 0.0, fade))
        voice[s0:s1] += noise.level * envelope * _band_noise(rng, length, noise.band, sample_rate)
    return voice


def _band_noise(rng: np.random.Generator, length: int, band: str, sample_rate: int) -> np.ndarray:
    """Unit-RMS white noise filtered to a band of `NOISE_BANDS` (a 4th-order Butterworth band-pass)."""
    low, high = NOISE_BANDS[band]
    high = min(high, 0.45 * sample_rate)
    sos = signal.butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    warmup = int(0.01 * sample_rate)
    filtered = signal.sosfilt(sos, rng.standard_normal(length + warmup))[warmup:]
    return filtered / max(float(np.sqrt(np.mean(filtered**2))), 1e-12)


def render_song(score: SongScore, sample_rate: int, seed: int, voice: DemoVoice = DEMO_VOICES["default"]) -> np.ndarray:
    """The song's audio, float32 ``[S]`` peaking at `PEAK_LEVEL`. Deterministic in (song, rate, seed, voice)."""
    song_number = int(score.song.recording_id[2:5])
    # Per song: a subset renders the same bytes; a voice with a salt has its own streams.
    rng = np.random.default_rng([seed, song_number] if voice.seed_salt is None else [seed, song_number, voice.seed_salt])
    vibrato_hz = 5.2 + 0.6 * rng.random() + voice.vibrato_offset_hz
    audio = np.zeros(int(round(score.seconds * sample_rate)))
    phrases: dict[int, list[DemoNote]] = {}
    for note in score.notes:
        phrases.setdefault(note.phrase, []).append(note)
    for notes in phrases.values():
        start = int(round(notes[0].start * sample_rate))
        n_samples = int(round(notes[-1].end * sample_rate)) - start
        audio[start : start + n_samples] += _render_phrase(_plan_phrase(notes), n_samples, sample_rate, rng, vibrato_hz, voice)
    audio *= PEAK_LEVEL / max(float(np.abs(audio).max()), 1e-9)
    audio += 10.0 ** (NOISE_FLOOR_DBFS / 20.0) * rng.standard_normal(audio.size)
    return audio.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The corpus on disk


@dataclass(frozen=True)
class DemoCorpusSummary:
    """What a generated corpus holds. onsets / nuclei / codas: the distinct sung jamo it covers."""

    songs: int
    phrases: int
    notes: int
    seconds: float
    onsets: tuple[str, ...]
    nuclei: tuple[str, ...]
    codas: tuple[str, ...]
    valid_songs: tuple[str, ...]
    test_songs: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.songs} songs, {self.phrases} phrases, {self.notes} notes, {self.seconds / 60:.2f} min; "
            f"onsets {len(self.onsets)}/{len(SOUNDING_ONSETS)}, vowels {len(self.nuclei)}/{len(ALL_NUCLEI)}, "
            f"codas {len(self.codas)}/{len(CODA_SOUNDS)}; valid {','.join(self.valid_songs) or '-'}, test {','.join(self.test_songs) or '-'}"
        )


def selected_songs(songs: int | None) -> tuple[DemoSong, ...]:
    if songs is None:
        return DEMO_SONGS
    if not 1 <= songs <= len(DEMO_SONGS):
        raise ValueError(f"songs must be 1..{len(DEMO_SONGS)}, got {songs}")
    return DEMO_SONGS[:songs]


def summarize(scores: list[SongScore]) -> DemoCorpusSummary:
    notes = [n for s in scores for n in s.notes]
    ids = {s.song.recording_id[:5] for s in scores}
    return DemoCorpusSummary(
        songs=len(scores),
        phrases=sum(len(s.song.phrases) for s in scores),
        notes=len(notes),
        seconds=round(sum(s.seconds for s in scores), 3),
        onsets=tuple(o for o in SOUNDING_ONSETS if any(n.sung.onset == o and not n.continuation for n in notes)),
        nuclei=tuple(v for v in ALL_NUCLEI if any(n.sung.nucleus == v for n in notes)),
        codas=tuple(c for c in CODA_SOUNDS if any(n.sung.coda == c for n in notes)),
        valid_songs=tuple(s for s in DEMO_VALID_SONGS if s in ids),
        test_songs=tuple(s for s in DEMO_TEST_SONGS if s in ids),
    )


def _write_song(score: SongScore, korean_dir: Path, sample_rate: int, seed: int, voice: DemoVoice) -> None:
    import pretty_midi

    rid = score.song.recording_id
    audio = render_song(score, sample_rate, seed, voice)
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    sf.write(korean_dir / "wav" / f"{rid}.wav", pcm, sample_rate, subtype="PCM_16", format="WAV")
    rows = ["start,end,pitch,syllable"] + [f"{n.start:.4f},{n.end:.4f},{n.pitch},{n.written}" for n in score.notes]
    (korean_dir / "csv" / f"{rid}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    lyric_lines, roman_lines = [], []
    for phrase_index, (line, _) in enumerate(score.song.phrases):
        lyric_lines.append(line)
        roman_lines.append(" ".join(n.sung.roman for n in score.notes if n.phrase == phrase_index))
    (korean_dir / "lyric" / f"{rid}.txt").write_text("\n".join(lyric_lines) + "\n", encoding="utf-8")
    (korean_dir / "txt" / f"{rid}.txt").write_text("\n".join(roman_lines) + "\n", encoding="utf-8")
    midi = pretty_midi.PrettyMIDI(initial_tempo=score.song.tempo_bpm)
    voice = pretty_midi.Instrument(program=52, name="voice")  # 52: choir aahs
    voice.notes = [pretty_midi.Note(velocity=100, pitch=n.pitch, start=n.start, end=n.end) for n in score.notes]
    midi.instruments.append(voice)
    midi.write(str(korean_dir / "mid" / f"{rid}.mid"))


def _marker(sample_rate: int, seed: int, songs: tuple[DemoSong, ...], voice: str = "default") -> dict:
    marker = {"generator_version": GENERATOR_VERSION, "sample_rate": sample_rate, "seed": seed, "recordings": [s.recording_id for s in songs]}
    if voice != "default":  # the default voice's marker is as it always was; another voice's names its settings
        marker["voice"] = dataclasses.asdict(demo_voice(voice))
    return marker


def is_complete(out_dir: Path, sample_rate: int = 44100, seed: int = 1234, songs: int | None = None, voice: str = "default") -> bool:
    """True when ``out_dir`` holds this generator's corpus for these arguments, every file in place."""
    marker_path = Path(out_dir) / MARKER_NAME
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    chosen = selected_songs(songs)
    if marker != _marker(sample_rate, seed, chosen, voice):
        return False
    korean = Path(out_dir) / "korean"
    return all((korean / folder / f"{s.recording_id}.{ext}").is_file() for s in chosen for folder, ext in FILES)


def generate_demo_corpus(
    out_dir: Path, sample_rate: int = 44100, seed: int = 1234, songs: int | None = None, voice: str = "default"
) -> DemoCorpusSummary:
    """Write the demo corpus under ``out_dir`` (CSD final-release layout) and summarize it.

    songs: only the first N songs (tests); None = all. voice: a name of `DEMO_VOICES`. An ``out_dir`` that already holds this
    corpus (marker file with the same generator version and arguments) is left as it is. The
    corpus is built in a temporary folder beside ``out_dir`` and renamed into place; an older demo
    corpus is replaced, any other non-empty folder is a `UserInputError`.
    """
    out_dir = Path(out_dir)
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be >= {MIN_SAMPLE_RATE} (the sibilants reach 10 kHz), got {sample_rate}")
    chosen = selected_songs(songs)
    singer = demo_voice(voice)
    scores = [song_score(s, singer.transpose) for s in chosen]
    summary = summarize(scores)
    if is_complete(out_dir, sample_rate, seed, songs, voice):
        return summary
    ours = (out_dir / MARKER_NAME).is_file()
    if out_dir.exists() and not ours and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserInputError(
            f"{out_dir}: exists and is not a demo corpus; point dataset.raw_data_dir at your CSD copy "
            "(and set dataset.demo_corpus: false) or at an empty folder"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        build_dir.chmod(0o755)  # mkdtemp makes it private; the corpus is ordinary data
        korean = build_dir / "korean"
        for folder, _ in FILES:
            (korean / folder).mkdir(parents=True)
        for score in scores:
            _write_song(score, korean, sample_rate, seed, singer)
        (build_dir / MARKER_NAME).write_text(json.dumps(_marker(sample_rate, seed, chosen, voice), ensure_ascii=False), encoding="utf-8")
        _swap_into_place(build_dir, out_dir)
    finally:
        if build_dir.exists():
            shutil.rmtree(build_dir)
    return summary


def _swap_into_place(build_dir: Path, out_dir: Path) -> None:
    """Rename ``build_dir`` onto ``out_dir``; an old demo corpus there is moved aside first and removed."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
    try:
        os.rename(build_dir, out_dir)
    except OSError:
        # Another process put a corpus there first: keep it.
        if old is not None and not out_dir.exists():
            os.rename(old, out_dir)
            old = None
        if not (out_dir / MARKER_NAME).is_file():
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Write the embedded Korean demo singing corpus (CSD final-release layout).")
    parser.add_argument("--out", required=True, help="output folder, e.g. data/raw/demo")
    parser.add_argument("--sample-rate", type=int, default=44100, help="wav sample rate (default 44100, as CSD)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed of the voice's noise and drift")
    parser.add_argument("--songs", type=int, default=None, help="only the first N songs")
    parser.add_argument("--voice", default="default", help=f"the synthetic singer: {', '.join(DEMO_VOICES)}")
    args = parser.parse_args()
    try:
        summary = generate_demo_corpus(Path(args.out), sample_rate=args.sample_rate, seed=args.seed, songs=args.songs, voice=args.voice)
    except ValueError as error:
        raise UserInputError(f"command line: {error}; fix --sample-rate / --songs / --voice") from None
    print(f"demo corpus at {args.out}: {summary}")
    return 0


if __name__ == "__main__":
    run_cli(main)
