"""A folder of unprocessed singing -> short overlapping pieces with F0 and loudness, cached in the binary store.

The DDSP singer needs no score and no lyrics: any folder of recordings (any sample rate, mono or
stereo, wav / flac / mp3 / ogg as far as soundfile reads them, sub-folders included) becomes its
training data. Each file is loaded as the rest of the project loads audio (`preprocessor.audio.load_wav`:
stereo averaged, soxr-resampled to `audio.sample_rate`), its F0 is tracked on the whole file (Praat or
pYIN, `audio.f0_extractor`, so that no piece edge cuts a pitch period), its A-weighted loudness measured
(`preprocessor.loudness`), and it is sliced into pieces of `piece_seconds` every `piece_hop_seconds`
(overlapping when the hop is shorter), cut at frame boundaries so that a piece's samples are exactly
its frames times the hop.

Cache (`dataset.cache_dir`):

    train/, valid/     binary stores (`preprocessor.binary_dataset`): wav int16 [S], f0 float32 [T] (Hz, 0 =
                       unvoiced), uv uint8 [T] (1 = unvoiced), loudness float32 [T] (dB); speaker_id per item
    stats.json         loudness and pitch statistics of the train split (saved into the model by the task)
    manifest.json      what the cache was built from: the settings and every file's path, size and mtime

A run whose settings and files equal the manifest reuses the cache as it is; anything else (a changed
setting, a file added, removed or touched) rebuilds it. The manifest is written last, so an interrupted
build is never mistaken for a finished one.

Validation pieces: the files named in `valid_files` (stems or paths relative to the folder), or, when
none are named, the last `valid_share` of every file (pieces of the training part never overlap it).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from config.errors import UserInputError
from preprocessor.atomic_io import write_text_atomic
from preprocessor.audio import AudioSettings, extract_f0, hz_to_midi, load_wav
from preprocessor.binary_dataset import BinaryDataset, BinaryDatasetWriter, FieldSpec
from preprocessor.loudness import a_loudness_db

CACHE_VERSION = 1
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
SPLITS = ("train", "valid")
MANIFEST_NAME = "manifest.json"
STATS_NAME = "stats.json"
N_QUANTILES = 101  # loudness quantiles 0, 1, ..., 100 % (what --loudness_stats maps between)

PIECE_FIELDS = {
    "wav": FieldSpec("int16"),
    "f0": FieldSpec("float32"),
    "uv": FieldSpec("uint8"),
    "loudness": FieldSpec("float32"),
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioFolderSettings:
    """The `dataset:` section of a DDSP singer config, one field per key.

    audio_dir: the folder of recordings (searched recursively); cache_dir: where the pieces and their
    features are cached; piece_seconds / piece_hop_seconds: piece length and start-to-start distance;
    valid_files: recordings held out for validation; valid_share: the tail of each file held out when
    `valid_files` is empty; min_piece_loudness_db: pieces whose loudest frame is quieter are silence and
    skipped; loudness_n_fft: the loudness meter's window; speakers_from_subfolders: the first sub-folder
    of each file names its speaker (else one speaker).
    """

    audio_dir: str
    cache_dir: str
    piece_seconds: float = 4.0
    piece_hop_seconds: float = 2.0
    valid_files: tuple[str, ...] = ()
    valid_share: float = 0.1
    min_piece_loudness_db: float = -60.0
    loudness_n_fft: int = 1024
    speakers_from_subfolders: bool = False

    def __post_init__(self) -> None:
        if self.piece_seconds <= 0 or self.piece_hop_seconds <= 0:
            raise ValueError(f"piece_seconds and piece_hop_seconds must be > 0, got {self.piece_seconds}, {self.piece_hop_seconds}")
        if not 0.0 <= self.valid_share < 1.0:
            raise ValueError(f"valid_share must be in [0, 1), got {self.valid_share}")
        if self.loudness_n_fft <= 0:
            raise ValueError(f"loudness_n_fft must be > 0, got {self.loudness_n_fft}")


class FileFeatures(NamedTuple):
    """One recording at the target rate: wav float32 [S] (S = T * hop), f0 float32 [T], uv uint8 [T], loudness float32 [T]."""

    wav: np.ndarray
    f0: np.ndarray
    uv: np.ndarray
    loudness: np.ndarray


class FeatureCache(NamedTuple):
    """A ready cache: its folder, whether this call reused it, the train statistics and the speaker names."""

    cache_dir: Path
    reused: bool
    stats: dict[str, Any]
    speakers: list[str]


def list_audio_files(audio_dir: Path) -> list[Path]:
    """Every audio file under `audio_dir` (recursively, sorted); an error when there is none."""
    if not audio_dir.is_dir():
        raise UserInputError(f"{audio_dir}: audio folder not found; set dataset.audio_dir to a folder of recordings")
    files = sorted(p for p in audio_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise UserInputError(f"{audio_dir}: no audio files ({', '.join(AUDIO_EXTENSIONS)}); put recordings there or fix dataset.audio_dir")
    return files


def file_features(path: Path, audio: AudioSettings, loudness_n_fft: int) -> FileFeatures:
    """Load one recording and track its F0 and loudness at the frame rate (see the module docstring)."""
    wav = load_wav(path, audio.sample_rate)
    n_frames = len(wav) // audio.hop_size
    if n_frames == 0:
        raise UserInputError(f"{path}: shorter than one frame ({audio.hop_size} samples at {audio.sample_rate} Hz); remove it from the folder")
    wav = wav[: n_frames * audio.hop_size]
    track = extract_f0(wav, audio.sample_rate, audio.hop_size, n_frames, audio.f0_min, audio.f0_max, audio.f0_extractor)
    loudness = a_loudness_db(wav, audio.sample_rate, audio.hop_size, loudness_n_fft)
    return FileFeatures(wav, track.f0_hz, track.uv, loudness)


def piece_starts(n_frames: int, piece_frames: int, hop_frames: int) -> list[int]:
    """First frames of the pieces covering `[0, n_frames)`: every `hop_frames`, plus one ending at the last frame.

    A file shorter than a piece gives one piece, the whole file.
    """
    if n_frames <= piece_frames:
        return [0]
    starts = list(range(0, n_frames - piece_frames + 1, hop_frames))
    if starts[-1] + piece_frames < n_frames:
        starts.append(n_frames - piece_frames)
    return starts


def _relative_name(path: Path, audio_dir: Path) -> str:
    return path.relative_to(audio_dir).as_posix()


def _speaker_of(relative: str, by_subfolder: bool) -> str:
    parts = relative.split("/")
    return parts[0] if by_subfolder and len(parts) > 1 else "default"


def _manifest(files: list[Path], audio_dir: Path, audio: AudioSettings, settings: AudioFolderSettings) -> dict[str, Any]:
    entries = []
    for path in files:
        stat = path.stat()
        entries.append({"path": _relative_name(path, audio_dir), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    data = {k: v for k, v in asdict(settings).items() if k != "cache_dir"}
    data["valid_files"] = list(settings.valid_files)
    features = {k: getattr(audio, k) for k in ("sample_rate", "hop_size", "f0_min", "f0_max", "f0_extractor")}
    return {"cache_version": CACHE_VERSION, "audio": features, "dataset": data, "files": entries}


def _is_valid_file(relative: str, valid_files: tuple[str, ...]) -> bool:
    stem = relative.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return relative in valid_files or stem in valid_files


def loudness_statistics(loudness: np.ndarray, voiced: np.ndarray) -> dict[str, Any]:
    """Mean, std and quantiles of the loudness (all frames; and voiced frames, what `--loudness_stats` maps)."""
    voiced_loudness = loudness[voiced] if voiced.any() else loudness
    grid = np.linspace(0.0, 100.0, N_QUANTILES)
    return {
        "loudness_mean": float(loudness.mean()),
        "loudness_std": float(max(loudness.std(), 1e-3)),
        "loudness_quantiles": np.percentile(loudness, grid).tolist(),
        "voiced_loudness_quantiles": np.percentile(voiced_loudness, grid).tolist(),
    }


def pitch_statistics(f0_hz: np.ndarray) -> dict[str, Any]:
    """Mean, std and 5 / 95 % quantiles of the voiced pitch in MIDI numbers (an empty track gives A3 and 0)."""
    voiced = f0_hz[f0_hz > 0]
    if len(voiced) == 0:
        return {"pitch_mean_midi": 57.0, "pitch_std_midi": 0.0, "pitch_low_midi": 57.0, "pitch_high_midi": 57.0, "voiced_frames": 0}
    midi = hz_to_midi(voiced)
    return {
        "pitch_mean_midi": float(midi.mean()),
        "pitch_std_midi": float(midi.std()),
        "pitch_low_midi": float(np.percentile(midi, 5)),
        "pitch_high_midi": float(np.percentile(midi, 95)),
        "voiced_frames": int(len(voiced)),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def prepare_feature_cache(audio: AudioSettings, settings: AudioFolderSettings, show_progress: bool = True) -> FeatureCache:
    """Reuse the cache when it was built from these settings and files, else build it (see the module docstring)."""
    audio_dir = Path(settings.audio_dir)
    cache_dir = Path(settings.cache_dir)
    files = list_audio_files(audio_dir)
    manifest = _manifest(files, audio_dir, audio, settings)
    names = [_relative_name(p, audio_dir) for p in files]
    unknown_valid = [v for v in settings.valid_files if not any(_is_valid_file(n, (v,)) for n in names)]
    if unknown_valid:
        raise UserInputError(f"config 'dataset.valid_files': {unknown_valid[0]!r} is no file under {audio_dir}; name a file there (stem or relative path)")
    if _read_json(cache_dir / MANIFEST_NAME) == manifest:
        stats = _read_json(cache_dir / STATS_NAME)
        if stats is not None and all((cache_dir / split / "meta.json").is_file() for split in SPLITS):
            log.info("feature cache %s: reused (%d recordings)", cache_dir, len(files))
            return FeatureCache(cache_dir, True, stats, list(stats["speakers"]))
    return _build_cache(files, names, manifest, audio, settings, show_progress)


def _build_cache(
    files: list[Path], names: list[str], manifest: dict[str, Any], audio: AudioSettings, settings: AudioFolderSettings, show_progress: bool
) -> FeatureCache:
    cache_dir = Path(settings.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / MANIFEST_NAME).unlink(missing_ok=True)  # from here on the old cache is not valid
    hop = audio.hop_size
    piece_frames = max(1, round(settings.piece_seconds * audio.sample_rate / hop))
    hop_frames = max(1, round(settings.piece_hop_seconds * audio.sample_rate / hop))
    speakers = sorted({_speaker_of(n, settings.speakers_from_subfolders) for n in names})
    speaker_ids = {name: index for index, name in enumerate(speakers)}
    attributes = {"sample_rate": audio.sample_rate, "hop_size": hop, "speakers": speakers}
    writers = {split: BinaryDatasetWriter(cache_dir / split, PIECE_FIELDS, attributes) for split in SPLITS}
    counts = {split: 0 for split in SPLITS}
    skipped_silent = 0
    train_loudness: list[np.ndarray] = []
    train_voiced: list[np.ndarray] = []
    train_f0: list[np.ndarray] = []
    for path, name in tqdm(list(zip(files, names)), desc="features", unit="file", disable=not show_progress):
        features = file_features(path, audio, settings.loudness_n_fft)
        n_frames = len(features.f0)
        speaker = _speaker_of(name, settings.speakers_from_subfolders)
        if settings.valid_files:
            parts = [("valid" if _is_valid_file(name, settings.valid_files) else "train", 0, n_frames)]
        else:
            boundary = n_frames - int(round(n_frames * settings.valid_share))
            parts = [("train", 0, boundary), ("valid", boundary, n_frames)]
        for split, first, last in parts:
            if last <= first:
                continue
            if split == "train":
                train_loudness.append(features.loudness[first:last])
                train_voiced.append(features.uv[first:last] == 0)
                train_f0.append(features.f0[first:last])
            for offset in piece_starts(last - first, piece_frames, hop_frames):
                start = first + offset
                end = min(start + piece_frames, last)
                loudness = features.loudness[start:end]
                if float(loudness.max()) < settings.min_piece_loudness_db:
                    skipped_silent += 1
                    continue
                pcm = np.round(np.clip(features.wav[start * hop : end * hop], -1.0, 1.0) * 32767.0).astype(np.int16)
                arrays = {"wav": pcm, "f0": features.f0[start:end], "uv": features.uv[start:end], "loudness": loudness}
                writers[split].add(f"{name}@{start}", arrays, {"speaker_id": speaker_ids[speaker], "source": name, "start_frame": start})
                counts[split] += 1
    if counts["train"] == 0:
        raise UserInputError(
            f"{settings.audio_dir}: no training piece louder than {settings.min_piece_loudness_db} dB (silence only?); "
            "add recordings with singing or lower dataset.min_piece_loudness_db"
        )
    for writer in writers.values():
        writer.finalize()
    loudness_all = np.concatenate(train_loudness)
    stats = {
        **loudness_statistics(loudness_all, np.concatenate(train_voiced)),
        **pitch_statistics(np.concatenate(train_f0)),
        "frames": int(len(loudness_all)),
        "pieces": counts,
        "skipped_silent_pieces": skipped_silent,
        "speakers": speakers,
        "sample_rate": audio.sample_rate,
        "hop_size": hop,
    }
    write_text_atomic(cache_dir / STATS_NAME, json.dumps(stats, indent=1))
    write_text_atomic(cache_dir / MANIFEST_NAME, json.dumps(manifest, indent=1))
    log.info("feature cache %s: built from %d recordings (%s pieces)", cache_dir, len(files), counts)
    return FeatureCache(cache_dir, False, stats, speakers)


def open_piece_split(cache_dir: Path, split: str) -> BinaryDataset:
    """One split of a built cache (an error naming the folder when it is not there)."""
    return BinaryDataset(Path(cache_dir) / split)

