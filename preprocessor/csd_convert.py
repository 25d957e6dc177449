"""Assemble a CSD tree from recordings of the early release, in either layout.

The early release (`Korean/{wav,mid,txt}/<song>_kr_<key>.*`) is what `../shared/data/csd_early`
holds. `link_early_tree` links its files into an early-layout tree; `convert_to_final_tree` writes
the final-release layout (`korean/{wav,mid,csv,lyric}/krNNN{a,b}.*`), with the csv made from the
MIDI notes and the lyric from the Hangul text. Files are symlinked, never copied (the recordings'
licence forbids derivatives being shipped; a link keeps them where they are).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

from preprocessor.scores.midi_reader import read_score
from preprocessor.atomic_io import atomic_path


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)


def link_early_tree(early_dir: Path, out_dir: Path, stems: Sequence[str]) -> Path:
    """`out_dir/Korean/{wav,mid,txt}/<stem>.*` linked to `early_dir/{wav,mid,txt}`."""
    for stem in stems:
        for sub in ("wav", "mid", "txt"):
            _link(early_dir / sub / f"{stem}.{sub}", out_dir / "Korean" / sub / f"{stem}.{sub}")
    return out_dir


def convert_to_final_tree(early_dir: Path, out_dir: Path, stems_to_ids: dict[str, str]) -> Path:
    """`out_dir/korean/...` in the final-release layout, e.g. `{"headshoulder_kr_0u": "kr024a"}`."""
    for stem, recording_id in stems_to_ids.items():
        midi, text = early_dir / "mid" / f"{stem}.mid", early_dir / "txt" / f"{stem}.txt"
        score = read_score(midi, lyrics_path=text)
        with atomic_path(out_dir / "korean/csv" / f"{recording_id}.csv") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["start", "end", "pitch", "syllable"])
                for note in score.notes:
                    if not note.is_rest:
                        writer.writerow([f"{note.start:.6f}", f"{note.end:.6f}", note.pitch, note.lyric])
        with atomic_path(out_dir / "korean/lyric" / f"{recording_id}.txt") as tmp:
            tmp.write_text(text.read_text(encoding="utf-8"), encoding="utf-8")
        _link(early_dir / "wav" / f"{stem}.wav", out_dir / "korean/wav" / f"{recording_id}.wav")
        _link(midi, out_dir / "korean/mid" / f"{recording_id}.mid")
    return out_dir
