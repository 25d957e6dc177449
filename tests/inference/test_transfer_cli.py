"""inference/transfer.py: the controls measured on the output, the pack, the real-time path, bad inputs."""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import numpy as np
import pytest
import soundfile as sf

from preprocessor.audio import extract_f0, hz_to_midi, load_wav
from tests.audio_factory import sung_phrase

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "inference" / "transfer.py"
SR, HOP = 16000, 160


@pytest.fixture(scope="module")
def experiment(ddsp_experiment) -> Path:
    return ddsp_experiment


@pytest.fixture(scope="module")
def off_key_input(tmp_path_factory) -> Path:
    """A phrase sung between the semitones (+30 and -40 cents), with vibrato."""
    path = tmp_path_factory.mktemp("ddsp_in") / "off_key.wav"
    sf.write(path, sung_phrase([57.3, 59.6, 62.3, 60.6], SR, note_seconds=0.6, vibrato_cents=15, seed=5), SR)
    return path


class Completed(NamedTuple):
    returncode: int
    stderr: str


def run_cli(experiment: Path, *args: str, subprocess_: bool = False) -> Completed:
    """The CLI with `args`: in this process (fast), or as a script in a subprocess (what a user runs)."""
    argv = ["--work_dir_root", str(experiment), *args]
    if subprocess_:
        env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, str(CLI), *argv], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
        return Completed(done.returncode, done.stderr)
    from config.errors import run_cli as run_main
    from inference.transfer import main

    stderr = io.StringIO()
    with mock.patch.object(sys, "argv", [str(CLI), *argv]), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_main(main)
        except SystemExit as stop:
            return Completed(int(stop.code or 0), stderr.getvalue())
    raise AssertionError("run_cli always exits")


def voiced_f0(path: Path) -> np.ndarray:
    wav = load_wav(path, SR)
    track = extract_f0(wav, SR, HOP, len(wav) // HOP, 50, 1100)
    return track.f0_hz


def test_octave_shift_doubles_the_f0_measured_on_the_output(experiment, off_key_input, tmp_path):
    for shift in ("0", "1"):
        result = run_cli(experiment, "--exp_name", "tiny_ddsp", "--wav", str(off_key_input), "--out", str(tmp_path / f"shift{shift}.wav"), "--octave_shift", shift)
        assert result.returncode == 0, result.stderr
    plain, shifted, source = voiced_f0(tmp_path / "shift0.wav"), voiced_f0(tmp_path / "shift1.wav"), voiced_f0(off_key_input)
    both = (plain > 0) & (shifted > 0) & (source > 0)
    assert both.mean() > 0.5
    assert np.median(np.abs(1200 * np.log2(plain[both] / source[both]))) < 20  # the voice sings the input's pitch
    ratio_cents = 1200 * np.log2(shifted[both] / plain[both])
    assert np.median(np.abs(ratio_cents - 1200)) < 20  # one octave up


def test_autotune_snaps_the_output_to_semitones(experiment, off_key_input, tmp_path):
    result = run_cli(experiment, "--exp_name", "tiny_ddsp", "--wav", str(off_key_input), "--out", str(tmp_path / "tuned.wav"), "--autotune", "1", "--plot", subprocess_=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tuned.png").stat().st_size > 10_000
    def within_10_cents(f0: np.ndarray) -> float:
        midi = hz_to_midi(f0[f0 > 0])
        return float((np.abs(midi - np.round(midi)) < 0.1).mean())
    assert within_10_cents(voiced_f0(tmp_path / "tuned.wav")) > 0.8
    assert within_10_cents(voiced_f0(off_key_input)) < 0.4  # the input was off key


def test_the_stream_path_and_a_pack_give_the_offline_samples(experiment, off_key_input, tmp_path):
    from inference.api import Singer
    from model_io.loader import load_saved

    voice = Singer.load(experiment / "tiny_ddsp", device="cpu")
    controls = dict(autotune=0.5, loudness_stats=True, mask_threshold=1.0, attenuation=10.0)
    offline = voice.transfer(off_key_input, **controls)
    streamed = voice.transfer(off_key_input, **controls, block_frames=2)
    assert np.abs(offline.wav - streamed.wav).max() < 1e-4
    assert offline.tracks.mask is not None and not offline.tracks.mask.on.all()  # the gaps between notes are off
    blocks = list(voice.stream(off_key_input, block_frames=3, **controls))  # 3 does not divide the frame count
    hop = voice.audio.hop_size
    assert all(len(b) == 3 * hop for b in blocks[:-2]) and len(np.concatenate(blocks)) == len(offline.wav) + hop
    assert np.abs(np.concatenate(blocks)[:hop]).max() == 0 and np.abs(np.concatenate(blocks)[hop:] - offline.wav).max() < 1e-4
    pack = voice.pack(tmp_path / "pack")
    assert sorted(p.name for p in pack.iterdir()) == ["README.md", "model.pt"]  # model_io's one pack format
    card = (pack / "README.md").read_text()
    assert "(transfer)" in card and "loudness meter window 1024" in card and "singer.transfer(" in card
    saved = load_saved(pack)
    assert saved.description.stats["loudness_n_fft"] == 1024
    assert saved.description.stats["pitch_mean_midi"] == pytest.approx(float(voice.model.pitch_mean_midi))
    repacked = Singer.load(pack, device="cpu")
    assert repacked.model.statistics() == voice.model.statistics()
    assert np.array_equal(repacked.transfer(off_key_input, **controls).wav, offline.wav)
    samples, rate = sf.read(off_key_input, dtype="float32")
    in_memory = repacked.transfer(np.stack([samples, samples], axis=1), rate, **controls)  # stereo samples, not a file
    assert np.abs(in_memory.wav - offline.wav).max() < 1e-5


def test_live_mode_tracks_the_f0_itself_and_shifts_it(experiment, off_key_input, tmp_path):
    """`--stream --causal`: audio in, audio out block by block (F0 from the causal tracker); one octave up doubles it."""
    for shift in ("0", "1"):
        out = tmp_path / f"live{shift}.wav"
        result = run_cli(experiment, "--exp_name", "tiny_ddsp", "--wav", str(off_key_input), "--out", str(out), "--stream", "--causal", "--block_frames", "2", "--octave_shift", shift)
        assert result.returncode == 0, result.stderr
    plain, shifted, source = voiced_f0(tmp_path / "live0.wav"), voiced_f0(tmp_path / "live1.wav"), voiced_f0(off_key_input)
    assert len(load_wav(tmp_path / "live0.wav", SR)) == -(-len(load_wav(off_key_input, SR)) // (2 * HOP)) * 2 * HOP  # one block out per block in
    lag = 4  # frames: the loudness window's lag (2.7) + the renderer's hop, rounded up
    both = (plain[lag:] > 0) & (source[: len(plain) - lag] > 0)
    assert both.mean() > 0.5
    assert np.median(np.abs(1200 * np.log2(plain[lag:][both] / source[: len(plain) - lag][both]))) < 30  # the input's pitch, a few frames late
    both = (plain > 0) & (shifted > 0)
    assert np.median(np.abs(1200 * np.log2(shifted[both] / plain[both]) - 1200)) < 20


def test_a_transfer_model_does_not_sing_scores_nor_a_score_singer_transfer(experiment, tiny_experiment, off_key_input):
    from config.errors import UserInputError
    from inference.api import Singer
    from tests.inference.conftest import SANCHAEK

    voice = Singer.load(experiment / "tiny_ddsp", device="cpu")
    with pytest.raises(UserInputError, match="timbre-transfer model .* sings recordings, not scores; use Singer.transfer"):
        voice.sing(SANCHAEK)
    singer = Singer.load(tiny_experiment.exp_dir, device="cpu")
    with pytest.raises(UserInputError, match="sings scores, not recordings"):
        singer.transfer(off_key_input)
    with pytest.raises(UserInputError, match="sings scores, not recordings"):
        next(iter(singer.stream(off_key_input)))


def test_old_files_load_or_say_how_to_convert(experiment, off_key_input, tmp_path):
    """The DDSP singer's first pack (`ddsp_singer.pt` + `config.yaml`) loads; a checkpoint written before the
    description is one line naming describe_checkpoint, which makes it loadable."""
    import dataclasses

    import torch

    from config.errors import UserInputError
    from config.loader import save_config
    from inference.api import Singer
    from model_io.checkpoint_file import default_checkpoint, load_checkpoint
    from model_io.loader import load_saved
    from tasks.runs.describe_checkpoint import describe_checkpoint

    voice = Singer.load(experiment / "tiny_ddsp", device="cpu")
    expected = voice.transfer(off_key_input).wav
    old_pack = tmp_path / "old_pack"
    old_pack.mkdir()
    torch.save({"format": "korean-ddsp-singer-pack", "version": 1, "arguments": dataclasses.asdict(voice.model.config),
                "state": voice.model.state_dict(), "source": "x"}, old_pack / "ddsp_singer.pt")  # fmt: skip
    save_config(dict(voice.saved.trained[0].config), old_pack / "config.yaml")
    assert np.array_equal(Singer.load(old_pack, device="cpu").transfer(off_key_input).wav, expected)
    old_checkpoint = tmp_path / "old_exp" / "model_ckpt_steps_2.pt"
    old_checkpoint.parent.mkdir()
    state = load_checkpoint(default_checkpoint(experiment / "tiny_ddsp"))
    del state["description"]
    torch.save(state, old_checkpoint)
    with pytest.raises(UserInputError, match="describe_checkpoint.py"):
        load_saved(old_checkpoint)
    assert describe_checkpoint(old_checkpoint)  # the task describes it from its config and its feature cache
    assert np.array_equal(Singer.load(old_checkpoint.parent, device="cpu").transfer(off_key_input).wav, expected)


@pytest.mark.parametrize(
    "make_input, extra, message",
    [
        (lambda p: p.write_bytes(b"not audio at all"), [], "cannot decode"),
        (lambda p: sf.write(p, np.zeros(SR, np.float32), SR), [], "silence only"),
        (lambda p: sf.write(p, sung_phrase([60], SR), SR), ["--stream", "--block_frames", "0"], "--block_frames 0"),
        (lambda p: sf.write(p, sung_phrase([60], SR), SR), ["--stream", "--causal", "--loudness_stats"], "loudness_stats: needs the whole recording"),
    ],
    ids=["unreadable", "silence", "block_size_0", "live_with_whole_file_control"],
)
def test_bad_inputs_are_one_line_and_exit_2(experiment, tmp_path, make_input, extra, message):
    source = tmp_path / "in.wav"
    make_input(source)
    out = tmp_path / "out.wav"
    result = run_cli(experiment, "--exp_name", "tiny_ddsp", "--wav", str(source), "--out", str(out), *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.wav*"))


def test_the_real_recording_is_sung_at_its_pitch_shifted_down_an_octave(experiment, csd_early_dir, tmp_path):
    source = csd_early_dir / "wav" / "headshoulder_kr_0u.wav"
    out = tmp_path / "kr024.wav"
    result = run_cli(experiment, "--exp_name", "tiny_ddsp", "--wav", str(source), "--out", str(out), "--octave_shift", "-1", "--loudness_stats")
    assert result.returncode == 0, result.stderr
    reference, sung = voiced_f0(source) / 2, voiced_f0(out)
    n = min(len(reference), len(sung))
    both = (reference[:n] > 0) & (sung[:n] > 0)
    cents = np.abs(1200 * np.log2(sung[:n][both] / reference[:n][both]))
    assert (cents < 50).mean() > 0.8
