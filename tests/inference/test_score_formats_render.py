"""Singing every score format, the editable render (--dump / --score FILE.json) and the Hangul plot, with a tiny VISinger."""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from config.errors import UserInputError, run_cli as run_main
from config.loader import config_section
from inference.api import Singer
from inference.render import render_score
from preprocessor.audio import AudioSettings, extract_f0
from tests.inference.conftest import TinyExperiment, read_pcm, run_cli, tiny_generator
from tests.preprocessor.test_score_formats import hand_ust, xml_note, xml_score
from tests.score_files import (
    ds_segment,
    ustx_project,
    write_ds,
    write_midi_song,
    write_musicxml_song,
    write_ust_song,
    write_ustx_song,
)


@pytest.fixture(scope="module")
def singer(tiny_experiment: TinyExperiment) -> Singer:
    return Singer.load(tiny_experiment.exp_dir, device="cpu")


def pitched_singer(singer: Singer, config: dict) -> Singer:
    """The tiny VISinger with its decoder set to play its harmonic source: the audio's pitch is the F0 it is given.

    An untrained decoder buzzes at its upsampling rates whatever F0 it gets, so nothing about pitch
    could be measured on its audio. Here the latent path is zeroed (conv_pre, the upsampling
    convolutions, the source's strided stage inputs), the source plays its fundamental alone, and
    its full-rate input passes it on; the rest of the generator (score encoder, F0 predictor, prior,
    flow) and the whole render path are the real ones.
    """
    generator = tiny_generator(config)  # a copy: the loaded model stays as it is for the other tests
    generator.load_state_dict(singer.model.state_dict())
    decoder = generator.decoder
    with torch.no_grad():
        decoder.conv_pre.weight.zero_()
        decoder.conv_pre.bias.zero_()
        for up in decoder.ups:
            up.parametrizations.weight.original0.zero_()
            up.bias.zero_()
        for conv in list(decoder.source_convs)[:-1]:
            conv.weight.zero_()
            conv.bias.zero_()
        decoder.source_convs[-1].weight.fill_(1.0)
        decoder.source_convs[-1].bias.zero_()
        projection = decoder.source.controls_projection
        projection.weight.zero_()
        projection.bias.fill_(-20.0)  # harmonics 2.. and the noise off
        projection.bias[0] = 10.0  # the fundamental at 0.5
    return Singer(generator.eval(), singer.saved, singer.device, singer.frontend)


def measured(wav: np.ndarray, audio: AudioSettings, frames: int) -> np.ndarray:
    return extract_f0(wav, audio.sample_rate, audio.hop_size, frames, audio.f0_min, audio.f0_max).f0_hz


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.log2(a / b)


# ---------------------------------------------------------------------------------------------
# Every format sings


def test_one_song_in_midi_musicxml_ust_and_ustx_gives_the_same_audio_length(singer, tmp_path):
    files = [write_midi_song(tmp_path / "s.mid"), write_musicxml_song(tmp_path / "s.musicxml"), write_ust_song(tmp_path / "s.ust"), write_ustx_song(tmp_path / "s.ustx")]
    lengths, notes = [], []
    for path in files:
        result = render_score(singer, path, tmp_path / f"{path.suffix[1:]}.wav").synthesis
        lengths.append(len(read_pcm(tmp_path / f"{path.suffix[1:]}.wav")[0]))
        notes.append([(round(n.start, 3), round(n.end, 3), n.pitch, n.lyric) for n in result.notes])
    hop, rate = singer.audio.hop_size, singer.audio.sample_rate
    assert lengths == [round(4.8 * rate / hop) * hop] * 4  # 4.8 s: 100 BPM, then 75 BPM
    assert all(n == notes[0] for n in notes)


def test_cli_sings_a_folder_of_mixed_formats_and_dumps_each(tiny_experiment, tmp_path):
    scores = tmp_path / "scores"
    scores.mkdir()
    write_midi_song(scores / "a.mid")
    write_musicxml_song(scores / "b.musicxml")
    write_ust_song(scores / "c.ust", encoding="cp949")
    write_ustx_song(scores / "d.ustx")
    write_ds(scores / "e.ds", [ds_segment(0.2, [("C4", 0.5, 0), ("D4", 0.5, 0)], "가 나")])
    (scores / "readme.txt").write_text("not a score", encoding="utf-8")
    process = run_cli("--work_dir_root", tiny_experiment.work_dir_root, "--exp_name", tiny_experiment.exp_name, "--score", scores, "--out", tmp_path / "wavs", "--dump", tmp_path / "dumps")
    assert process.returncode == 0, process.stderr
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == ["a.wav", "b.wav", "c.wav", "d.wav", "e.wav"]
    assert sorted(p.name for p in (tmp_path / "dumps").iterdir()) == ["a.json", "b.json", "c.json", "d.json", "e.json"]
    # --score takes the dump back; --midi is the old name of the same option.
    again = run_cli("--work_dir_root", tiny_experiment.work_dir_root, "--exp_name", tiny_experiment.exp_name, "--midi", tmp_path / "dumps" / "c.json", "--out", tmp_path / "again.wav")
    assert again.returncode == 0, again.stderr
    assert np.array_equal(read_pcm(tmp_path / "again.wav")[0], read_pcm(tmp_path / "wavs" / "c.wav")[0])


# ---------------------------------------------------------------------------------------------
# Bad inputs: exit 2, one line, no wav


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    no_lyrics = tmp_path / "nolyrics.musicxml"
    no_lyrics.write_text(xml_score([("Voice", [xml_note("C", 4, 4) + xml_note("D", 4, 4)])]), encoding="utf-8")
    encoding = tmp_path / "encoding.ust"
    encoding.write_bytes(hand_ust([("가", 480, 60)]).encode("utf-8").replace("가".encode("utf-8"), b"\xff\x80\xfe"))
    project = ustx_project()
    project["voice_parts"][0]["notes"][1]["position"] = 240
    overlap = write_ustx_song(tmp_path / "overlap.ustx", project=project)
    latin = tmp_path / "latin.ust"
    latin.write_text(hand_ust([("가", 480, 60), ("la", 480, 62)]), encoding="utf-8")
    truncated = write_musicxml_song(tmp_path / "cut.mxl")
    truncated.write_bytes(truncated.read_bytes()[:300])
    unknown = tmp_path / "song.sib"
    unknown.write_bytes(b"SIBELIUS")
    segment = ds_segment(0, [("C4", 0.5, 0), ("D4", 0.5, 0)], "가 나", phonemes=[("g", 0.1), ("a", 0.4), ("n", 0.1), ("a", 0.2)])
    ds = write_ds(tmp_path / "phonemes.ds", [segment])
    return {
        "no lyrics": (no_lyrics, "no note in any part has a lyric"),
        "unknown encoding": (encoding, "neither UTF-8, CP949 nor Shift-JIS"),
        "overlapping notes": (overlap, "still sounds"),
        "non-Hangul lyric": (latin, "not a Hangul syllable"),
        "truncated file": (truncated, "cut short"),
        "unknown extension": (unknown, "unknown score format '.sib'"),
        "DS phoneme durations": (ds, "phoneme durations add up to 0.800 s but the notes to 1.000 s"),
    }


@pytest.mark.parametrize("case", ["no lyrics", "unknown encoding", "overlapping notes", "non-Hangul lyric", "truncated file", "unknown extension", "DS phoneme durations"])
def test_bad_score_exits_2_with_one_line_and_writes_nothing(tiny_experiment, tmp_path, monkeypatch, capsys, case):
    # Importing the CLI applies its thread policy to os.environ (config/threads.py) and main() sets the
    # oneDNN cache size: keep both out of the environment of later tests' subprocesses.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    from inference import visinger

    path, message = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    argv = ["visinger.py", "--work_dir_root", str(tiny_experiment.work_dir_root), "--exp_name", tiny_experiment.exp_name,
            "--score", str(path), "--out", str(out / "song.wav"), "--dump", str(out / "song.json"), "--plot"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        run_main(visinger.main)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], lines
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------------------
# The editable render


@pytest.fixture(scope="module")
def dumped(singer, tmp_path_factory):
    """A UST song rendered with --dump: (folder, wav result, dump path)."""
    folder = tmp_path_factory.mktemp("dump")
    result = render_score(singer, write_ust_song(folder / "song.ust"), folder / "song.wav", dump=folder / "song.json").synthesis
    return folder, result, folder / "song.json"


def test_dump_has_the_documented_fields(dumped, singer):
    _, result, path = dumped
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "korean-visinger-render" and document["version"] == 1
    assert (document["sample_rate"], document["hop_size"]) == (singer.audio.sample_rate, singer.audio.hop_size)
    phrase = document["phrases"][0]
    assert {"trim_start", "trim_end", "tail_frames", "notes", "phonemes"} <= set(phrase)
    assert [n["lyric"] for n in phrase["notes"] if n["lyric"] != "SP"][:3] == ["가", "나", "-"]
    first_sung = next(p for p in phrase["phonemes"] if p["phone"] != "rest")
    assert first_sung["phone"] == "onset_g" and len(first_sung["f0_hz"]) == len(first_sung["voiced"]) == first_sung["frames"]
    rendered = sum(p["frames"] for ph in document["phrases"] for p in ph["phonemes"])
    trims = sum(ph["trim_start"] + ph["trim_end"] + ph["tail_frames"] for ph in document["phrases"])
    assert rendered - trims == len(result.f0_hz)  # the phrases tile the song


def test_dump_then_render_is_bit_identical(dumped, singer):
    folder, first, path = dumped
    again = render_score(singer, path, folder / "again.wav").synthesis
    assert np.array_equal(first.wav, again.wav)
    assert (folder / "again.wav").read_bytes() == (folder / "song.wav").read_bytes()
    assert [(n.pitch, n.lyric) for n in again.notes] == [(n.pitch, n.lyric) for n in first.notes]


def test_a_phoneme_given_more_frames_moves_what_follows(dumped, singer, tmp_path):
    _, first, path = dumped
    document = json.loads(path.read_text(encoding="utf-8"))
    phonemes = document["phrases"][0]["phonemes"]
    index = next(i for i, p in enumerate(phonemes) if p["phone"] == "nucleus_a")
    phonemes[index]["frames"] += 10  # its F0 curve is stretched to the new length
    edited = tmp_path / "longer.json"
    edited.write_text(json.dumps(document), encoding="utf-8")
    result = render_score(singer, edited, tmp_path / "longer.wav").synthesis
    hop = singer.audio.hop_size
    assert len(result.wav) == len(first.wav) + 10 * hop
    frame = hop / singer.audio.sample_rate
    sung_first = [n for n in first.notes if not n.is_rest]
    sung_edited = [n for n in result.notes if not n.is_rest]
    assert sung_edited[0].end == pytest.approx(sung_first[0].end + 10 * frame)
    assert sung_edited[-1].start == pytest.approx(sung_first[-1].start + 10 * frame)


def test_a_moved_note_with_its_f0_left_to_the_model(dumped, singer, tmp_path):
    _, first, path = dumped
    document = json.loads(path.read_text(encoding="utf-8"))
    phrase = document["phrases"][0]
    note = next(i for i, n in enumerate(phrase["notes"]) if n["lyric"] == "가")
    phrase["notes"][note]["pitch"] += 5
    for phoneme in phrase["phonemes"]:
        if phoneme["note"] == note:
            phoneme["f0_hz"] = None  # predicted again from the moved note
    edited = tmp_path / "moved.json"
    edited.write_text(json.dumps(document), encoding="utf-8")
    result = render_score(singer, edited, tmp_path / "moved.wav").synthesis
    assert len(result.wav) == len(first.wav) and not np.array_equal(result.wav, first.wav)
    assert [n.pitch for n in result.notes if n.lyric == "가"] == [n.pitch + 5 for n in first.notes if n.lyric == "가"]


def _flat_f0(document: dict, hz: float) -> dict:
    for phrase in document["phrases"]:
        for phoneme in phrase["phonemes"]:
            if phoneme["phone"] != "rest":
                phoneme["f0_hz"], phoneme["voiced"] = [hz] * phoneme["frames"], [1] * phoneme["frames"]
    return document


def test_an_edited_f0_curve_moves_the_f0_measured_on_the_audio_by_the_edit(singer, tiny_experiment, tmp_path):
    pitched = pitched_singer(singer, tiny_experiment.config)
    render_score(pitched, write_ust_song(tmp_path / "s.ust"), tmp_path / "s.wav", dump=tmp_path / "s.json")
    document = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    results = {}
    for name, hz in (("flat", 220.0), ("up", 220.0 * 2 ** (3 / 12))):
        edited = tmp_path / f"{name}.json"
        edited.write_text(json.dumps(_flat_f0(json.loads(json.dumps(document)), hz)), encoding="utf-8")
        results[name] = render_score(pitched, edited, tmp_path / f"{name}.wav").synthesis
    flat, up = results["flat"], results["up"]
    edited_frames = np.isclose(flat.f0_hz, 220.0)
    heard_flat, heard_up = measured(flat.wav, singer.audio, len(flat.f0_hz)), measured(up.wav, singer.audio, len(up.f0_hz))
    both = edited_frames & (heard_flat > 0) & (heard_up > 0)
    assert both.sum() > 0.5 * edited_frames.sum()
    assert abs(np.median(cents(heard_flat[both], 220.0))) < 20  # the audio sings what the file says
    assert np.median(cents(heard_up[both], heard_flat[both])) == pytest.approx(300, abs=10)  # and moves by the edit


def test_a_ds_f0_curve_is_sung(singer, tiny_experiment, tmp_path):
    pitched = pitched_singer(singer, tiny_experiment.config)
    curve = [0.0] * 10 + [330.0] * 80 + [0.0] * 10  # 1 s at 10 ms
    path = write_ds(tmp_path / "f0.ds", [ds_segment(0.5, [("C4", 0.5, 0), ("D4", 0.5, 0)], "가 나", f0=(0.01, curve))])
    result = render_score(pitched, path, tmp_path / "f0.wav").synthesis
    rate = singer.audio.sample_rate / singer.audio.hop_size
    inside = slice(int(0.7 * rate), int(1.3 * rate))
    assert np.allclose(result.f0_hz[inside], 330.0)
    heard = measured(result.wav, singer.audio, len(result.f0_hz))[inside]
    assert np.median(cents(heard[heard > 0], 330.0)) == pytest.approx(0, abs=20)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["phrases"][0]["phonemes"][1].update(f0_hz=[-5.0]), "f0_hz must be a list of finite numbers >= 0"),
        (lambda d: d["phrases"][0]["phonemes"][1].update(phone="onset_x"), "unknown phone 'onset_x'"),
        (lambda d: d["phrases"][0]["phonemes"][1].update(frames=-1), "frames is -1"),
        (lambda d: d["phrases"][0]["phonemes"][1].update(note=99), "note 99 does not exist"),
        (lambda d: d.update(hop_size=1), "render it with the model it was dumped from"),
        (lambda d: d.update(version=7), "version 7"),
    ],
)
def test_bad_render_file_edits(dumped, singer, tmp_path, edit, message):
    _, _, path = dumped
    document = json.loads(path.read_text(encoding="utf-8"))
    edit(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UserInputError, match=message):
        render_score(singer, bad, tmp_path / "bad.wav")
    assert not (tmp_path / "bad.wav").exists()


def test_render_file_refuses_score_options(dumped, singer, tmp_path):
    with pytest.raises(UserInputError, match="leave out --lyrics, --track and --key_shift"):
        render_score(singer, dumped[2], tmp_path / "x.wav", key_shift=2)


# ---------------------------------------------------------------------------------------------
# The plot


def test_plot_draws_hangul_with_the_packaged_font_the_measured_f0_and_the_in_tune_share(dumped, singer):
    from inference.plot import measured_f0, singing_figure

    _, result, _ = dumped
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # matplotlib warns "Glyph ... missing from font(s)"
        figure = singing_figure(result, singer.audio)
        figure.canvas.draw()
    roll = figure.axes[0]
    labels = {text.get_text(): text for text in roll.texts}
    assert {"가", "나", "다", "라"} <= set(labels)
    assert all(Path(labels[s].get_fontproperties().get_file()).name == "NanumGothic.ttf" for s in ("가", "라"))
    lines = {line.get_label(): line for line in roll.get_lines()}
    heard = measured_f0(result, singer.audio)
    measured_line = lines["F0 measured on the audio"].get_ydata()
    voiced = heard > 0
    assert np.allclose(measured_line[voiced], 69 + 12 * np.log2(heard[voiced] / 440.0))
    assert "in tune" in roll.get_title() and "%" in roll.get_title()
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_a_given_f0_is_cut_with_the_pieces_of_a_long_phrase(singer):
    """A phrase longer than `max_piece_seconds` is rendered in pieces: a given F0 (a dump's, a DS
    curve) must be cut with each piece's score, and sung over the whole phrase."""
    from inference.sung_file import with_song_f0
    from inference.synthesis import SingingSynthesizer, cut_pieces
    from preprocessor.score import Note

    a = singer.audio
    notes = [Note(0.0, 2.0, 60, "가")]
    renders = {}
    for name, piece_seconds in (("pieces", 0.5), ("whole", 100.0)):
        synth = SingingSynthesizer(singer.model, a.sample_rate, a.hop_size, max_piece_seconds=piece_seconds, piece_overlap_seconds=0.1, frontend=singer.frontend)
        plan = synth.plan(notes)
        plan = with_song_f0(plan, np.full(sum(plan.note_frames), 250.0, dtype=np.float32))
        n_pieces = len(cut_pieces(plan.phrases[0].frames, synth.max_piece_frames, synth.piece_overlap_frames))
        assert (n_pieces > 1) == (name == "pieces")
        renders[name] = synth.render(plan)
    for result in renders.values():
        assert np.allclose(result.f0_hz, 250.0)
    assert len(renders["pieces"].wav) == len(renders["whole"].wav) and np.abs(renders["pieces"].wav).max() > 0
