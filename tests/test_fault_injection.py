"""Fault injection: every class of bad input a user can feed the CLIs, each ending the same way.

What every case must show (`assert_clean_failure`): exit code 2; exactly one line on stderr, starting
``error:``, naming the file and the place (line, note, key, item ...); no traceback; and nothing written
or half-written where the command writes (the watched folders are byte-for-byte as before, no
temporaries left). The CLIs run in this process through their real `main` and `run_cli`, so a case
costs milliseconds, not a Python start.

A new reader (a score format, a store) inherits the suite by adding its faults to a table below.
Classes, mirroring issue 13: score times and order, lyric and text encodings, configs (unknown
sections and keys, duplicate keys, non-UTF-8), binary-store metadata and statistics, audio (silent,
cancelling, non-finite), an unwritable output, checkpoints that no longer load, and a binarize that
fails midway (the old dataset stays whole).
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from config.errors import run_cli
from tests.inference.conftest import SANCHAEK, tiny_config, tiny_generator, write_runner_checkpoint
from tests.inference.midi_factory import melody, write_melody
from tests.preprocessor.test_preprocess_cli_errors import NOTES, write_song

REPO = Path(__file__).resolve().parents[1]
CSD_CONFIG = REPO / "config/datasets/svs/csd/preprocess.yaml"


# --- running a CLI in process and judging how it failed ---------------------------------------


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under `folders` (hidden ones too) with a hash of its bytes."""
    files = {}
    for folder in folders:
        if folder.exists():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    files[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
                elif path.is_dir():
                    files[str(path)] = "<dir>"
    return files


def invoke(main: Callable[[], int | None], argv: list[object], monkeypatch, capsys) -> tuple[int, str]:
    """`run_cli(main)` with `sys.argv` set: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["cli", *map(str, argv)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    return exit_info.value.code, capsys.readouterr().err


def assert_clean_failure(code: int, stderr: str, fragments: tuple[str, ...], before: dict[str, str], after: dict[str, str]) -> None:
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert after == before, "the failed command wrote or changed files"


def preprocess_main():
    from preprocessor.runs.base_preprocess import main

    return main()


def binarize_main():
    from preprocessor.runs.base_binarize import main

    return main()


def data_argv(root: Path, config: Path = CSD_CONFIG, extra: str = "") -> list[object]:
    hparams = (
        f"dataset.raw_data_dir={root}/raw,dataset.processed_dir={root}/processed,dataset.binary_dir={root}/binary,"
        "dataset.valid_songs=[kr002],dataset.test_songs=[kr003],preprocess.num_workers=1"
    )
    return ["--config", config, "--hparams", hparams + ("," + extra if extra else "")]


@pytest.fixture()
def tree(tmp_path):
    for name in ("kr001a", "kr002a", "kr003a"):
        write_song(tmp_path / "raw", name)
    return tmp_path


# --- scores: note times and order (csv), lyric/text encodings --------------------------------


def _csv(rows: list[tuple]) -> str:
    return "start,end,pitch,syllable\n" + "".join(f"{s},{e},{p},{y}\n" for s, e, p, y in rows)


def _with(index: int, **changes) -> list[tuple]:
    rows = [list(row) for row in NOTES]
    for key, value in changes.items():
        rows[index][("start", "end", "pitch", "syllable").index(key)] = value
    return [tuple(row) for row in rows]


SCORE_FAULTS = {
    "note starts before 0": (_csv(_with(0, start=-1.0)), ("kr001a.csv", "line 2", "starts at -1.000 s")),
    "note ends at -inf": (_csv(_with(1, end="-inf")), ("kr001a.csv", "line 3", "not a finite number")),
    "note starts at nan": (_csv(_with(2, start="nan")), ("kr001a.csv", "line 4", "not a finite number")),
    "note ends at inf": (_csv(_with(4, end="inf")), ("kr001a.csv", "line 6", "not a finite number")),
    "notes out of order": (_csv([NOTES[1], NOTES[0], *NOTES[2:]]), ("kr001a.csv", "line 3", "before the previous note")),
    "notes overlap": (_csv(_with(0, end=1.0)), ("kr001a.csv", "line 3", "while the previous note sounds")),
    "note ends before it starts": (_csv(_with(3, end=2.0)), ("kr001a.csv", "line 5", "not after its start")),
}


@pytest.mark.parametrize("case", sorted(SCORE_FAULTS))
def test_score_faults_at_preprocess(case, tree, monkeypatch, capsys):
    text, fragments = SCORE_FAULTS[case]
    (tree / "raw/korean/csv/kr001a.csv").write_text(text, encoding="utf-8")
    before = snapshot(tree / "processed", tree / "binary")
    code, err = invoke(preprocess_main, data_argv(tree), monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, before, snapshot(tree / "processed", tree / "binary"))


ENCODING_FAULTS = {
    "lyric file not UTF-8": ("lyric/kr001a.txt", "나비야\n바알\n".encode("cp949"), ("kr001a.txt", "not UTF-8 text (byte 0)")),
    "csv not UTF-8": ("csv/kr001a.csv", _csv(NOTES).encode("cp949"), ("kr001a.csv", "expected UTF-8 text")),
}


@pytest.mark.parametrize("case", sorted(ENCODING_FAULTS))
def test_text_encoding_faults_at_preprocess(case, tree, monkeypatch, capsys):
    relative, raw, fragments = ENCODING_FAULTS[case]
    (tree / "raw/korean" / relative).write_bytes(raw)
    before = snapshot(tree / "processed")
    code, err = invoke(preprocess_main, data_argv(tree), monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, before, snapshot(tree / "processed"))


# --- inference: MIDI lyrics, lyrics files, F0 statistics, outputs -------------------------------


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A tiny VISinger experiment whose training-data folder (F0 statistics) the tests may damage."""
    root = tmp_path_factory.mktemp("fault_experiment")
    binary_dir = root / "binary"
    binary_dir.mkdir()
    config = tiny_config(binary_dir)
    write_runner_checkpoint(root / "checkpoints/tiny/model_ckpt_steps_1.pt", config, {"generator": tiny_generator(config).state_dict()})
    return root


def sing_main():
    from inference.visinger import main

    return main()


def _stats_ok(binary_dir: Path) -> None:
    (binary_dir / "f0_stats.json").write_text(
        json.dumps({"log_f0_mean": 5.9, "log_f0_std": 0.2, "voiced_frames": 10, "note_pitch_min": 55, "note_pitch_max": 79}), encoding="utf-8"
    )


def _mixed_encoding_midi(folder: Path) -> Path:
    return write_melody(folder / "mixed.mid", melody((60, "가".encode()), (62, "각".encode("cp949"))), name="Vocal")


INFERENCE_FAULTS = {
    "MIDI lyrics in two encodings": (lambda f: ["--midi", _mixed_encoding_midi(f)], ("mixed.mid", "neither UTF-8 nor CP949 throughout", "bar:beat 1:2")),
    "lyrics file in neither encoding": (lambda f: ["--midi", f / "plain.mid", "--lyrics", f / "bad.txt"], ("bad.txt", "neither UTF-8 nor CP949", "byte 3")),
}


@pytest.mark.parametrize("case", sorted(INFERENCE_FAULTS))
def test_inference_faults(case, experiment, tmp_path, monkeypatch, capsys):
    build_args, fragments = INFERENCE_FAULTS[case]
    _stats_ok(experiment / "binary")
    write_melody(tmp_path / "plain.mid", melody((60, None), (62, None)))
    (tmp_path / "bad.txt").write_bytes("가".encode() + b"\xff\xff")
    out = tmp_path / "out"
    argv = ["--work_dir_root", experiment / "checkpoints", "--exp_name", "tiny", *build_args(tmp_path), "--out", out / "song.wav"]
    code, err = invoke(sing_main, argv, monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, {}, snapshot(out))


STATS_FAULTS = {  # f0_stats.json, read when a checkpoint describes its training data (model_io.description)
    "F0 statistics truncated": ('{"log_f0_mean": 5.9, "log_f0_s', ("f0_stats.json", "invalid JSON at line 1", "re-run")),
    "F0 statistics empty": ("", ("f0_stats.json", "corrupt", "re-run preprocessor/runs/base_binarize.py")),
    "F0 statistics a list": ("[1, 2]", ("f0_stats.json", "a JSON list, not an object", "re-run")),
    "F0 statistics std 0": ('{"log_f0_mean": 5.9, "log_f0_std": 0}', ("f0_stats.json", "'log_f0_std' is 0", "re-run")),
    "F0 statistics NaN mean": ('{"log_f0_mean": NaN, "log_f0_std": 0.2}', ("f0_stats.json", "'log_f0_mean' is nan", "re-run")),
    "F0 statistics pitch 300": (
        '{"log_f0_mean": 5.9, "log_f0_std": 0.2, "note_pitch_min": 300, "note_pitch_max": 70}', ("f0_stats.json", "'note_pitch_min' is 300"),
    ),
    "F0 statistics not UTF-8": ("설명".encode("cp949"), ("f0_stats.json", "not UTF-8 text (byte 0)", "re-run")),
}


@pytest.mark.parametrize("case", sorted(STATS_FAULTS))
def test_f0_statistics_faults(case, tmp_path, monkeypatch, capsys):
    from model_io.description import read_dataset_stats

    stats, fragments = STATS_FAULTS[case]
    (tmp_path / "f0_stats.json").write_bytes(stats if isinstance(stats, bytes) else stats.encode())
    before = snapshot(tmp_path)
    code, err = invoke(lambda: read_dataset_stats(tmp_path) and None, [], monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, before, snapshot(tmp_path))


def test_an_output_path_that_cannot_be_written(experiment, tmp_path, monkeypatch, capsys):
    _stats_ok(experiment / "binary")
    (tmp_path / "taken").write_text("a file where the output folder should be")
    argv = ["--work_dir_root", experiment / "checkpoints", "--exp_name", "tiny", "--midi", SANCHAEK, "--out", tmp_path / "taken/song.wav"]
    before = snapshot(tmp_path)
    code, err = invoke(sing_main, argv, monkeypatch, capsys)
    assert_clean_failure(code, err, ("taken/song.wav", "cannot write there", "choose another output path"), before, snapshot(tmp_path))


# --- configs -----------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "my.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


CONFIG_FAULTS = {
    "misspelt section": (f"base_config: {CSD_CONFIG}\nsegmnt: {{max_segment_seconds: 5}}\n", ("my.yaml", "unknown config section 'segmnt'", "did you mean 'segment'")),
    "misspelt nested key": (f"base_config: {CSD_CONFIG}\nsegment: {{max_segment_second: 5}}\n", ("unknown key 'segment.max_segment_second'", "did you mean 'segment.max_segment_seconds'")),
    "duplicate key": (f"base_config: {CSD_CONFIG}\nsegment: {{}}\nsegment: {{}}\n", ("my.yaml line 3", "duplicate key 'segment' (first at line 2)")),
    "duplicate nested key": (f"base_config: {CSD_CONFIG}\nsegment:\n  max_segment_seconds: 5\n  max_segment_seconds: 6\n", ("my.yaml line 4", "duplicate key 'max_segment_seconds'")),
    "not UTF-8 (a CP949 comment)": (f"base_config: {CSD_CONFIG}\n# 한국어 설명\n".encode("cp949"), ("my.yaml line 2", "not UTF-8 text", "save the config file as UTF-8")),
}


@pytest.mark.parametrize("case", sorted(CONFIG_FAULTS))
def test_config_faults_at_preprocess(case, tree, monkeypatch, capsys):
    text, fragments = CONFIG_FAULTS[case]
    before = snapshot(tree / "processed")
    code, err = invoke(preprocess_main, data_argv(tree, _config(tree, text)), monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, before, snapshot(tree / "processed"))


def test_a_misspelt_training_section(tmp_path, monkeypatch, capsys):
    from tasks.runs.run import main

    config = _config(tmp_path, f"base_config: {REPO / 'config/models/visinger_demo.yaml'}\ntrainr:\n  max_updates: 3\n")
    code, err = invoke(lambda: main(sys.argv[1:]), ["--config", config, "--exp_name", "x", "--work_dir_root", tmp_path / "ck"], monkeypatch, capsys)
    assert_clean_failure(code, err, ("my.yaml", "unknown config section 'trainr'", "did you mean 'trainer'"), {}, snapshot(tmp_path / "ck"))


# --- audio -------------------------------------------------------------------------------------


def _silent(path: Path) -> None:
    sf.write(path, np.zeros(24000 * 4), 24000, subtype="PCM_16")


def _cancelling(path: Path) -> None:
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(24000 * 4) / 24000)
    sf.write(path, np.stack([tone, -tone], axis=1), 24000, subtype="PCM_16")


def _nan(path: Path) -> None:
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(24000 * 4) / 24000).astype(np.float32)
    audio[24000] = math.nan
    sf.write(path, audio, 24000, subtype="FLOAT")


AUDIO_FAULTS = {
    "digitally silent": (_silent, ("kr001a.wav", "digitally silent")),
    "channels cancel in the downmix": (_cancelling, ("kr001a.wav", "2 channels cancel out")),
    "NaN sample": (_nan, ("kr001a.wav", "sample 24000 (1.000 s, channel 0) is nan")),
}


@pytest.mark.parametrize("case", sorted(AUDIO_FAULTS))
def test_audio_faults_at_preprocess(case, tree, monkeypatch, capsys):
    write, fragments = AUDIO_FAULTS[case]
    write(tree / "raw/korean/wav/kr001a.wav")
    before = snapshot(tree / "processed")
    code, err = invoke(preprocess_main, data_argv(tree), monkeypatch, capsys)
    assert_clean_failure(code, err, fragments, before, snapshot(tree / "processed"))


# --- binary store: metadata, and a binarize that fails midway ------------------------------------


@pytest.fixture()
def binarized(tree, monkeypatch, capsys):
    """The tiny tree preprocessed and binarized once (the 'old' dataset)."""
    assert invoke(preprocess_main, data_argv(tree), monkeypatch, capsys)[0] == 0
    assert invoke(binarize_main, data_argv(tree), monkeypatch, capsys)[0] == 0
    return tree


def _meta(split: Path) -> dict:
    return json.loads((split / "meta.json").read_text(encoding="utf-8"))


def _edit_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(split: Path) -> None:
        meta = _meta(split)
        change(meta)
        (split / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    return apply


STORE_FAULTS = {
    "meta.json truncated": (lambda s: (s / "meta.json").write_bytes((s / "meta.json").read_bytes()[:50]), "invalid JSON"),
    "meta.json empty": (lambda s: (s / "meta.json").write_bytes(b""), "invalid JSON at line 1, column 1"),
    "meta.json a list": (lambda s: (s / "meta.json").write_text("[]"), "a JSON list, not an object"),
    "meta.json without items": (_edit_meta(lambda m: m.pop("items")), "'items' must be a list"),
    "meta.json field without dtype": (_edit_meta(lambda m: m["fields"]["mel"].pop("dtype")), "field 'mel' needs a dtype"),
    "meta.json offset past the end": (_edit_meta(lambda m: m["items"][0]["offsets"].update(f0=10**9)), "item 0"),
    "meta.json negative length": (_edit_meta(lambda m: m["items"][0]["lengths"].update(wav=-5)), "length -5"),
    "meta.json item without lengths": (_edit_meta(lambda m: m["items"][0].pop("lengths")), "must have an offset and a length for every field"),
    "meta.json another format version": (_edit_meta(lambda m: m.update(format_version=99)), "binary format version 99"),
    "a .bin file truncated": (lambda s: (s / "mel.bin").write_bytes((s / "mel.bin").read_bytes()[:10]), "mel.bin: missing or truncated"),
}


@pytest.mark.parametrize("case", sorted(STORE_FAULTS))
def test_binary_store_faults(case, binarized, monkeypatch, capsys):
    from preprocessor.binary_dataset import BinaryDataset

    damage, fragment = STORE_FAULTS[case]
    split = binarized / "binary/train"
    damage(split)
    before = snapshot(binarized / "binary")
    code, err = invoke(lambda: BinaryDataset(split) and None, [], monkeypatch, capsys)
    assert_clean_failure(code, err, (str(split), fragment, "base_binarize.py"), before, snapshot(binarized / "binary"))


def test_a_binarize_that_fails_midway_leaves_the_old_dataset_whole(binarized, monkeypatch, capsys):
    old = snapshot(binarized / "binary")
    # The test split is binarized last: a damaged segment there fails after train/ and valid/ are written.
    test_wav = next(p for p in sorted((binarized / "processed/wavs").iterdir()) if p.name.startswith("kr003a"))
    test_wav.write_bytes(b"RIFF")
    before = snapshot(binarized / "binary") | snapshot(binarized / "processed")
    code, err = invoke(binarize_main, data_argv(binarized), monkeypatch, capsys)
    assert_clean_failure(code, err, (test_wav.name, "cannot decode the audio"), before, snapshot(binarized / "binary") | snapshot(binarized / "processed"))
    assert snapshot(binarized / "binary") == old
    assert not [p for p in binarized.iterdir() if p.name.startswith(".binary.")]  # no staging folder left


def test_a_binarize_that_succeeds_replaces_every_split_and_the_statistics(binarized, monkeypatch, capsys):
    old = {path: digest for path, digest in snapshot(binarized / "binary").items()}
    for name in ("kr001a", "kr002a", "kr003a"):  # new audio (louder): every split and the F0 statistics change
        write_song(binarized / "raw", name, notes=[(s, e, p + 2, y) for s, e, p, y in NOTES])
    assert invoke(preprocess_main, data_argv(binarized), monkeypatch, capsys)[0] == 0
    assert invoke(binarize_main, data_argv(binarized), monkeypatch, capsys)[0] == 0
    new = snapshot(binarized / "binary")
    for name in ("train/meta.json", "valid/meta.json", "test/meta.json", "f0_stats.json", "config.yaml"):
        assert str(binarized / "binary" / name) in new
    for name in ("train/f0.bin", "valid/f0.bin", "test/f0.bin", "f0_stats.json"):
        key = str(binarized / "binary" / name)
        assert new[key] != old[key], name
    assert not [p for p in binarized.iterdir() if p.name.startswith(".binary.")]


# --- checkpoints -------------------------------------------------------------------------------


def test_no_step_checkpoint_loads(tmp_path, monkeypatch, capsys):
    from tasks.checkpoint import checkpoint_name
    from tasks.runs.run import main
    from tests.tasks.runner_helpers import TINY, train

    assert train(tmp_path, "exp", TINY, "trainer.max_updates=4,trainer.val_check_interval=2,trainer.num_ckpt_keep=2") == 0
    for step in (2, 4):
        path = tmp_path / "exp" / checkpoint_name(step)
        path.write_bytes(path.read_bytes()[:300])
    before = snapshot(tmp_path / "exp")
    code, err = invoke(lambda: main(sys.argv[1:]), ["--exp_name", "exp", "--work_dir_root", tmp_path], monkeypatch, capsys)
    after = {k: v for k, v in snapshot(tmp_path / "exp").items() if not k.endswith("train.log")}  # the log says what happened
    assert_clean_failure(code, err, ("exp: no step checkpoint loads (2 tried", "use --reset"), {k: v for k, v in before.items() if not k.endswith("train.log")}, after)
