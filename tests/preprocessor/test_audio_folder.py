"""The DDSP singer's data step: a folder of unprocessed audio -> overlapping pieces with F0 and loudness, cached."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from config.errors import UserInputError
from preprocessor.audio import AudioSettings, hz_to_midi
from preprocessor.audio_folder import AudioFolderSettings, open_piece_split, piece_starts, prepare_feature_cache
from tests.audio_factory import sung_phrase, write_singing_folder

AUDIO = AudioSettings(sample_rate=16000, hop_size=160, win_size=640, n_fft=1024, n_mels=80, fmin=20, fmax=8000)


def _settings(tmp_path, **overrides) -> AudioFolderSettings:
    values = dict(audio_dir=str(tmp_path / "audio"), cache_dir=str(tmp_path / "cache"), piece_seconds=1.0, piece_hop_seconds=0.5, valid_files=("c_low",))
    values.update(overrides)
    return AudioFolderSettings(**values)


def test_piece_starts_overlap_and_cover_the_end():
    assert piece_starts(10, 4, 2) == [0, 2, 4, 6]
    assert piece_starts(11, 4, 2) == [0, 2, 4, 6, 7]  # one more piece ends at the last frame
    assert piece_starts(3, 4, 2) == [0]  # shorter than a piece: the whole file


def test_cache_holds_overlapping_pieces_with_exact_lengths_and_known_pitch(tmp_path):
    write_singing_folder(tmp_path / "audio")
    cache = prepare_feature_cache(AUDIO, _settings(tmp_path), show_progress=False)
    assert not cache.reused
    train, valid = open_piece_split(cache.cache_dir, "train"), open_piece_split(cache.cache_dir, "valid")
    assert {item["source"] for item in train.items} == {"a_scale.wav", "b_stereo.wav"}  # any rate, stereo downmixed
    assert {item["source"] for item in valid.items} == {"c_low.flac"}  # held out by name
    starts = sorted(item["start_frame"] for item in train.items if item["source"] == "a_scale.wav")
    assert starts[:3] == [0, 50, 100]  # 1 s pieces every 0.5 s at 100 frames/s: they overlap by half
    for index in range(len(train)):
        item = train[index]
        assert len(item["wav"]) == len(item["f0"]) * AUDIO.hop_size
        assert len(item["loudness"]) == len(item["f0"]) == len(item["uv"])
    # The first piece of the scale sings C4 then D4 (0.5 s per note + gap): the tracked pitch says so.
    first = train[[i for i, it in enumerate(train.items) if it["source"] == "a_scale.wav" and it["start_frame"] == 0][0]]
    voiced = first["f0"][10:35]
    assert np.abs(hz_to_midi(voiced[voiced > 0]) - 60).max() < 0.5
    stats = json.loads((cache.cache_dir / "stats.json").read_text())
    assert len(stats["voiced_loudness_quantiles"]) == 101 and stats["loudness_std"] > 0
    assert 57 < stats["pitch_mean_midi"] < 72  # the train files sing 60..72


def test_a_second_run_reuses_the_cache_and_a_changed_file_rebuilds_it(tmp_path):
    files = write_singing_folder(tmp_path / "audio")
    settings = _settings(tmp_path)
    prepare_feature_cache(AUDIO, settings, show_progress=False)
    meta = tmp_path / "cache" / "train" / "meta.json"
    built = meta.stat().st_mtime_ns
    again = prepare_feature_cache(AUDIO, settings, show_progress=False)
    assert again.reused and meta.stat().st_mtime_ns == built  # nothing recomputed
    sf.write(files[0], sung_phrase([70, 72], 16000), 16000)  # the recording changed
    os.utime(files[0], ns=(built + 10**9, built + 10**9))
    rebuilt = prepare_feature_cache(AUDIO, settings, show_progress=False)
    assert not rebuilt.reused
    assert not prepare_feature_cache(AUDIO, _settings(tmp_path, piece_seconds=0.8), show_progress=False).reused  # a setting changed


def test_tail_share_is_held_out_when_no_file_is_named(tmp_path):
    write_singing_folder(tmp_path / "audio")
    cache = prepare_feature_cache(AUDIO, _settings(tmp_path, valid_files=(), valid_share=0.25), show_progress=False)
    train, valid = open_piece_split(cache.cache_dir, "train"), open_piece_split(cache.cache_dir, "valid")
    for source in ("a_scale.wav", "b_stereo.wav", "c_low.flac"):
        train_end = max(it["start_frame"] + it["lengths"]["f0"] for it in train.items if it["source"] == source)
        valid_start = min(it["start_frame"] for it in valid.items if it["source"] == source)
        assert train_end <= valid_start  # training pieces never overlap the held-out tail


def test_unreadable_audio_is_one_line_naming_the_file(tmp_path):
    write_singing_folder(tmp_path / "audio")
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF not really a wav")
    with pytest.raises(UserInputError, match="broken.wav: cannot decode"):
        prepare_feature_cache(AUDIO, _settings(tmp_path), show_progress=False)


def test_silence_only_and_empty_folders_are_errors(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(UserInputError, match="no audio files"):
        prepare_feature_cache(AUDIO, _settings(tmp_path, valid_files=()), show_progress=False)
    sf.write(tmp_path / "audio" / "quiet.wav", np.zeros(32000, np.float32), 16000)
    with pytest.raises(UserInputError, match="silence only"):
        prepare_feature_cache(AUDIO, _settings(tmp_path, valid_files=()), show_progress=False)
    with pytest.raises(UserInputError, match="valid_files"):
        prepare_feature_cache(AUDIO, _settings(tmp_path, valid_files=("nope",)), show_progress=False)


def test_sub_folders_name_the_speakers(tmp_path):
    for speaker, pitches in (("alto", [57, 59, 60]), ("tenor", [52, 55, 57])):
        (tmp_path / "audio" / speaker).mkdir(parents=True)
        sf.write(tmp_path / "audio" / speaker / "take.wav", sung_phrase(pitches, 16000, note_seconds=0.6), 16000)
    cache = prepare_feature_cache(AUDIO, _settings(tmp_path, valid_files=(), speakers_from_subfolders=True), show_progress=False)
    assert cache.speakers == ["alto", "tenor"]
    train = open_piece_split(cache.cache_dir, "train")
    assert {(item["source"].split("/")[0], item["speaker_id"]) for item in train.items} == {("alto", 0), ("tenor", 1)}
