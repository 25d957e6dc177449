"""Segment cutting at rests, the memory-mapped binary store, and split assignment."""
from __future__ import annotations

import json

import numpy as np
import pytest

from config.errors import UserInputError
from preprocessor.binary_dataset import FORMAT_VERSION, BinaryDataset, BinaryDatasetWriter, FieldSpec
from preprocessor.csd_reader import assign_splits, fill_rests
from preprocessor.score import Note
from preprocessor.segmenter import cut_segments


def sung(start, end, pitch=60, lyric="가"):
    return Note(start, end, pitch, lyric)


def test_cut_at_long_rests_keeps_edges_and_never_overlaps():
    notes = fill_rests([sung(1.0, 1.5), sung(1.5, 2.0), sung(2.1, 2.5), sung(4.0, 4.5), sung(4.5, 5.0)], source="x")
    segments = cut_segments(notes, min_rest_seconds=0.3, max_segment_seconds=12, max_edge_rest_seconds=0.5, audio_seconds=6.0)
    assert len(segments) == 2  # the 0.1 s rest stays inside, the 1.5 s rest cuts
    first, second = segments
    assert first.start == pytest.approx(0.5) and first.end == pytest.approx(3.0)
    assert second.start == pytest.approx(3.5) and second.end == pytest.approx(5.5)
    assert first.end <= second.start
    for segment in segments:
        # notes are contiguous from 0 to the segment's duration
        assert segment.notes[0].start == pytest.approx(0.0)
        assert segment.notes[-1].end == pytest.approx(segment.duration)
        for a, b in zip(segment.notes, segment.notes[1:]):
            assert a.end == pytest.approx(b.start)
    assert [n.lyric for n in first.notes] == ["SP", "가", "가", "SP", "가", "SP"]


def test_long_phrase_is_cut_again_at_its_longest_inner_rest():
    raw = []
    t = 0.0
    for i in range(30):
        raw.append(sung(t, t + 0.5))
        t += 0.5 + (0.2 if i == 14 else 0.05 if i % 5 == 4 else 0.0)
    notes = fill_rests(raw, source="x")
    segments = cut_segments(notes, min_rest_seconds=0.3, max_segment_seconds=10, max_edge_rest_seconds=0.5, audio_seconds=t + 1)
    assert len(segments) == 2
    assert sum(1 for s in segments for n in s.notes if not n.is_rest) == 30
    assert all(s.duration <= 10.5 for s in segments)


def test_fill_rests_clips_legato_and_rejects_chords():
    notes = fill_rests([sung(0.0, 1.02), sung(1.0, 2.0)], source="song.csv")
    assert notes[0].end == pytest.approx(1.0) and len(notes) == 2
    with pytest.raises(UserInputError, match=r"song.csv: notes overlap at t=0.500s"):
        fill_rests([sung(0.0, 1.0), sung(0.5, 2.0)], source="song.csv")


def test_binary_store_round_trip_and_version_check(tmp_path):
    fields = {"wav": FieldSpec("int16"), "mel": FieldSpec("float32", (3,)), "f0": FieldSpec("float32")}
    writer = BinaryDatasetWriter(tmp_path / "train", fields, {"sample_rate": 8})
    rng = np.random.default_rng(0)
    items = []
    for n in (5, 1, 7):
        arrays = {"wav": rng.integers(-100, 100, n * 4).astype(np.int16), "mel": rng.normal(size=(n, 3)).astype(np.float32), "f0": rng.normal(size=n).astype(np.float32)}
        writer.add(f"item{n}", arrays, {"speaker_id": n})
        items.append(arrays)
    writer.finalize()
    assert not (tmp_path / "train.partial").exists()
    dataset = BinaryDataset(tmp_path / "train")
    assert len(dataset) == 3 and dataset.lengths == [5, 1, 7] and dataset.names == ["item5", "item1", "item7"]
    for index, arrays in enumerate(items):
        got = dataset[index]
        for key, value in arrays.items():
            np.testing.assert_array_equal(got[key], value)
    assert dataset[2]["speaker_id"] == 7 and dataset.attributes == {"sample_rate": 8}
    assert not any(p.suffix in (".pkl", ".pickle", ".npz") for p in (tmp_path / "train").iterdir())
    meta = json.loads((tmp_path / "train/meta.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "train/meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="format version .* re-run preprocessor/runs/base_binarize.py"):
        BinaryDataset(tmp_path / "train")


def test_truncated_field_is_detected(tmp_path):
    writer = BinaryDatasetWriter(tmp_path / "s", {"f0": FieldSpec("float32")})
    writer.add("a", {"f0": np.ones(10, np.float32)}, {})
    writer.finalize()
    with open(tmp_path / "s/f0.bin", "r+b") as handle:
        handle.truncate(12)
    with pytest.raises(UserInputError, match="f0.bin: missing or truncated"):
        BinaryDataset(tmp_path / "s")


def test_splits_by_song_and_by_recording():
    ids = ["kr001a", "kr001b", "kr046a", "kr046b", "kr047a", "kr047b"]
    splits = assign_splits(ids, ["kr046"], ["kr047a"], source="cfg")
    assert splits == {"kr001a": "train", "kr001b": "train", "kr046a": "valid", "kr046b": "valid", "kr047a": "test", "kr047b": "train"}
    with pytest.raises(UserInputError, match="test_songs names 'kr099'"):
        assign_splits(ids, [], ["kr099"], source="cfg")
    early = assign_splits(["headshoulder_kr_0u", "headshoulder_kr_4d"], [], ["headshoulder_kr_4d"], source="cfg")
    assert early == {"headshoulder_kr_0u": "train", "headshoulder_kr_4d": "test"}


def test_binarize_extractor_follows_the_audio_settings():
    """Two in-process binarizes at different hops must not share one mel extractor (a single cached slot
    once gave a 16 kHz/160 filterbank to a later 24 kHz/300 dataset: 285 mel frames for 152 note frames)."""
    from types import SimpleNamespace

    import torch

    from preprocessor.binarize import _extractor

    def settings(sample_rate, n_fft, hop):
        audio = SimpleNamespace(sample_rate=sample_rate, n_fft=n_fft, hop_size=hop, win_size=n_fft, n_mels=20, fmin=0.0, fmax=sample_rate / 2)
        return SimpleNamespace(audio=audio)

    second = torch.zeros(1, 24000)
    assert _extractor(settings(16000, 640, 160)).mel(second).shape[-1] == 24000 // 160
    assert _extractor(settings(24000, 1200, 300)).mel(second).shape[-1] == 24000 // 300
