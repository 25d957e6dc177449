"""Your own data: the generic layouts (a folder of recordings with scores, DiffSinger's transcriptions.csv)
and several singers binarized into one store with speaker ids and per-speaker F0 statistics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from config.errors import UserInputError
from config.loader import load_config
from preprocessor.binarize import run_binarize
from preprocessor.binary_dataset import BinaryDataset
from preprocessor.folder_reader import list_any_recordings, read_transcriptions, write_transcriptions
from preprocessor.preprocess import run_preprocess
from preprocessor.settings import data_pipeline_settings
from preprocessor.text.phone_set import phone_to_id
from tests.audio_factory import sung_phrase
from tests.inference.midi_factory import melody, write_melody

RATE = 16000
BASE = Path(__file__).resolve().parents[2] / "config" / "datasets" / "svs" / "base.yaml"
# rest, 나 (G4), 빈 over A4 and B4 (a melisma: note_slur 1), rest. DiffSinger's word convention: a word
# starts at its vowel and ends with the next word's onset (ph_num 2 2 2 1).
ROW = {
    "ph_seq": "SP onset_n nucleus_a onset_b nucleus_i coda_n SP",
    "ph_dur": "0.25 0.05 0.35 0.05 0.7 0.05 0.3",
    "ph_num": "2 2 2 1",
    "note_seq": "rest G4 A4 B4 rest",
    "note_dur": "0.3 0.4 0.4 0.4 0.25",
    "note_slur": "0 0 0 1 0",
}
SUNG_PHONES = ["onset_n", "nucleus_a", "onset_b", "nucleus_i", "nucleus_i", "coda_n"]  # the melisma holds the vowel


def recording(pitches: list[int], seed: int) -> np.ndarray:
    """0.3 s of room noise, one 0.4 s tone per pitch, 0.25 s of noise: the timing of `ROW`."""
    rng = np.random.default_rng(seed)
    noise = lambda seconds: rng.normal(0.0, 1e-3, int(seconds * RATE)).astype(np.float32)  # noqa: E731
    return np.concatenate([noise(0.3), sung_phrase(pitches, RATE, gap_seconds=0.0, seed=seed), noise(0.25)])


def write_diffsinger(root: Path, pitches=(67, 69, 71), names=("h1", "h2")) -> Path:
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        sf.write(root / "wavs" / f"{name}.wav", recording(list(pitches), index), RATE)
    write_transcriptions(root / "transcriptions.csv", [{"name": name, **ROW} for name in names])
    return root


def write_folder(root: Path, pitches=(55, 57, 59), names=("l1", "l2")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        sf.write(root / f"{name}.wav", recording(list(pitches), 10 + index), RATE)
        notes = melody((pitches[0], "나"), (pitches[1], "빈"), (pitches[2], "-"), start=288, length=384)  # 120 bpm: 0.3 s, 0.4 s
        write_melody(root / f"{name}.mid", notes)
    return root


def settings_for(tmp: Path, dataset: str):
    config = tmp / "dataset.yaml"
    config.write_text(
        f"base_config: {BASE}\naudio: {{sample_rate: {RATE}, hop_size: 160, win_size: 640, n_fft: 1024, n_mels: 40, fmax: 8000}}\n"
        f"preprocess: {{num_workers: 1}}\ndataset:\n{dataset}",
        encoding="utf-8",
    )
    return data_pipeline_settings(load_config(config), str(config))


@pytest.fixture(scope="module")
def two_singers(tmp_path_factory):
    """A soprano-ish voice in DiffSinger's layout and a voice an octave lower in the folder layout, in one store."""
    tmp = tmp_path_factory.mktemp("own_data")
    write_diffsinger(tmp / "high")
    write_folder(tmp / "low")
    settings = settings_for(tmp, (
        f"  name: two\n  processed_dir: {tmp}/processed\n  binary_dir: {tmp}/binary\n  sources:\n"
        f"    - {{speaker: high, raw_data_dir: {tmp}/high, layout: diffsinger, valid_songs: [h2]}}\n"
        f"    - {{speaker: low, raw_data_dir: {tmp}/low, layout: folder, valid_songs: [l2]}}\n"
    ))  # fmt: skip
    run_preprocess(settings, show_progress=False)
    summary = run_binarize(settings, show_progress=False)
    return tmp, summary


def test_several_singers_share_one_store_with_speaker_ids_and_their_own_f0_statistics(two_singers):
    tmp, summary = two_singers
    train = BinaryDataset(tmp / "binary" / "train")
    assert train.attributes["speakers"] == ["high", "low"]
    ids = {train[i]["name"].split("_")[0]: int(train[i]["speaker_id"]) for i in range(len(train))}
    assert ids == {"high": 0, "low": 1}
    stats = json.loads((tmp / "binary" / "f0_stats.json").read_text(encoding="utf-8"))
    assert stats["speakers"] == ["high", "low"]
    high, low = stats["per_speaker"]["high"], stats["per_speaker"]["low"]
    # A4 (440 Hz) is the middle note of the high voice, A3 of the low one; the F0 is extracted from the audio.
    assert abs(1200 * np.log2(high["f0_median_hz"] / 440.0)) < 50 and abs(1200 * np.log2(low["f0_median_hz"] / 220.0)) < 50
    assert (high["note_pitch_min"], high["note_pitch_max"], low["note_pitch_min"], low["note_pitch_max"]) == (67, 71, 55, 59)
    assert summary.speaker_stats["low"]["id"] == 1
    assert (tmp / "processed" / "high" / "metadata.jsonl").is_file() and (tmp / "processed" / "low" / "metadata.jsonl").is_file()


def test_a_transcriptions_csv_round_trips_to_the_phonemes_it_names(two_singers):
    tmp, _ = two_singers
    (row,) = [r for r in read_transcriptions(tmp / "high") if r.name == "h1"]
    notes = row.recording.notes
    assert [(n.start, n.end, n.pitch, n.lyric) for n in notes] == [(0.3, 0.7, 67, "나"), (0.7, 1.1, 69, "빈"), (1.1, 1.5, 71, "-")]
    assert [p.is_slur for p in row.recording.phonemes] == [False, False, True]
    train = BinaryDataset(tmp / "binary" / "train")
    (item,) = [train[i] for i in range(len(train)) if train[i]["name"].startswith("high_h1")]
    sung = [int(p) for p in item["phone_ids"] if p != phone_to_id("SP")]
    from preprocessor.folder_reader import _PHONE_BY_NAME

    assert sung == [phone_to_id(_PHONE_BY_NAME[name]) for name in SUNG_PHONES]
    assert sorted(set(int(p) for p in item["note_pitch"]) - {0}) == [67, 69, 71]
    # Written back and read again: the same recording.
    write_transcriptions(tmp / "copy.csv", [{"name": "h1", **ROW}])
    (tmp / "again" / "wavs").mkdir(parents=True)
    (tmp / "copy.csv").rename(tmp / "again" / "transcriptions.csv")
    (tmp / "again" / "wavs" / "h1.wav").write_bytes((tmp / "high" / "wavs" / "h1.wav").read_bytes())
    assert read_transcriptions(tmp / "again")[0].recording.notes == notes


TRANSCRIPTION_FAULTS = {
    "unknown phoneme": ({"ph_seq": ROW["ph_seq"].replace("onset_b", "onset_zz")}, ["item 4", "'onset_zz'", "phone_set.json"]),
    "length mismatch": ({"ph_dur": "0.25 0.05 0.35 0.05 0.7 0.35"}, ["7 phonemes", "6 durations"]),
    "ph_num not adding up": ({"ph_num": "2 2 2 2"}, ["ph_num adds up to 8", "7 phonemes"]),
    "bad note name": ({"note_seq": "rest G4 H4 B4 rest"}, ["note_seq item 3", "'H4'"]),
    "durations not summing": ({"note_dur": "0.3 0.4 0.4 0.4 0.75"}, ["ph_dur adds up to 1.750", "note_dur to 2.250"]),
    "notes and syllables": ({"note_slur": "0 0 0 0 0", "ph_num": "2 2 2 1"}, ["ph_num has 4 words", "5 notes"]),
    "rest on a syllable": ({"note_seq": "G4 G4 A4 B4 rest"}, ["note_seq item 1", "rest notes take SP/AP"]),
    "syllable out of place": ({"ph_seq": "SP onset_n onset_b nucleus_a nucleus_i coda_n SP"}, ["item 3 (onset_b)", "out of place"]),
}


@pytest.mark.parametrize("fault", sorted(TRANSCRIPTION_FAULTS))
def test_every_transcription_mismatch_is_one_line_naming_the_file_and_the_row(fault, tmp_path):
    change, fragments = TRANSCRIPTION_FAULTS[fault]
    (tmp_path / "wavs").mkdir()
    for name in ("ok", "bad"):
        sf.write(tmp_path / "wavs" / f"{name}.wav", np.zeros(RATE * 2, np.float32), RATE)
    write_transcriptions(tmp_path / "transcriptions.csv", [{"name": "ok", **ROW}, {"name": "bad", **ROW, **change}])
    with pytest.raises(UserInputError) as error:
        read_transcriptions(tmp_path)
    message = str(error.value)
    assert "\n" not in message and "transcriptions.csv: line 3 (bad)" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_a_missing_column_or_recording_is_one_line(tmp_path):
    (tmp_path / "wavs").mkdir()
    write_transcriptions(tmp_path / "transcriptions.csv", [{"name": "gone", **ROW}])
    with pytest.raises(UserInputError, match=r"line 2 \(gone\): .*wavs/gone.wav not found"):
        read_transcriptions(tmp_path)
    (tmp_path / "transcriptions.csv").write_text("name,ph_seq,ph_dur\nx,SP,1\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="lacks the columns ph_num, note_seq, note_dur"):
        read_transcriptions(tmp_path)


def test_folder_layout_mismatches_are_one_line_and_nothing_is_written(tmp_path):
    raw = write_folder(tmp_path / "raw", names=("a",))
    (raw / "b.wav").write_bytes((raw / "a.wav").read_bytes())
    with pytest.raises(UserInputError, match=r"b.wav: no score beside it; add b.mid"):
        list_any_recordings(raw, "folder")
    (raw / "b.wav").unlink()
    (raw / "c.ust").write_text("[#SETTING]\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"c.ust: no recording c.wav"):
        list_any_recordings(raw, "folder")
    (raw / "a.ust").write_bytes((raw / "c.ust").read_bytes())
    (raw / "c.ust").unlink()
    settings = settings_for(tmp_path, f"  name: f\n  raw_data_dir: {raw}\n  speaker: me\n  layout: folder\n  processed_dir: {tmp_path}/processed\n  binary_dir: {tmp_path}/binary\n")
    with pytest.raises(UserInputError, match=r"a.wav: two scores for it \(a.mid, a.ust\)"):
        run_preprocess(settings, show_progress=False)
    assert not (tmp_path / "processed" / "metadata.jsonl").exists()


def test_speaker_names_and_sources_are_checked_by_the_config(tmp_path):
    bad = {
        "a mix character in a name": "  speaker: 'a:b'\n  raw_data_dir: x\n",
        "two sources of one name": "  sources: [{speaker: a, raw_data_dir: x}, {speaker: a, raw_data_dir: y}]\n",
        "sources and a top-level singer": "  speaker: a\n  raw_data_dir: x\n  sources: [{speaker: b, raw_data_dir: y}]\n",
    }
    for reason, dataset in bad.items():
        with pytest.raises(UserInputError) as error:
            settings_for(tmp_path, f"  name: d\n  processed_dir: p\n  binary_dir: b\n{dataset}")
        assert "\n" not in str(error.value) and "dataset" in str(error.value), (reason, str(error.value))
