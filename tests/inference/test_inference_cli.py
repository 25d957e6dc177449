"""`python inference/visinger.py` end to end with a tiny VISinger: renders, --lyrics, --key_shift, folders, packs, bad inputs.

The CLI runs as a subprocess from the repo root with no PYTHONPATH, as a user runs it; the folder
test runs `main()` in process to count model loads.
"""
from __future__ import annotations

import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from config.errors import UserInputError, run_cli as run_main
from config.loader import load_config
from inference.api import Singer
from preprocessor.scores.midi_reader import read_score
from inference.synthesis import SingingSynthesizer
from tests.inference.conftest import (
    F0_STATS,
    REPO_ROOT,
    SANCHAEK,
    TinyExperiment,
    as_pcm16,
    read_pcm,
    run_cli,
    tiny_config,
    tiny_generator,
    write_runner_checkpoint,
)
from tests.inference.midi_factory import N, melody, write_melody

HIFIGAN_TASK = "tasks.hifigan_task.HiFiGANTask"
Q = 480  # ticks per beat; a beat is 0.5 s at the factory's 120 bpm


def score_samples(midi: Path, sample_rate: int, lyrics: Path | None = None) -> float:
    """The score's length in samples: time 0 to the end of its last note."""
    return read_score(midi, lyrics_path=lyrics).total_seconds * sample_rate


@pytest.fixture(scope="module")
def example_render(tiny_experiment: TinyExperiment, tmp_path_factory) -> tuple:
    """sanchaek.mid rendered from the experiment with --plot (default seed): (process, wav path)."""
    out = tmp_path_factory.mktemp("example") / "out"
    wav = out / "sanchaek.wav"
    process = run_cli("--work_dir_root", tiny_experiment.work_dir_root, "--exp_name", tiny_experiment.exp_name, "--midi", SANCHAEK, "--out", wav, "--plot")
    return process, wav


def test_example_score_renders_to_a_16bit_wav_of_the_score_length_with_a_plot(example_render, tiny_experiment):
    process, wav = example_render
    assert process.returncode == 0, process.stderr
    assert str(wav) in process.stdout
    samples, rate, subtype = read_pcm(wav)
    hop = tiny_experiment.config["audio"]["hop_size"]
    assert rate == tiny_experiment.config["audio"]["sample_rate"] == 16000 and subtype == "PCM_16"
    assert len(samples) % hop == 0
    assert abs(len(samples) - score_samples(SANCHAEK, rate)) <= hop  # 15 s
    assert np.abs(samples).max() > 0
    png = wav.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert sorted(p.name for p in wav.parent.iterdir()) == ["sanchaek.png", "sanchaek.wav"]  # no temporaries left


def test_a_folder_of_midis_renders_every_score_with_one_model_load(tiny_experiment, example_render, tmp_path, monkeypatch, capsys):
    scores = tmp_path / "scores"
    scores.mkdir()
    shutil.copy(SANCHAEK, scores / "sanchaek.mid")
    write_melody(scores / "short.MID", melody((60, "별"), (62, "빛"), (64, "이"), start=Q // 2))
    (scores / "notes.txt").write_text("not a score", encoding="utf-8")
    loads = []
    real_load = Singer.load
    monkeypatch.setattr(Singer, "load", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs))
    out = tmp_path / "wavs"
    argv = ["visinger.py", "--work_dir_root", str(tiny_experiment.work_dir_root), "--exp_name", "tiny", "--midi", str(scores), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    from inference.visinger import main

    with pytest.raises(SystemExit) as exit_info:
        run_main(main)
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert len(loads) == 1
    assert sorted(p.name for p in out.iterdir()) == ["sanchaek.wav", "short.wav"]
    for name, midi in (("sanchaek", SANCHAEK), ("short", scores / "short.MID")):
        samples, rate, _ = read_pcm(out / f"{name}.wav")
        assert abs(len(samples) - score_samples(midi, rate)) <= 160
    # The same song in a folder and alone: the same audio (each score is seeded on its own).
    # The reference ran in a subprocess on one thread (cli_env), this render on the test process's threads:
    # float sums in another order may move a sample by one 16-bit step; a seeding bug would move them all.
    np.testing.assert_allclose(read_pcm(out / "sanchaek.wav")[0].astype(np.int32), read_pcm(example_render[1])[0].astype(np.int32), rtol=0, atol=1)


def test_lyrics_file_for_a_midi_without_lyrics_and_key_shift(tiny_experiment, frontend, tmp_path):
    notes = melody((60, None), (62, None), (64, None), start=Q // 2) + melody((65, None), (64, None), start=5 * Q)
    midi = write_melody(tmp_path / "plain.mid", notes)
    lyrics = tmp_path / "plain.txt"
    lyrics.write_text("산책 가\n자요\n", encoding="utf-8")
    wav = tmp_path / "out" / "plain.wav"
    process = run_cli("--ckpt", tiny_experiment.checkpoint, "--midi", midi, "--lyrics", lyrics, "--key_shift", 12, "--out", wav)
    assert process.returncode == 0, process.stderr
    samples, rate, _ = read_pcm(wav)
    assert abs(len(samples) - score_samples(midi, rate, lyrics)) <= 160

    # The same notes with the lyrics inside the MIDI, synthesised here: the CLI sang exactly these syllables, an octave up.
    with_lyrics = write_melody(tmp_path / "with.mid", [N(n.start, n.end, n.pitch, s) for n, s in zip(notes, "산책가자요")])
    score = read_score(with_lyrics)
    synthesizer = SingingSynthesizer(tiny_experiment.generator, rate, 160, frontend=frontend)
    shifted = synthesizer.synthesize(score.notes, key_shift=12, seed=0)
    assert np.abs(samples.astype(int) - as_pcm16(shifted.wav).astype(int)).max() <= 1
    unshifted = synthesizer.synthesize(score.notes, key_shift=0, seed=0)
    # The shift changes the render: by more than a tenth of its peak somewhere (not a rounding difference).
    change = np.abs(as_pcm16(unshifted.wav).astype(int) - samples).max()
    assert len(unshifted.wav) == len(samples) and change > max(0.1 * np.abs(samples).max(), 4)


def test_pack_is_self_contained_and_sings_exactly_like_the_experiment(tiny_experiment, example_render, tmp_path):
    pack = tmp_path / "packed" / "tiny"
    process = run_cli("--work_dir_root", tiny_experiment.work_dir_root, "--pack", tiny_experiment.exp_name, "--out", pack)
    assert process.returncode == 0, process.stderr
    assert sorted(p.name for p in pack.iterdir()) == ["README.md", "model.pt"]
    assert sorted(p.name for p in pack.parent.iterdir()) == ["tiny"]  # no partial folder left beside it
    packed = torch.load(pack / "model.pt", map_location="cpu", weights_only=True)
    assert packed["format"] == "svs-model-pack" and packed["version"] == 2
    assert set(packed["models"]) == {"generator"}  # inference models only: no discriminator, no optimizer state
    assert set(packed["models"]["generator"]) == set(tiny_experiment.generator.state_dict())
    description = packed["description"]
    assert description["models"]["generator"]["class_path"] == "modules.visinger.VISingerGenerator"
    assert description["stats"] == F0_STATS and description["audio"]["sample_rate"] == 16000
    assert packed["trained"][0]["config"] == tiny_experiment.config and packed["trained"][0]["global_step"] == 1
    card = (pack / "README.md").read_text(encoding="utf-8")
    assert "modules.visinger.VISingerGenerator" in card and "updates trained: 1" in card and "Singer.load" in card

    # Sing from the pack with the training data gone and from a folder that is not the repo.
    hidden = tiny_experiment.binary_dir.with_name("hidden")
    tiny_experiment.binary_dir.rename(hidden)
    try:
        wav = tmp_path / "from_pack.wav"
        process = run_cli("--ckpt", pack, "--midi", SANCHAEK, "--out", wav, cwd=tmp_path)
    finally:
        hidden.rename(tiny_experiment.binary_dir)
    assert process.returncode == 0, process.stderr
    np.testing.assert_array_equal(read_pcm(wav)[0], read_pcm(example_render[1])[0])


def test_packing_replaces_an_old_pack_but_never_deletes_other_folders(tiny_experiment, tmp_path):
    singer = Singer.load(tiny_experiment.exp_dir, device="cpu")
    assert singer.pitch_range == (60, 74)
    pack = singer.pack(tmp_path / "pack")
    card = (pack / "README.md").read_text(encoding="utf-8")
    (pack / "README.md").write_text("edited", encoding="utf-8")
    singer.pack(pack)  # an earlier pack is replaced
    assert (pack / "README.md").read_text(encoding="utf-8") == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]
    reloaded = Singer.load(pack, device="cpu")
    assert reloaded.pitch_range == (60, 74)
    for name, tensor in singer.model.state_dict().items():
        assert torch.equal(reloaded.model.state_dict()[name], tensor)
    # --out pointing at the experiment itself (or any folder that is not a pack) must not wipe it.
    with pytest.raises(UserInputError, match="exists and is not a packed model"):
        singer.pack(tiny_experiment.exp_dir)
    assert tiny_experiment.checkpoint.is_file()
    assert sorted(p.name for p in tiny_experiment.exp_dir.iterdir()) == [tiny_experiment.checkpoint.name]


# --- bad inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadCase:
    args: tuple  # everything but --out
    names: str  # the file or folder (or flag) the error line must name
    says: str  # a piece of the message that shows the error is the intended one


def _bad_cases(root: Path, experiment: TinyExperiment) -> dict[str, BadCase]:
    exp = ("--work_dir_root", experiment.work_dir_root, "--exp_name", experiment.exp_name)
    (root / "not_midi.mid").write_text("MThd? no, just text\n", encoding="utf-8")
    write_melody(root / "no_notes.mid", [])
    write_melody(root / "no_lyrics.mid", melody((60, None), (62, None), (64, None)))
    (root / "two.txt").write_text("가나\n", encoding="utf-8")
    write_melody(root / "latin.mid", melody((60, "가"), (62, "A"), (64, "x")))
    write_melody(root / "chord.mid", [N(0, Q, 60, "가"), N(0, Q, 64, None), N(Q, 2 * Q, 62, "나")])
    write_melody(root / "bytes.mid", melody((60, "가"), (62, b"\xff\xfe\xfa")))

    roots = {name: root / name / "checkpoints" for name in ("empty", "old", "vocoder", "shape")}
    (roots["empty"] / "tiny").mkdir(parents=True)
    (roots["empty"] / "tiny" / "config.yaml").write_text("{}\n", encoding="utf-8")
    write_runner_checkpoint(
        roots["old"] / "tiny" / "model_ckpt_steps_5.pt", experiment.config, {"generator": experiment.generator.state_dict()}, describe=False
    )
    vocoder_config = load_config(REPO_ROOT / "config" / "models" / "hifigan_demo.yaml", f"dataset.binary_dir={experiment.binary_dir}")
    write_runner_checkpoint(
        roots["vocoder"] / "tiny" / "model_ckpt_steps_5.pt", vocoder_config, {"generator": {}, "discriminator": {}}, task_cls=HIFIGAN_TASK
    )
    # Saved with hidden 16 in its config but weights of a hidden-24 generator: not this model's weights.
    wider = tiny_generator(tiny_config(experiment.binary_dir, "model.hidden_channels=24"))
    write_runner_checkpoint(roots["shape"] / "tiny" / "model_ckpt_steps_5.pt", experiment.config, {"generator": wider.state_dict()})

    def on(name: str, *extra) -> tuple:
        return (*exp, "--midi", root / name, *extra)

    return {
        "not a MIDI file": BadCase(on("not_midi.mid"), "not_midi.mid", "not a readable MIDI file"),
        "MIDI without notes": BadCase(on("no_notes.mid"), "no_notes.mid", "has no notes"),
        "no lyrics and no --lyrics": BadCase(on("no_lyrics.mid"), "no_lyrics.mid", "3 of 3 notes lack a lyric"),
        "syllable count != note count": BadCase(on("no_lyrics.mid", "--lyrics", root / "two.txt"), "two.txt", "2 syllables but no_lyrics.mid has 3 notes"),
        "non-Hangul lyric": BadCase(on("latin.mid"), "latin.mid", "'A' (U+0041)"),
        "overlapping notes": BadCase(on("chord.mid"), "chord.mid", "(a chord)"),
        "undecodable lyric bytes": BadCase(on("bytes.mid"), "bytes.mid", "neither UTF-8 nor CP949"),
        "key shift past MIDI 127": BadCase(on("latin.mid", "--key_shift", "100"), "latin.mid", "pitch 60 +100 = 160, outside MIDI 1..127"),
        "speaker the model lacks": BadCase((*exp, "--midi", SANCHAEK, "--speaker", "2"), "--speaker 2", "this model has 1 speaker"),
        "missing experiment": BadCase(("--work_dir_root", experiment.work_dir_root, "--exp_name", "nope", "--midi", SANCHAEK), "nope", "experiment not found"),
        "experiment without checkpoints": BadCase(
            ("--work_dir_root", roots["empty"], "--exp_name", "tiny", "--midi", SANCHAEK), str(roots["empty"] / "tiny"), "no checkpoint yet"
        ),
        "checkpoint without a model description": BadCase(
            ("--work_dir_root", roots["old"], "--exp_name", "tiny", "--midi", SANCHAEK), "model_ckpt_steps_5.pt", "add it with python tasks/runs/describe_checkpoint.py"
        ),
        "checkpoint of a vocoder alone": BadCase(
            ("--work_dir_root", roots["vocoder"], "--exp_name", "tiny", "--midi", SANCHAEK), "model_ckpt_steps_5.pt", "holds nothing that sings"
        ),
        "generator weights of another shape": BadCase(
            ("--work_dir_root", roots["shape"], "--exp_name", "tiny", "--midi", SANCHAEK), "model_ckpt_steps_5.pt", "not this model's weights"
        ),
        "not a pack folder": BadCase(("--ckpt", root, "--midi", SANCHAEK), str(root), "neither a packed model (no model.pt) nor an experiment"),
    }


@pytest.fixture(scope="module")
def bad_runs(tiny_experiment, tmp_path_factory) -> dict[str, tuple[BadCase, object, Path]]:
    """Every bad case run once, two processes at a time (each pays for Python and torch start-up)."""
    root = tmp_path_factory.mktemp("bad")
    cases = _bad_cases(root, tiny_experiment)

    def run(item):
        name, case = item
        out = root / "out" / name.replace(" ", "_")
        out.mkdir(parents=True)  # an existing, empty output folder: it must stay empty
        return name, (case, run_cli(*case.args, "--out", out / "song.wav"), out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, cases.items()))


BAD_CASE_NAMES = [
    "not a MIDI file",
    "MIDI without notes",
    "no lyrics and no --lyrics",
    "syllable count != note count",
    "non-Hangul lyric",
    "overlapping notes",
    "undecodable lyric bytes",
    "key shift past MIDI 127",
    "speaker the model lacks",
    "missing experiment",
    "experiment without checkpoints",
    "checkpoint without a model description",
    "checkpoint of a vocoder alone",
    "generator weights of another shape",
    "not a pack folder",
]


@pytest.mark.parametrize("name", BAD_CASE_NAMES)
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(bad_runs, name):
    case, process, out = bad_runs[name]
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 2, process.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr
    assert case.names in lines[0] and case.says in lines[0], lines[0]
    assert list(out.iterdir()) == []  # no wav, no temporary


def test_every_bad_case_is_checked(tiny_experiment, tmp_path):
    assert sorted(_bad_cases(tmp_path, tiny_experiment)) == sorted(BAD_CASE_NAMES)
