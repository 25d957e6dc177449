"""Raw dataset -> `data/processed/<name>/`: segment wavs at the target rate and `metadata.jsonl`.

Per recording (in parallel workers): read the score (notes = syllables, or an error naming the
place), cut it into segments at rests, pronounce and phonemize each segment with the Korean
frontend, and write each segment's audio — exactly `n_frames * hop_size` samples, so the frame
rule can make the phonemes' frames add up to the audio's frames with no remainder.

Each finished recording leaves `recordings/<id>.json`; a re-run skips those whose settings are
unchanged (unless `force`), and `metadata.jsonl` is rebuilt from them at the end.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from config.errors import UserInputError
from preprocessor.atomic_io import write_text_atomic, write_wav_atomic
from preprocessor.csd_reader import assign_splits
from preprocessor.folder_reader import list_any_recordings, read_any_recording
from preprocessor.segmenter import cut_segments
from preprocessor.settings import DataPipelineSettings

logger = logging.getLogger(__name__)

# Bump when the processed output for the same settings changes meaning.
PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class PreprocessSummary:
    recordings: int
    skipped: int
    segments: int
    seconds_by_split: dict[str, float]
    metadata_path: Path


def settings_digest(settings: DataPipelineSettings) -> str:
    """What a finished recording's output depends on; a change re-processes it."""
    relevant = {
        "version": PREPROCESS_VERSION,
        "sample_rate": settings.audio.sample_rate,
        "hop_size": settings.audio.hop_size,
        "segment": asdict(settings.segment),
        "raw": str(Path(settings.dataset.raw_data_dir).resolve()),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


_WORKER_FRONTEND = None  # one frontend per worker process: g2pk and mecab load once, not per song


def _frontend():
    global _WORKER_FRONTEND
    if _WORKER_FRONTEND is None:
        from preprocessor.text.korean import KoreanFrontend

        _WORKER_FRONTEND = KoreanFrontend()
    return _WORKER_FRONTEND


def process_recording(raw_dir: str, layout: str, recording_id: str, split: str, settings: DataPipelineSettings, out_dir: str) -> dict[str, Any]:
    """Segment, phonemize and write one recording; returns its marker (also written to disk)."""
    from preprocessor.audio import SILENCE_PEAK, load_wav

    recording = read_any_recording(Path(raw_dir), layout, recording_id)
    sample_rate, hop = settings.audio.sample_rate, settings.audio.hop_size
    audio = load_wav(recording.wav_path, sample_rate, require_signal=True)
    audio_seconds = len(audio) / sample_rate
    last_end = recording.notes[-1].end
    if last_end > audio_seconds + 0.5:
        raise UserInputError(
            f"{recording.score_path}: the last note ends at {last_end:.2f}s but {recording.wav_path.name} lasts {audio_seconds:.2f}s; "
            "the score does not belong to this recording"
        )
    segments = cut_segments(
        recording.notes,
        min_rest_seconds=settings.segment.min_rest_seconds,
        max_segment_seconds=settings.segment.max_segment_seconds,
        max_edge_rest_seconds=settings.segment.max_edge_rest_seconds,
        audio_seconds=audio_seconds,
    )
    frontend = _frontend()
    word_start_of = recording.word_starts()
    rows = []
    silent_segments = []  # sung notes over digital silence: legitimate only rarely (a muted take), so warn
    for index, segment in enumerate(segments):
        item_name = f"{recording_id}_{index:03d}"
        n_frames = int(round(segment.duration * sample_rate / hop))
        first_sample = int(round(segment.start * sample_rate))
        clip = np.zeros(n_frames * hop, dtype=np.float32)
        available = audio[first_sample : first_sample + n_frames * hop]
        clip[: len(available)] = available
        if any(not n.is_rest for n in segment.notes) and (not len(clip) or float(np.abs(clip).max()) <= SILENCE_PEAK):
            silent_segments.append(f"{segment.start:.2f}-{segment.end:.2f} s")
        word_starts = [word_start_of.get(round(n.start + segment.start, 6), False) for n in segment.notes]
        if recording.phonemes is None:
            phonemized = frontend.phonemize(list(segment.notes), source=str(recording.score_path), word_starts=word_starts)
        else:  # a transcription that gives the phonemes (transcriptions.csv): sung as written
            phonemized = recording.segment_phonemes(segment.notes, segment.start)
        wav_rel = f"wavs/{item_name}.wav"
        write_wav_atomic(Path(out_dir) / wav_rel, clip, sample_rate)
        rows.append(
            {
                "item_name": item_name,
                "recording": recording_id,
                "song": recording.song_id,
                "split": split,
                "speaker": settings.dataset.speaker,
                "wav": wav_rel,
                "n_frames": n_frames,
                "seconds": n_frames * hop / sample_rate,
                "song_start": segment.start,
                "lyric": "".join(n.lyric for n in segment.notes if not n.is_rest),
                "notes": [
                    {
                        "start": round(note.start, 6),
                        "end": round(note.end, 6),
                        "pitch": note.pitch,
                        "lyric": note.lyric,
                        "pron": phones.pronounced,
                        "phonemes": list(phones.phonemes),
                        "slur": phones.is_slur,
                    }
                    for note, phones in zip(segment.notes, phonemized)
                ],
            }
        )
    marker = {
        "digest": settings_digest(settings),
        "recording": recording_id,
        "split": split,
        "sources": source_signature([recording.wav_path, recording.score_path]),
        "items": rows,
        "warnings": [
            f"{recording.wav_path}: {len(silent_segments)} of {len(segments)} segments are digitally silent under sung notes "
            f"({', '.join(silent_segments[:5])}); check the recording against {recording.score_path.name}"
        ] if silent_segments else [],
    }
    write_text_atomic(Path(out_dir) / "recordings" / f"{recording_id}.json", json.dumps(marker, ensure_ascii=False))
    return marker


def source_signature(paths: list[Path]) -> dict[str, list[int]]:
    """`{path: [size, mtime_ns]}` of a recording's input files: a re-run redoes a recording whose audio or
    score changed (e.g. a regenerated demo corpus), not only one whose settings changed."""
    signature = {}
    for path in paths:
        stat = Path(path).stat()
        signature[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return signature


def _sources_unchanged(marker: dict[str, Any]) -> bool:
    sources = marker.get("sources")
    if not isinstance(sources, dict) or not sources:
        return False
    try:
        return source_signature([Path(p) for p in sources]) == sources
    except OSError:  # a source file is gone
        return False


def _process_star(args: tuple) -> dict[str, Any]:
    return process_recording(*args)


def ensure_demo_corpus(settings: DataPipelineSettings) -> None:
    for source in settings.dataset.source_list():
        if source.demo_corpus:
            from preprocessor.demo_corpus import generate_demo_corpus

            try:
                summary = generate_demo_corpus(Path(source.raw_data_dir), voice=source.demo_voice)
            except ValueError as error:  # an unknown voice
                raise UserInputError(f"config: dataset (speaker {source.speaker}): {error}") from None
            logger.info("demo corpus at %s (voice %s): %s", source.raw_data_dir, source.demo_voice, summary)


def source_settings(settings: DataPipelineSettings, source) -> DataPipelineSettings:
    """The settings of one singer of a multi-speaker dataset, processed into `processed_dir/<speaker>/`."""
    d = settings.dataset
    dataset = replace(
        d, raw_data_dir=source.raw_data_dir, speaker=source.speaker, layout=source.layout, demo_corpus=source.demo_corpus,
        demo_voice=source.demo_voice, valid_songs=d.valid_songs if source.valid_songs is None else source.valid_songs,
        test_songs=d.test_songs if source.test_songs is None else source.test_songs,
        processed_dir=str(Path(d.processed_dir) / source.speaker), sources=(),
    )  # fmt: skip
    return replace(settings, dataset=dataset)


def run_preprocess(settings: DataPipelineSettings, force: bool = False, show_progress: bool = True) -> PreprocessSummary:
    """Preprocess the dataset; with `dataset.sources`, each singer into `processed_dir/<speaker>/`, and one
    `metadata.jsonl` over all of them (item names and recordings prefixed `<speaker>_`, speaker names kept)."""
    if not settings.dataset.sources:
        return _run_one(settings, force, show_progress)
    rows, recordings, skipped, seconds = [], 0, 0, {"train": 0.0, "valid": 0.0, "test": 0.0}
    for source in settings.dataset.sources:
        part = source_settings(settings, source)
        summary = _run_one(part, force, show_progress)
        recordings, skipped = recordings + summary.recordings, skipped + summary.skipped
        for split, value in summary.seconds_by_split.items():
            seconds[split] += value
        for line in summary.metadata_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.update(item_name=f"{source.speaker}_{row['item_name']}", recording=f"{source.speaker}_{row['recording']}", wav=f"{source.speaker}/{row['wav']}")
            rows.append(row)
    metadata_path = settings.processed_dir / "metadata.jsonl"
    write_text_atomic(metadata_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return PreprocessSummary(recordings, skipped, len(rows), seconds, metadata_path)


def _run_one(settings: DataPipelineSettings, force: bool, show_progress: bool) -> PreprocessSummary:
    ensure_demo_corpus(settings)
    raw_dir = Path(settings.dataset.raw_data_dir)
    layout, recording_ids = list_any_recordings(raw_dir, settings.dataset.layout)
    splits = assign_splits(
        recording_ids, list(settings.dataset.valid_songs), list(settings.dataset.test_songs), source="config dataset section"
    )
    out_dir = settings.processed_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = settings_digest(settings)
    markers: dict[str, dict[str, Any]] = {}
    todo = []
    for recording_id in recording_ids:
        marker_path = out_dir / "recordings" / f"{recording_id}.json"
        if not force and marker_path.is_file():
            try:
                marker = json.loads(marker_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                marker = {}  # a damaged marker is a cache miss: the recording is processed again
            if isinstance(marker, dict) and marker.get("digest") == digest and marker.get("split") == splits[recording_id] and _sources_unchanged(marker):
                markers[recording_id] = marker
                continue
        todo.append((str(raw_dir), layout, recording_id, splits[recording_id], settings, str(out_dir)))
    workers = min(settings.preprocess.num_workers, max(1, len(todo)))
    # `with`: the bar is closed (and its line ended) before an error message is printed.
    with tqdm(total=len(todo), desc="preprocess", unit="rec", disable=not show_progress or not todo) as progress:
        if workers <= 1:
            for args in todo:
                markers[args[2]] = process_recording(*args)
                progress.update()
        else:
            # Spawned workers: forking a process that has started torch's or mecab's threads is unsafe.
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for marker in pool.map(_process_star, todo):
                    markers[marker["recording"]] = marker
                    progress.update()
    for args in todo:  # once per recording, when it is processed
        for warning in markers[args[2]].get("warnings", []):
            logger.warning("warning: %s", warning)
    rows = [row for recording_id in recording_ids for row in markers[recording_id]["items"]]
    metadata_path = out_dir / "metadata.jsonl"
    write_text_atomic(metadata_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    seconds: dict[str, float] = {"train": 0.0, "valid": 0.0, "test": 0.0}
    for row in rows:
        seconds[row["split"]] += row["seconds"]
    return PreprocessSummary(len(recording_ids), len(recording_ids) - len(todo), len(rows), seconds, metadata_path)
