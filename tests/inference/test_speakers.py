"""Several singers at inference: speaker names recorded in the file, `--speaker NAME`, ids and weighted mixes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from config.errors import UserInputError, run_cli as run_main
from inference.api import Singer
from inference.render import render_score
from inference.speakers import parse_speaker
from tests.inference.conftest import F0_STATS, tiny_config, tiny_generator, write_runner_checkpoint
from tests.inference.midi_factory import melody, write_melody

NAMES = ("alto", "bass")


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory) -> Path:
    """A runner checkpoint of a tiny two-speaker VISinger whose training data named its speakers."""
    base = tmp_path_factory.mktemp("two_voices")
    binary_dir = base / "binary"
    binary_dir.mkdir()
    per_speaker = {"alto": {"id": 0, "note_pitch_min": 60, "note_pitch_max": 74}, "bass": {"id": 1, "note_pitch_min": 48, "note_pitch_max": 62}}
    (binary_dir / "f0_stats.json").write_text(json.dumps({**F0_STATS, "speakers": list(NAMES), "per_speaker": per_speaker}), encoding="utf-8")
    config = tiny_config(binary_dir, "model.n_speakers=2,model.gin_channels=4")
    generator = tiny_generator(config, seed=5)
    path = base / "checkpoints" / "voices" / "model_ckpt_steps_1.pt"
    write_runner_checkpoint(path, config, {"generator": generator.state_dict()})
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """Two short phrases (C4..F4 then G4): quick to render, and inside the alto's range only."""
    notes = melody((60, "별"), (62, "빛"), (64, "이"), (65, "다")) + melody((67, "반"), (67, "짝"), start=5 * 480)
    return write_melody(tmp_path_factory.mktemp("song") / "song.mid", notes)


@pytest.fixture(scope="module")
def singer(two_voices, frontend) -> Singer:
    return Singer.load(two_voices, device="cpu", frontend=frontend)


def test_names_ids_and_mixes_parse_and_bad_ones_are_one_line_naming_the_speakers():
    assert parse_speaker("bass", NAMES).value == 1 and parse_speaker(1, NAMES).value == 1 and parse_speaker("0", NAMES).value == 0
    mix = parse_speaker("alto:0.7, bass:0.3", NAMES)
    assert mix.is_mix and np.allclose(mix.value, (0.7, 0.3)) and mix.label == "alto:0.70,bass:0.30"
    assert parse_speaker("alto:2,bass:2", NAMES).value == (0.5, 0.5)  # scaled to sum to 1
    assert parse_speaker("bass:1", NAMES).value == (0.0, 1.0)
    for bad in ("tenor", "2", "alto:0.5,tenor:0.5", "alto:x", "alto:-1", "alto:0,bass:0", "alto:0.5,alto:0.5", "alto:0.5,", ":0.5", 5, -1):
        with pytest.raises(UserInputError) as error:
            parse_speaker(bad, NAMES)
        message = str(error.value)
        assert "\n" not in message and "alto (0), bass (1)" in message, message


def test_the_file_names_its_speakers_and_each_voice_and_mix_sings_its_own(singer, song, tmp_path):
    assert singer.speakers == NAMES
    alto = singer.sing(song, speaker="alto")
    bass = singer.sing(song, speaker=1)
    assert not np.allclose(alto.wav, bass.wav, atol=1e-4)
    # A named voice is warned against its own trained range (the bass's ends below the song's top).
    assert not [w for w in alto.warnings if "range" in w] and [w for w in bass.warnings if "range" in w]
    # A mix of one speaker at weight 1 goes through the weight path and sings exactly as that speaker.
    assert np.array_equal(singer.sing(song, speaker="alto:1").wav, alto.wav)
    dump = tmp_path / "mix.json"
    half = render_score(singer, song, tmp_path / "mix.wav", speaker="alto:0.5,bass:0.5", dump=dump)
    assert half.speaker == (0.5, 0.5) and not np.allclose(half.wav, alto.wav, atol=1e-4) and not np.allclose(half.wav, bass.wav, atol=1e-4)
    # The editable render keeps the mix: sung back, the same audio.
    assert json.loads(dump.read_text(encoding="utf-8"))["speaker"] == [0.5, 0.5]
    assert np.array_equal(singer.sing(dump).wav, half.wav)


def test_the_cli_takes_a_name_and_a_bad_name_is_exit_2_with_one_line(two_voices, song, tmp_path, monkeypatch, capsys):
    from inference.visinger import main

    for speaker, code in (("bass", 0), ("tenor", 2)):
        out = tmp_path / f"{speaker}.wav"
        monkeypatch.setattr(sys, "argv", ["visinger.py", "--ckpt", str(two_voices), "--score", str(song), "--out", str(out), "--speaker", speaker])
        with pytest.raises(SystemExit) as exit_info:
            run_main(main)
        err = capsys.readouterr().err
        assert exit_info.value.code == code, err
        assert out.is_file() == (code == 0)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "'tenor'" in lines[0] and "alto (0), bass (1)" in lines[0], err

