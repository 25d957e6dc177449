"""The data runners from the command line: a tiny final-layout tree, and each bad input exits 2
with one line naming the file and place, leaving no half-written output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config/datasets/svs/csd/preprocess.yaml"

NOTES = [  # start, end, midi, syllable — two phrases split by a 0.6 s rest
    (0.30, 0.70, 60, "나"),
    (0.70, 1.10, 62, "비"),
    (1.10, 1.60, 64, "야"),
    (2.20, 2.60, 64, "바"),
    (2.60, 3.00, 62, "알"),
]
LYRIC = "나비야\n바알\n"


def write_song(root: Path, name: str, notes=NOTES, lyric=LYRIC, seconds: float = 3.5) -> None:
    sr = 24000
    t = np.arange(int(seconds * sr)) / sr
    audio = np.zeros_like(t)
    for start, end, pitch, _ in notes:
        mask = (t >= start) & (t < end)
        audio[mask] = 0.3 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t[mask])
    for sub in ("wav", "csv", "lyric"):
        (root / "korean" / sub).mkdir(parents=True, exist_ok=True)
    sf.write(root / "korean/wav" / f"{name}.wav", audio, sr, subtype="PCM_16")
    rows = ["start,end,pitch,syllable"] + [f"{s},{e},{p},{y}" for s, e, p, y in notes]
    (root / "korean/csv" / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "korean/lyric" / f"{name}.txt").write_text(lyric, encoding="utf-8")


def run(script: str, tmp_path: Path, extra: str = "", config: Path = CONFIG) -> subprocess.CompletedProcess:
    hparams = (
        f"dataset.raw_data_dir={tmp_path}/raw,dataset.processed_dir={tmp_path}/processed,"
        f"dataset.binary_dir={tmp_path}/binary,dataset.valid_songs=[kr002],dataset.test_songs=[kr003],preprocess.num_workers=1"
    )
    if extra:
        hparams += "," + extra
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, f"preprocessor/runs/{script}.py", "--config", str(config), "--hparams", hparams],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.fixture()
def tiny_tree(tmp_path):
    for name in ("kr001a", "kr002a", "kr003a"):
        write_song(tmp_path / "raw", name)
    return tmp_path


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_runners_from_the_repo_root_without_pythonpath(tiny_tree):
    result = run("base_preprocess", tiny_tree)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processed 3 recordings" in result.stdout
    result = run("base_binarize", tiny_tree)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train:" in result.stdout and (tiny_tree / "binary/phone_set.json").is_file()
    assert (tiny_tree / "binary/config.yaml").is_file()
    # a second preprocess skips everything
    again = run("base_preprocess", tiny_tree)
    assert "3 already done" in again.stdout
    # ... unless a recording's audio changed since (e.g. a regenerated corpus): that one is redone
    write_song(tiny_tree / "raw", "kr002a")
    os.utime(tiny_tree / "raw/korean/wav/kr002a.wav", ns=(1, 1))  # a different mtime whatever the clock's resolution
    redone = run("base_preprocess", tiny_tree)
    assert "2 already done" in redone.stdout, redone.stdout


def test_missing_raw_folder(tmp_path):
    result = run("base_preprocess", tmp_path)
    assert_one_line_error(result, "raw", "raw_data_dir")
    assert not (tmp_path / "processed/metadata.jsonl").exists()


def test_config_key_typo_names_closest(tiny_tree):
    result = run("base_preprocess", tiny_tree, "segment.min_rest_second=0.2")
    assert_one_line_error(result, "segment.min_rest_second", "segment.min_rest_seconds")


def test_split_list_naming_missing_song(tiny_tree):
    result = run("base_preprocess", tiny_tree, "dataset.test_songs=[kr099]")
    assert_one_line_error(result, "kr099", "test_songs")


def test_notes_not_matching_syllables(tiny_tree):
    write_song(tiny_tree / "raw", "kr001a", lyric="나비야\n바알알\n")
    result = run("base_preprocess", tiny_tree)
    assert_one_line_error(result, "kr001a.csv", "5 notes", "6 syllables", "line 2 syllable 3")
    assert not (tiny_tree / "processed/metadata.jsonl").exists()


def test_overlapping_notes(tiny_tree):
    bad = list(NOTES)
    bad[1] = (0.50, 1.10, 62, "비")
    write_song(tiny_tree / "raw", "kr002a", notes=bad)
    result = run("base_preprocess", tiny_tree)
    assert_one_line_error(result, "kr002a.csv", "overlap", "0.500")


def test_unsingable_character(tiny_tree):
    bad = list(NOTES)
    bad[0] = (0.30, 0.70, 60, "A")
    write_song(tiny_tree / "raw", "kr003a", notes=bad, lyric="A비야\n바알\n")
    result = run("base_preprocess", tiny_tree)
    assert_one_line_error(result, "kr003a", "'A'")


def test_wav_that_does_not_decode(tiny_tree):
    (tiny_tree / "raw/korean/wav/kr001a.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    result = run("base_preprocess", tiny_tree)
    assert_one_line_error(result, "kr001a.wav")
