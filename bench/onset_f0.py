"""How often the predicted F0 leaves the note just after a note onset, on scores outside the training songs.

    python bench/onset_f0.py --ckpt checkpoints/real_kr024 --songs angel_kr_0u bingo_kr_1u ... [--json out.json]

Each score of `../shared/data/csd_early` (MIDI + its Hangul `txt` as `--lyrics`) is sung with the
model (`inference.api.Singer`, seed 0); for every sung note, the voiced frames of the F0 in the
first `--window_ms` after its onset (and inside the note) are compared with the note's pitch, for
the F0 the model predicted ("predicted") and the F0 Praat measures on the rendered audio
("measured", what the `--plot` picture draws dashed). An onset "leaves the note" when any of them is more than `--cents` away. Printed per song and
in all: onsets, the share that leave the note, the share that leave it upwards, and the median and
90th percentile of the largest deviation per onset (cents, signed by its direction).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402

from bench.machine import machine_line  # noqa: E402

EARLY_DIR = REPO_ROOT.parent / "shared" / "data" / "csd_early"
# Songs of the early release that are not kr024 (headshoulder), one key each.
DEFAULT_SONGS = ("angel_kr_0u", "bingo_kr_1u", "brother_kr_0u", "candy_kr_0u", "dew_kr_0u", "frog_kr_2u", "lamb_kr_2d", "sea_kr_1d")


def onset_deviations(f0_hz: np.ndarray, note_pitches: list[int], note_frames: list[int], window_frames: int) -> list[float]:
    """Per sung note with a voiced frame in its first `window_frames`: the signed cents of the frame farthest from the note."""
    out = []
    start = 0
    for pitch, frames in zip(note_pitches, note_frames):
        end = start + frames
        if pitch > 0:
            window = f0_hz[start : min(end, start + window_frames)]
            voiced = window[window > 0]
            if len(voiced):
                note_hz = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
                cents = 1200.0 * np.log2(voiced / note_hz)
                out.append(float(cents[np.argmax(np.abs(cents))]))
        start = end
    return out


def summary(deviations: list[float], cents: float) -> dict[str, float]:
    d = np.asarray(deviations, dtype=np.float64)
    if len(d) == 0:
        return {"onsets": 0}
    return {
        "onsets": int(len(d)),
        "leave_share": float(np.mean(np.abs(d) > cents)),
        "leave_up_share": float(np.mean(d > cents)),
        "median_cents": float(np.median(d)),
        "p90_abs_cents": float(np.percentile(np.abs(d), 90)),
    }


def line(label: str, s: dict[str, float]) -> str:
    return (f"{label:30s} onsets {s['onsets']:4d}  leave {s.get('leave_share', 0):6.1%}  up {s.get('leave_up_share', 0):6.1%}  "
            f"median {s.get('median_cents', 0):+7.0f} c  p90 |dev| {s.get('p90_abs_cents', 0):6.0f} c")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, required=True, help="experiment folder, checkpoint or pack")
    parser.add_argument("--songs", nargs="+", default=list(DEFAULT_SONGS), help="stems of csd_early scores (mid + txt)")
    parser.add_argument("--early_dir", type=Path, default=EARLY_DIR)
    parser.add_argument("--window_ms", type=float, default=100.0)
    parser.add_argument("--cents", type=float, default=100.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--energy_db", type=float, default=0.0, help="energy offset to sing with (a model with expressive controls)")
    args = parser.parse_args()

    import torch

    from inference.api import Singer

    torch.set_num_threads(1)
    singer = Singer.load(args.ckpt, device="cpu")
    window = max(1, round(args.window_ms / 1000 * singer.sample_rate / singer.audio.hop_size))
    print(machine_line())
    print(f"model {singer.source}; onset window {window} frames ({args.window_ms:.0f} ms), threshold {args.cents:.0f} cents")
    from inference.plot import measured_f0

    every: dict[str, list[float]] = {"predicted": [], "measured": []}
    per_song: dict[str, dict[str, dict[str, float]]] = {}
    for stem in args.songs:
        sung = singer.sing(args.early_dir / "mid" / f"{stem}.mid", args.early_dir / "txt" / f"{stem}.txt", energy_db=args.energy_db)
        result = sung.synthesis
        pitches, frames = [n.pitch for n in result.notes], list(result.note_frames)
        per_song[stem] = {}
        for source, f0 in (("predicted", result.f0_hz), ("measured", measured_f0(result, singer.audio))):
            deviations = onset_deviations(f0, pitches, frames, window)
            per_song[stem][source] = summary(deviations, args.cents)
            every[source] += deviations
            print(line(f"{stem} {source}", per_song[stem][source]))
    total = {source: summary(values, args.cents) for source, values in every.items()}
    for source in total:
        print(line(f"all {source}", total[source]))
    if args.json:
        args.json.write_text(json.dumps({"all": total, "songs": per_song}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
