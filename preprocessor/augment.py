"""Data augmentation at binarization: DiffSinger's random key shift and random time stretch, as extra copies.

`augmentation:` of a dataset config (`AugmentationSettings`) asks for augmented copies of the
*train* split (valid and test stay as recorded). Like DiffSinger's `augmentation_args`
(`random_pitch_shifting`, `random_time_stretching`), `scale` is the number of augmented items as a
fraction of the train split (0.75: three copies for every four items; 2: two per item), each made
from a source item drawn at random, with a shift drawn from `range`:

* key shift: an integer number of semitones (uniform over the range, 0 excluded: note pitches are
  MIDI integers here, DiffSinger's acoustic model shifts by real numbers); the audio's F0 and the
  notes' pitches move by the same semitones.
* time stretch: a speed factor drawn log-uniformly from the range (DiffSinger's `domain: log`); the
  item gets ``round(n_frames / speed)`` frames exactly, its notes' times are scaled by the same
  ratio (the last note ends on the last frame) and its phonemes re-framed by the frame rule.

Both transforms resynthesise the audio with WORLD (pyworld): the recording is analysed with its own
F0 (the one binarization extracts) into a spectral envelope (CheapTrick) and aperiodicity (D4C);
the key shift multiplies the F0 and keeps the envelope, so **formants stay where they are** (a
resampling shift would move them with the pitch); the time stretch interpolates all three tracks
in time. Every feature of an augmented copy (mel, F0, energy, ...) is then extracted from the
resynthesised audio exactly as from a recording, so targets and audio agree. An augmented copy is
vocoded audio (a little buzzier than the recording); the originals stay in the split unchanged.

Deterministic: the copies, their sources and their shifts depend only on `seed` and the train split's
items, and the synthesis is deterministic; what was made is recorded in the train split's `meta.json`
(`attributes.augmentation`, each copy's `source`, `key_shift`, `speed`) and in `summary.json`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from config.errors import UserInputError
from preprocessor.world import WorldAnalysis, track_at, world_analysis, world_synthesis


@dataclass(frozen=True)
class AugmentationSettings:
    """`augmentation:` — extra train copies; `*_scale` 0 turns a transform off (the default: none)."""

    key_shift_scale: float = 0.0  # augmented key-shift items per train item (DiffSinger's random_pitch_shifting.scale)
    key_shift_range: tuple[int, int] = (-5, 5)  # semitones, both ends included, 0 never drawn
    time_stretch_scale: float = 0.0  # augmented time-stretch items per train item (random_time_stretching.scale)
    time_stretch_range: tuple[float, float] = (0.8, 1.25)  # speed factors (> 1 = faster, fewer frames), log-uniform
    seed: int = 1234

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_shift_range", tuple(self.key_shift_range))
        object.__setattr__(self, "time_stretch_range", tuple(float(v) for v in self.time_stretch_range))
        if self.key_shift_scale < 0 or self.time_stretch_scale < 0:
            raise ValueError("key_shift_scale and time_stretch_scale must be >= 0")
        low, high = self.key_shift_range
        if len(self.key_shift_range) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise ValueError(f"key_shift_range must be two whole numbers [low, high] with low <= high, got {list(self.key_shift_range)}")
        if self.key_shift_scale > 0 and low == high == 0:
            raise ValueError("key_shift_range [0, 0] shifts nothing; widen it or set key_shift_scale: 0")
        slow, fast = self.time_stretch_range
        if len(self.time_stretch_range) != 2 or not (0 < slow <= fast):
            raise ValueError(f"time_stretch_range must be two speeds 0 < low <= high, got {list(self.time_stretch_range)}")

    @property
    def enabled(self) -> bool:
        return self.key_shift_scale > 0 or self.time_stretch_scale > 0


class Transform(NamedTuple):
    """One augmented copy: of train item `source` (index), shifted `key_shift` semitones, played at `speed`."""

    source: int
    key_shift: int = 0
    speed: float = 1.0

    @property
    def suffix(self) -> str:
        return f"#key{self.key_shift:+d}" if self.key_shift else f"#speed{self.speed:.3f}"


def plan_augmentation(settings: AugmentationSettings, n_items: int) -> list[Transform]:
    """The augmented copies of a train split of `n_items`, deterministic for the seed (key shifts first)."""
    if n_items == 0 or not settings.enabled:
        return []
    rng = np.random.default_rng(settings.seed)
    plan: list[Transform] = []
    low, high = settings.key_shift_range
    shifts = [k for k in range(low, high + 1) if k != 0]
    for _ in range(round(settings.key_shift_scale * n_items)):
        plan.append(Transform(int(rng.integers(n_items)), key_shift=int(shifts[rng.integers(len(shifts))])))
    slow, fast = settings.time_stretch_range
    for _ in range(round(settings.time_stretch_scale * n_items)):
        speed = math.exp(rng.uniform(math.log(slow), math.log(fast)))
        plan.append(Transform(int(rng.integers(n_items)), speed=round(speed, 6)))
    return plan


def stretched_frames(n_frames: int, speed: float) -> int:
    """Frames of an item of `n_frames` played at `speed` (at least one)."""
    return max(1, int(math.floor(n_frames / speed + 0.5)))


def world_transform(audio: np.ndarray, sample_rate: int, hop_size: int, f0_hz: np.ndarray, key_shift: int = 0, speed: float = 1.0) -> np.ndarray:
    """`audio [n_frames * hop]` resynthesised by WORLD `key_shift` semitones higher (envelope kept) at `speed`.

    `f0_hz [n_frames]` (0 = unvoiced): the recording's F0 at the frame centres, WORLD's analysis F0.
    Returns float32 audio of exactly ``stretched_frames(n_frames, speed) * hop_size`` samples.
    """
    n_frames = len(f0_hz)
    analysis = world_analysis(audio, sample_rate, hop_size, f0_hz)
    f0_world, envelope, aperiodicity = analysis.f0, analysis.envelope, analysis.aperiodicity
    out_frames = stretched_frames(n_frames, speed)
    if out_frames != n_frames:
        # Output frame j shows the source at frame j * (n_frames / out_frames) (the real speed, exact in frames).
        positions = np.arange(out_frames + 1, dtype=np.float64) * (n_frames / out_frames)
        f0_world = track_at(f0_world, f0_world > 0, positions)
        index = np.arange(n_frames + 1, dtype=np.float64)
        envelope = np.stack([np.interp(positions, index, column) for column in envelope.T], axis=1)
        aperiodicity = np.stack([np.interp(positions, index, column) for column in aperiodicity.T], axis=1)
    y = world_synthesis(WorldAnalysis(f0_world * 2.0 ** (key_shift / 12.0), envelope, aperiodicity), sample_rate, hop_size)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def transformed_notes(notes: Sequence[dict[str, Any]], transform: Transform, n_frames: int, out_frames: int, sample_rate: int, hop_size: int) -> list[dict[str, Any]]:
    """A metadata row's notes for a copy: pitches + key shift (rests stay 0), times scaled to `out_frames` (the last note ends on it)."""
    ratio = out_frames / n_frames
    out = []
    for index, note in enumerate(notes):
        moved = dict(note)
        moved["start"] = note["start"] * ratio
        moved["end"] = note["end"] * ratio
        if note["pitch"] > 0:
            moved["pitch"] = int(note["pitch"]) + transform.key_shift
            if not 1 <= moved["pitch"] <= 127:
                raise UserInputError(
                    f"config: augmentation.key_shift_range moves note {index} (MIDI {note['pitch']}) to {moved['pitch']}, outside MIDI 1..127; narrow the range"
                )
        out.append(moved)
    if out:
        out[-1]["end"] = out_frames * hop_size / sample_rate
    return out
