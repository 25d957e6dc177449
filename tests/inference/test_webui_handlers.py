"""The web page's handlers without a browser: score view, lyric edits, renders, errors, concurrency, files."""
from __future__ import annotations

import html
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from config.errors import UserInputError, error_line
from inference.api import Singer
from inference.render import render_score
from inference.webui import PageHandlers, build_parser, lyrics_column, model_sources
from inference.webui_handlers import LYRICS_COLUMN, TABLE_HEADERS, WebSinging, phrases_of
from preprocessor.scores.midi_reader import read_score
from preprocessor.text.korean import is_hangul_syllable
from tests.inference.conftest import REPO_ROOT, SANCHAEK, read_pcm
from tests.inference.midi_factory import melody, write_melody

BYEOL = REPO_ROOT / "data" / "examples" / "byeol.mid"


@pytest.fixture(scope="module")
def singer(tiny_experiment):
    return Singer.load(tiny_experiment.checkpoint, device="cpu")


@pytest.fixture()
def singing(singer, frontend, tmp_path) -> WebSinging:
    return WebSinging({"tiny": singer}, tmp_path / "work", frontend=frontend)


@pytest.fixture(scope="module")
def short_song(tmp_path_factory) -> Path:
    """Three notes, 1.5 s: for the tests that render several times."""
    return write_melody(tmp_path_factory.mktemp("short") / "short.mid", melody((60, "가"), (62, "나"), (64, "다")))


@pytest.fixture()
def handlers(singing) -> PageHandlers:
    return PageHandlers(singing, [SANCHAEK, BYEOL])


def edited(lines: list[str], number: int, text: str) -> list[str]:
    return [text if i == number - 1 else line for i, line in enumerate(lines)]


def test_notes_are_grouped_by_phrase_with_their_hangul_lyrics(singing):
    view = singing.open_score(SANCHAEK)
    score = read_score(SANCHAEK)
    sung = [i for i, note in enumerate(score.notes) if not note.is_rest]
    assert [i for phrase in view.phrases for i in phrase.note_indices] == sung  # every sung note once, in order
    assert len(view.phrases) > 1
    for phrase in view.phrases:
        assert len(phrase.lyrics) == len(phrase.note_indices) == len(phrase.pitches)  # one syllable per note
        assert all(is_hangul_syllable(c) or c == "-" for c in phrase.lyrics)
        # A phrase is a run of notes with no rest inside, and a rest separates it from the next one.
        assert list(phrase.note_indices) == list(range(phrase.note_indices[0], phrase.note_indices[-1] + 1))
    for before, after in zip(view.phrases, view.phrases[1:]):
        assert score.notes[before.note_indices[-1] + 1].is_rest
    rows = view.rows()
    assert len(rows[0]) == len(TABLE_HEADERS) and rows[0][LYRICS_COLUMN] == view.phrases[0].lyrics
    assert rows[1][1] == score.locations[view.phrases[1].note_indices[0]]  # bar:beat of the phrase's first note


def test_phrase_marks_of_a_lyrics_file_are_the_phrases(singing, tmp_path):
    midi = write_melody(tmp_path / "legato.mid", melody(*[(60 + i, None) for i in range(6)]))  # no rest at all
    (tmp_path / "legato.txt").write_text("가나다\n라마바\n", encoding="utf-8")
    score = read_score(midi, lyrics_path=tmp_path / "legato.txt")
    assert [p.lyrics for p in phrases_of(score)] == ["가나다", "라마바"]


def test_a_bad_file_shows_the_cli_line_without_the_server_paths(handlers, singing):
    upload = singing.work_dir / "gradio" / "0123abcd" / "broken.mid"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"not a midi file at all")
    with pytest.raises(UserInputError) as cli_error:
        read_score(upload)  # what the CLI meets on this file
    view, rows, status = handlers.open_upload(str(upload))
    assert view is None and rows == []
    expected = error_line(cli_error.value).replace(str(upload), upload.name)
    assert f'<p class="error">{expected}</p>' == html.unescape(status)
    assert str(singing.work_dir) not in status and "broken.mid" in status


def test_a_file_of_another_format_names_the_formats_read(handlers, tmp_path):
    other = tmp_path / "song.pdf"
    other.write_bytes(b"%PDF")
    _, _, status = handlers.open_upload(str(other))
    assert "error: " in status and "song.pdf" in status and ".mid" in status


def test_edited_lyrics_are_sung(singing):
    view = singing.open_score(SANCHAEK)
    first = view.phrases[0]
    new_text = "가" * len(first.note_indices)
    changed = singing.with_lyrics(view, edited([p.lyrics for p in view.phrases], 1, new_text))
    assert changed.lyrics_path is not None and changed.lyrics_path.is_relative_to(singing.work_dir)
    assert changed.phrases[0].lyrics == new_text and changed.phrases[1:] == view.phrases[1:]
    assert [changed.score.notes[i].lyric for i in first.note_indices] == list(new_text)
    assert [n.pitch for n in changed.score.notes] == [n.pitch for n in view.score.notes]
    assert singing.with_lyrics(changed, [p.lyrics for p in changed.phrases]) is changed  # no change, no new file
    original = read_pcm(singing.render(view, "tiny", plot=False).wav_path)[0]
    sung = read_pcm(singing.render(changed, "tiny", plot=False).wav_path)[0]
    assert len(sung) == len(original) and not np.array_equal(sung, original)


def test_a_wrong_syllable_count_is_the_cli_message_and_keeps_the_view(handlers, singing, tmp_path):
    view, rows, _ = handlers.open_upload(str(SANCHAEK))
    lines = [p.lyrics for p in view.phrases]
    bad = edited(lines, 2, lines[1] + "가")
    # The CLI with the same lyrics as a file: `--lyrics sanchaek.txt`.
    (tmp_path / "sanchaek.txt").write_text("\n".join(bad) + "\n", encoding="utf-8")
    with pytest.raises(UserInputError) as cli_error:
        read_score(SANCHAEK, lyrics_path=tmp_path / "sanchaek.txt", track=view.score.melody_track)
    table = [row[:LYRICS_COLUMN] + [text] for row, text in zip(rows, bad)]
    kept, shown, status = handlers.check_lyrics(view, table)
    assert kept is view and lyrics_column(shown) == bad  # the user's text stays in the table to be fixed
    expected = error_line(cli_error.value).replace(str(tmp_path) + "/", "")
    assert expected.startswith("error: sanchaek.txt: ") and "line 2" in expected
    assert expected in html.unescape(status)


def test_a_lyric_that_is_not_hangul_is_the_frontends_message(handlers):
    view, rows, _ = handlers.open_upload(str(SANCHAEK))
    n = len(view.phrases[0].note_indices)
    table = [row[:LYRICS_COLUMN] + [("a" * n) if number == 0 else row[LYRICS_COLUMN]] for number, row in enumerate(rows)]
    kept, _, status = handlers.check_lyrics(view, table)
    assert kept is view
    assert status.startswith(f'<p class="error">error: {SANCHAEK}: note 0 ') and "not a Hangul syllable" in status


def test_a_render_is_the_clis_render(singing, singer, tmp_path):
    view = singing.open_score(BYEOL)
    rendering = singing.render(view, "tiny", key_shift=2, noise_scale=0.3, seed=0)
    assert rendering.wav_path.is_relative_to(singing.work_dir) and rendering.plot_path.is_relative_to(singing.work_dir)
    assert rendering.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples, rate, subtype = read_pcm(rendering.wav_path)
    hop = singer.audio.hop_size
    assert rate == singer.audio.sample_rate and subtype == "PCM_16"
    assert len(samples) == round(view.score.total_seconds * rate / hop) * hop
    assert rendering.seconds == pytest.approx(len(samples) / rate)
    render_score(singer, BYEOL, tmp_path / "cli.wav", key_shift=2, noise_scale=0.3, seed=0)
    assert np.array_equal(read_pcm(tmp_path / "cli.wav")[0], samples)  # the CLI's path, the same samples
    assert rendering.in_tune.frames > 0 and 0.0 <= rendering.in_tune.in_tune_share <= 1.0
    assert "in tune" in rendering.summary()


def test_render_errors_are_shown_and_the_next_render_works(handlers):
    view, rows, _ = handlers.open_upload(str(BYEOL))
    out = handlers.render(view, rows, "tiny", 200, 0.667, 0)
    assert out[2] is None and "error: " in out[-1] and "key_shift" in out[-1]  # pitch past MIDI 127: the CLI's line
    out = handlers.render(view, rows, "tiny", 0, 0.667, 3)
    assert out[2] is None and "--speaker 3" in out[-1]
    out = handlers.render(None, [], "tiny", 0, 0.667, 0)
    assert out[2] is None and "no score yet" in out[-1]
    view, rows, audio, wav, plot, tuning, status = handlers.render(view, rows, "tiny", 0, 0.667, 0)
    assert Path(audio).is_file() and wav == audio and Path(plot).is_file() and "sang byeol.mid" in status
    assert sf.info(wav).duration == pytest.approx(view.score.total_seconds, abs=0.02)


def test_two_renders_at_once_both_finish_as_alone(singing, short_song):
    view = singing.open_score(short_song)
    alone = {shift: read_pcm(singing.render(view, "tiny", key_shift=shift, plot=False).wav_path)[0] for shift in (0, 3)}
    results, errors = {}, []
    start = threading.Barrier(2)

    def render(shift: int) -> None:
        try:
            start.wait()
            results[shift] = read_pcm(singing.render(view, "tiny", key_shift=shift).wav_path)[0]
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=render, args=(shift,)) for shift in (0, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for shift, samples in alone.items():
        assert np.array_equal(results[shift], samples)


def test_old_renders_are_deleted_and_everything_stays_in_the_work_dir(singer, frontend, tmp_path, short_song):
    singing = WebSinging({"tiny": singer}, tmp_path / "work", frontend=frontend, keep_renders=1)
    view = singing.open_score(short_song)
    first = singing.render(view, "tiny")
    second = singing.render(view, "tiny", plot=False)
    assert not first.wav_path.exists() and not first.plot_path.exists() and second.wav_path.is_file() and second.plot_path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_the_server_binds_to_localhost_unless_told():
    args = build_parser().parse_args(["--exp_name", "a"])
    assert args.host == "127.0.0.1"
    assert build_parser().parse_args(["--exp_name", "a", "--host", "0.0.0.0"]).host == "0.0.0.0"


def test_several_models_get_unique_names():
    args = build_parser().parse_args(["--exp_name", "demo", "--ckpt", "x/demo.pt", "--ckpt", "y/demo.pt"])
    assert list(model_sources(args)) == ["demo", "x/demo", "y/demo"]
    args = build_parser().parse_args(["--ckpt", "x/demo.pt", "--ckpt", "x/demo.pt"])
    assert list(model_sources(args)) == ["x/demo", "x/demo (2)"]
    with pytest.raises(UserInputError, match="no model"):
        model_sources(build_parser().parse_args([]))


def test_a_score_of_another_format_is_shown_edited_and_sung(singing, tmp_path):
    from tests.score_files import write_ustx_song

    view = singing.open_score(write_ustx_song(tmp_path / "song.ustx"))
    assert [p.lyrics for p in view.phrases] == ["가나-", "다라"]
    changed = singing.with_lyrics(view, ["가나-", "마바"])
    assert [p.lyrics for p in changed.phrases] == ["가나-", "마바"]
    assert [n.pitch for n in changed.score.notes] == [n.pitch for n in view.score.notes]
    with pytest.raises(UserInputError) as error:
        singing.with_lyrics(view, ["가나-", "마바사"])
    assert "line 2" in str(error.value) and "3 syllables but phrase 2 of song.ustx has 2 notes" in str(error.value)
    rendering = singing.render(changed, "tiny", plot=False)
    assert sf.info(rendering.wav_path).duration == pytest.approx(view.score.total_seconds, abs=0.02)


def test_a_multi_speaker_model_and_a_second_model_are_offered(singer, frontend, tiny_experiment, tmp_path, short_song):
    from tests.inference.conftest import tiny_config, tiny_generator, write_runner_checkpoint

    config = tiny_config(tiny_experiment.binary_dir, "model.n_speakers=2,model.gin_channels=8")
    checkpoint = write_runner_checkpoint(tmp_path / "duet" / "model_ckpt_steps_1.pt", config, {"generator": tiny_generator(config, seed=1).state_dict()})
    duet = Singer.load(checkpoint, device="cpu")
    singing = WebSinging({"tiny": singer, "duet": duet}, tmp_path / "work", frontend=frontend)
    handlers = PageHandlers(singing, [])
    assert singing.model_names == ["tiny", "duet"]
    # The menu offers the model's speaker names (an unnamed model's are its ids), values as --speaker takes them.
    assert singing.speakers("duet") == duet.speakers == ("0", "1")
    update = handlers.speaker_choices("duet")
    assert update["visible"] is True and update["choices"] == [("0", "0"), ("1", "1")] and update["value"] == "0"
    assert handlers.speaker_choices("tiny")["visible"] is False
    view = singing.open_score(short_song)
    voices = [read_pcm(singing.render(view, "duet", speaker=s, plot=False).wav_path)[0] for s in (0, 1)]
    assert len(voices[0]) == len(voices[1]) and not np.array_equal(*voices)  # the speaker reaches the model
    rows = view.rows()
    # What the menu hands the handler (a name, an id as text, a typed mix) reaches the model as --speaker would.
    by_name = handlers.render(view, rows, "duet", 0, 0.667, "1")
    assert np.array_equal(read_pcm(by_name[3])[0], voices[1])
    mixed = handlers.render(view, rows, "duet", 0, 0.667, " 0:0.5,1:0.5 ")
    mix = read_pcm(mixed[3])[0]
    assert len(mix) == len(voices[0]) and not np.array_equal(mix, voices[0]) and not np.array_equal(mix, voices[1])
    assert "--speaker 2" in handlers.render(view, rows, "duet", 0, 0.667, 2)[-1]
    assert "unknown speaker 'alto'" in html.unescape(handlers.render(view, rows, "duet", 0, 0.667, "alto")[-1])
    assert np.array_equal(read_pcm(handlers.render(view, rows, "duet", 0, 0.667, None)[3])[0], voices[0])  # empty: speaker 0
    assert "model 'other': not loaded" in html.unescape(handlers.render(view, rows, "other", 0, 0.667, 0)[-1])


def test_the_speaker_menu_labels_names_with_their_ids():
    from inference.webui_handlers import page_speaker, speaker_choices

    assert speaker_choices(("demo", "demo_low")) == [("demo (0)", "demo"), ("demo_low (1)", "demo_low")]
    assert speaker_choices(("0", "1")) == [("0", "0"), ("1", "1")]
    assert page_speaker(None) == 0 and page_speaker("  ") == 0 and page_speaker(1) == 1 and page_speaker(" demo_low ") == "demo_low"
