"""`data/processed/<name>/` -> `data/binary/<name>/`: features, phoneme ids and frames per split.

Per segment: mel (the same `SpectrogramExtractor` the training losses use), f0 + unvoiced flags,
energy, and the phonemes' frame counts from the frame rule, which must add up to the audio's
frame count exactly. Also writes `phone_set.json`, `f0_stats.json` (train split) and
`summary.json`, and returns a summary for printing.

All-or-nothing: the whole dataset (every split, the statistics, the config) is built in a hidden
folder beside `binary_dir` and swapped in at the end in one step (`atomic_io.replace_directory`);
a failure at any point leaves the old dataset as it was and removes the half-built one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from config.errors import UserInputError
from preprocessor.atomic_io import replace_directory, staging_directory, write_text_atomic
from preprocessor.augment import AugmentationSettings, Transform, plan_augmentation, stretched_frames
from preprocessor.binary_dataset import BinaryDatasetWriter, FieldSpec, svs_fields
from preprocessor.settings import DataPipelineSettings

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class BinarizeSummary:
    items: dict[str, int]
    hours: dict[str, float]
    phone_counts: dict[str, int]
    f0_mean_log: float
    f0_std_log: float
    binary_dir: Path
    speaker_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # per speaker: f0_stats.json's "per_speaker"

    def lines(self) -> list[str]:
        out = [f"binary dataset: {self.binary_dir}"]
        for split in SPLITS:
            out.append(f"  {split:5s}: {self.items[split]:5d} items, {self.hours[split] * 60:8.2f} min")
        used = sum(1 for c in self.phone_counts.values() if c)
        out.append(f"  phonemes used: {used} of {len(self.phone_counts)} in the phone set")
        top = ", ".join(f"{p}:{c}" for p, c in sorted(self.phone_counts.items(), key=lambda kv: -kv[1])[:8])
        out.append(f"  most frequent: {top}")
        out.append(f"  log-f0 (train, voiced): mean {self.f0_mean_log:.3f}, std {self.f0_std_log:.3f}")
        if len(self.speaker_stats) > 1:
            for name, stats in self.speaker_stats.items():
                out.append(
                    f"  speaker {stats['id']} {name}: {stats['items']} train items, median F0 {stats['f0_median_hz']:.1f} Hz, "
                    f"log-f0 mean {stats['log_f0_mean']:.3f} std {stats['log_f0_std']:.3f}, notes {stats['note_pitch_min']}..{stats['note_pitch_max']}"
                )
        return out


class SpeakerF0:
    """Voiced log-F0 moments and the sung note range of one speaker's train items (`f0_stats.json` "per_speaker")."""

    def __init__(self, speaker_id: int) -> None:
        self.speaker_id = speaker_id
        self.items = 0
        self.log_f0: list[np.ndarray] = []
        self.pitch_low, self.pitch_high = 127, 0

    def add(self, f0: np.ndarray, uv: np.ndarray, note_pitch: np.ndarray) -> None:
        voiced = f0[uv == 0]
        self.log_f0.append(np.log(voiced[voiced > 0]).astype(np.float64))
        self.items += 1
        sung = note_pitch[note_pitch > 0]
        if len(sung):
            self.pitch_low, self.pitch_high = min(self.pitch_low, int(sung.min())), max(self.pitch_high, int(sung.max()))

    def stats(self) -> dict[str, Any]:
        values = np.concatenate(self.log_f0) if self.log_f0 else np.zeros(0)
        return {
            "id": self.speaker_id, "items": self.items, "voiced_frames": int(len(values)),
            "log_f0_mean": float(values.mean()) if len(values) else 0.0, "log_f0_std": float(values.std()) if len(values) > 1 else 1.0,
            "f0_median_hz": float(np.exp(np.median(values))) if len(values) else 0.0,
            "note_pitch_min": self.pitch_low, "note_pitch_max": self.pitch_high,
        }  # fmt: skip


def read_metadata(processed_dir: Path) -> list[dict[str, Any]]:
    path = processed_dir / "metadata.jsonl"
    if not path.is_file():
        raise UserInputError(f"{path}: not found; run preprocessor/runs/base_preprocess.py with the same config first")
    rows = []
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserInputError(f"{path}: line {line} is not UTF-8 text; re-run base_preprocess.py --force") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise UserInputError(f"{path}: line {line_number} is not JSON; re-run base_preprocess.py --force") from None
            missing = [key for key in ("item_name", "recording", "split", "speaker", "wav", "n_frames", "seconds", "notes") if not isinstance(row, dict) or key not in row]
            if missing:
                raise UserInputError(f"{path}: line {line_number} lacks {', '.join(missing)}; re-run base_preprocess.py --force")
            rows.append(row)
    return rows


_WORKER_EXTRACTORS: dict[tuple, Any] = {}  # per worker process: one extractor (mel filterbank) per audio setting


def _extractor(settings: DataPipelineSettings):
    # Keyed by the audio settings, not a single slot: an in-process caller (tests, a notebook) that
    # binarizes two datasets at different rates or hops must not get the first one's filterbank.
    from preprocessor.audio import SpectrogramExtractor

    a = settings.audio
    key = (a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS[key] = SpectrogramExtractor(*key)
    return _WORKER_EXTRACTORS[key]


def binarize_item(
    row: dict[str, Any], settings: DataPipelineSettings, speaker_ids: dict[str, int], transform: Transform | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features and phoneme-level arrays of one segment (see preprocessor/binary_dataset.py).

    `transform`: make an augmented copy (`preprocessor.augment`): the audio resynthesised with the key
    shift / speed, the notes moved with it, every feature extracted from the new audio.
    """
    import torch

    from preprocessor.audio import extract_f0, frame_energy, load_wav
    from preprocessor.score import Note
    from preprocessor.text.frame_rule import note_frame_counts, phoneme_score
    from preprocessor.text.korean import NotePhonemes

    a = settings.audio
    wav_path = settings.processed_dir / row["wav"]
    audio = load_wav(wav_path, a.sample_rate)
    n_frames = int(row["n_frames"])
    if len(audio) != n_frames * a.hop_size:
        raise UserInputError(f"{wav_path}: {len(audio)} samples, metadata says {n_frames} frames x {a.hop_size}; re-run base_preprocess.py --force")
    notes_in = row["notes"]
    if transform is not None:
        from preprocessor.augment import transformed_notes, world_transform

        source_f0 = extract_f0(audio, a.sample_rate, a.hop_size, n_frames, a.f0_min, a.f0_max, a.f0_extractor)
        audio = world_transform(audio, a.sample_rate, a.hop_size, source_f0.f0_hz, transform.key_shift, transform.speed)
        out_frames = stretched_frames(n_frames, transform.speed)
        notes_in = transformed_notes(notes_in, transform, n_frames, out_frames, a.sample_rate, a.hop_size)
        n_frames = out_frames
    with torch.no_grad():
        mel = _extractor(settings).mel(torch.from_numpy(audio)[None])[0].T.numpy()  # [T, n_mels], time-major on disk
    f0_track = extract_f0(audio, a.sample_rate, a.hop_size, n_frames, a.f0_min, a.f0_max, a.f0_extractor)
    energy = frame_energy(audio, a.hop_size, a.win_size, n_frames)
    notes = [Note(n["start"], n["end"], n["pitch"], n["lyric"]) for n in notes_in]
    phonemized = [NotePhonemes(n["pron"], tuple(n["phonemes"]), bool(n["slur"])) for n in notes_in]
    note_frames = note_frame_counts([n.end for n in notes], a.sample_rate, a.hop_size, n_frames)
    phone_ids, phone_frames, note_pitch, note_dur, slur = phoneme_score(notes, phonemized, note_frames)
    assert sum(phone_frames) == n_frames == mel.shape[0], (row["item_name"], sum(phone_frames), n_frames, mel.shape)
    arrays = {
        "wav": np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16),
        "mel": mel.astype(np.float32),
        "f0": f0_track.f0_hz.astype(np.float32),
        "uv": f0_track.uv.astype(np.uint8),
        "energy": energy.astype(np.float32),
        "phone_ids": np.asarray(phone_ids, np.int64),
        "phone_frames": np.asarray(phone_frames, np.int64),
        "note_pitch": np.asarray(note_pitch, np.int64),
        "note_dur": np.asarray(note_dur, np.float32),
        "slur": np.asarray(slur, np.uint8),
    }
    if settings.features.breathiness:
        from preprocessor.variance import frame_breathiness

        arrays["breathiness"] = frame_breathiness(audio, a.sample_rate, a.hop_size, a.win_size, f0_track.f0_hz).astype(np.float32)
    scalars = {"speaker_id": speaker_ids[row["speaker"]], "recording": row["recording"], "seconds": row["seconds"]}
    if transform is not None:
        scalars.update(seconds=n_frames * a.hop_size / a.sample_rate, source=row["item_name"], key_shift=transform.key_shift, speed=transform.speed)
    return arrays, scalars


def augmentation_record(settings: AugmentationSettings, plan: list[Transform], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the augmentation made, for the train split's `meta.json` and `summary.json`."""
    return {
        "method": "WORLD resynthesis (pyworld): key shift keeps the spectral envelope (formants), time stretch interpolates the tracks",
        "settings": dataclasses.asdict(settings),
        "copies": [{"source": rows[t.source]["item_name"], "key_shift": t.key_shift, "speed": t.speed} for t in plan],
    }


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _binarize_star(args: tuple) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return binarize_item(*args)


def run_binarize(settings: DataPipelineSettings, show_progress: bool = True, config: dict[str, Any] | None = None) -> BinarizeSummary:
    """Binarize every split into `settings.binary_dir`, replacing the old dataset only once all is written.

    config: the resolved config, saved as `config.yaml` inside the new dataset (swapped in with it).
    """
    import shutil

    rows = read_metadata(settings.processed_dir)
    if not rows:
        raise UserInputError(f"{settings.processed_dir / 'metadata.jsonl'}: no segments; check the raw data and re-run base_preprocess.py")
    staging = staging_directory(settings.binary_dir)
    try:
        summary = _binarize_into(staging, rows, settings, show_progress)
        if config is not None:
            from config.loader import save_config

            save_config(config, staging / "config.yaml")
        replace_directory(staging, settings.binary_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BinarizeSummary(summary.items, summary.hours, summary.phone_counts, summary.f0_mean_log, summary.f0_std_log, settings.binary_dir, summary.speaker_stats)


def _binarize_into(out_dir: Path, rows: list[dict[str, Any]], settings: DataPipelineSettings, show_progress: bool) -> BinarizeSummary:
    from preprocessor.text.phone_set import PHONE_SET, write_phone_set

    speakers = sorted({r["speaker"] for r in rows})
    speaker_ids = {name: index for index, name in enumerate(speakers)}
    a = settings.audio
    attributes = {"sample_rate": a.sample_rate, "hop_size": a.hop_size, "n_mels": a.n_mels, "speakers": speakers}
    fields = svs_fields(a.n_mels)
    if settings.features.breathiness:
        fields["breathiness"] = FieldSpec("float32")
    augmentation = {"train": None}
    phone_counts: Counter[str] = Counter({p: 0 for p in PHONE_SET})
    items, hours = {}, {}
    log_f0_sum, log_f0_sq, voiced_total = 0.0, 0.0, 0
    pitch_low, pitch_high = 127, 0  # sung note range of the train split (inference warns outside it)
    per_speaker = {name: SpeakerF0(index) for name, index in speaker_ids.items()}
    workers = max(1, settings.preprocess.num_workers)
    progress = tqdm(total=len(rows), desc="binarize", unit="seg", disable=not show_progress)
    # Spawned, single-threaded workers: a forked child that runs torch after the parent has started
    # torch's thread pool can hang forever (seen when the tests had used torch before binarizing).
    pool = (
        ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
        if workers > 1
        else None
    )
    try:
        for split in SPLITS:
            split_rows = [r for r in rows if r["split"] == split]
            augmented = plan_augmentation(settings.augmentation, len(split_rows)) if split == "train" else []
            split_attributes = attributes
            if split == "train" and settings.augmentation.enabled:
                augmentation["train"] = augmentation_record(settings.augmentation, augmented, split_rows)
                split_attributes = dict(attributes, augmentation=augmentation["train"])
            writer = BinaryDatasetWriter(out_dir / split, fields, split_attributes)
            jobs = [(r, settings, speaker_ids) for r in split_rows] + [(split_rows[t.source], settings, speaker_ids, t) for t in augmented]
            names = [r["item_name"] for r in split_rows] + [split_rows[t.source]["item_name"] + t.suffix for t in augmented]
            progress.total += len(augmented)
            results = pool.map(_binarize_star, jobs, chunksize=4) if pool else map(_binarize_star, jobs)
            for name, (arrays, scalars) in zip(names, results):
                writer.add(name, arrays, scalars)
                for phone_id in arrays["phone_ids"]:
                    phone_counts[PHONE_SET[phone_id]] += 1
                if split == "train":
                    voiced = arrays["f0"][arrays["uv"] == 0]
                    log_f0 = np.log(voiced[voiced > 0]).astype(np.float64)
                    log_f0_sum += log_f0.sum()
                    log_f0_sq += (log_f0**2).sum()
                    voiced_total += len(log_f0)
                    sung = arrays["note_pitch"][arrays["note_pitch"] > 0]
                    if len(sung):
                        pitch_low, pitch_high = min(pitch_low, int(sung.min())), max(pitch_high, int(sung.max()))
                    per_speaker[speakers[int(scalars["speaker_id"])]].add(arrays["f0"], arrays["uv"], arrays["note_pitch"])
                progress.update()
            writer.finalize()
            items[split] = len(names)
            hours[split] = sum(r["seconds"] for r in split_rows) / 3600 + sum(
                stretched_frames(split_rows[t.source]["n_frames"], t.speed) * a.hop_size / a.sample_rate for t in augmented
            ) / 3600
    finally:
        progress.close()
        if pool:
            pool.shutdown()
    mean = log_f0_sum / voiced_total if voiced_total else 0.0
    std = math.sqrt(max(log_f0_sq / voiced_total - mean**2, 0.0)) if voiced_total else 1.0
    write_phone_set(out_dir / "phone_set.json")
    speaker_stats = {name: accumulator.stats() for name, accumulator in per_speaker.items()}
    write_text_atomic(out_dir / "f0_stats.json", json.dumps(
            {"log_f0_mean": mean, "log_f0_std": std, "voiced_frames": voiced_total, "note_pitch_min": pitch_low, "note_pitch_max": pitch_high,
             "speakers": speakers, "per_speaker": speaker_stats}
        ))
    summary = BinarizeSummary(items, hours, dict(phone_counts), mean, std, out_dir, speaker_stats)
    write_text_atomic(
        out_dir / "summary.json",
        json.dumps(
            {"items": items, "hours": hours, "phone_counts": dict(phone_counts), "log_f0_mean": mean, "log_f0_std": std, "speakers": speaker_stats}
            | ({"augmentation": augmentation["train"]} if settings.augmentation.enabled else {}),
            ensure_ascii=False, indent=1,
        ),
    )
    return summary
