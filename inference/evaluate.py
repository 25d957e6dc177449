"""Objective evaluation of generated singing against reference recordings.

    python inference/evaluate.py --ref data/processed/csd/wav --gen renders/
    python inference/evaluate.py --ref REF_DIR --gen GEN_DIR --config config/models/visinger.yaml
    python inference/evaluate.py --ref REF_DIR --gen GEN_DIR --sample_rate 24000 --hop_size 300 --f0_method pyin

Wavs are paired by file name (``GEN_DIR/x.wav`` with ``REF_DIR/x.wav``); names found on one side
only are listed as a warning and skipped. Both wavs are loaded mono at ``--sample_rate``. Per pair:
MCD (dB, DTW-aligned), log-F0 RMSE (cents), semitone accuracy, V/UV error (definitions in
`inference/metrics.py`). Writes ``GEN_DIR/metrics.json``
(``{"items": [{"name": ..., metric: value}], "mean": {...}, "settings": {...}, "unpaired": {...}}``,
NaN written as null) and prints a markdown table. Audio settings come from, in increasing priority:
the built-in defaults, the ``audio:`` section of ``--config``, the flags.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

import numpy as np  # noqa: E402

from config.errors import UserInputError, run_cli  # noqa: E402
from config.loader import config_section, load_config  # noqa: E402
from inference.metrics import MCDSettings, evaluate_pair, summarize  # noqa: E402
from preprocessor.audio import F0_METHODS, AudioSettings, load_wav  # noqa: E402
from preprocessor.atomic_io import write_text_atomic  # noqa: E402

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("inference.evaluate")

METRICS_FILE = "metrics.json"
# Table columns: (metric key, header, shown as a percentage).
TABLE_COLUMNS = (
    ("mcd_db", "MCD (dB)", False),
    ("f0_rmse_cents", "F0 RMSE (cents)", False),
    ("semitone_accuracy", "semitone acc. (%)", True),
    ("vuv_error", "V/UV error (%)", True),
    ("in_tune_share", "in tune (%)", True),
)
UNPAIRED_LISTED = 10  # names shown in the warning; the rest are counted


def _wavs_by_name(folder: Path, flag: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserInputError(f"{folder}: {flag} folder not found; pass a folder of .wav files")
    return {path.name: path for path in sorted(folder.iterdir()) if path.is_file() and path.suffix.lower() == ".wav"}


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:UNPAIRED_LISTED])
    return shown + (f" and {len(names) - UNPAIRED_LISTED} more" if len(names) > UNPAIRED_LISTED else "")


def json_safe(value: Any) -> Any:
    """NaN / inf become null: metrics.json stays valid JSON (``json`` would write a bare NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def evaluate_folders(
    ref_dir: Path | str,
    gen_dir: Path | str,
    sample_rate: int = 24000,
    hop_size: int = 300,
    f0_min: float = 50.0,
    f0_max: float = 1100.0,
    f0_method: str = "parselmouth",
    mcd_settings: MCDSettings = MCDSettings(),
    score_pitch_frames: Mapping[str, np.ndarray] | None = None,
    write_json: bool = True,
) -> dict[str, Any]:
    """Evaluate every ``gen_dir/*.wav`` that has a same-named ``ref_dir/*.wav``.

    score_pitch_frames: optional per-item MIDI pitch per ``hop_size`` frame (0 = rest), keyed by the
    wav's stem, for ``in_tune_share``. Returns ``{"items": [{"name": stem, <SingingMetrics fields>}],
    "mean": summarize(...), "settings": {...}, "unpaired": {"ref_only": [...], "gen_only": [...]}}``
    with NaN kept as float NaN; with ``write_json`` the same goes to ``gen_dir/metrics.json``
    (atomically, NaN as null). Raises `UserInputError` when a folder is missing or no pair exists.
    """
    ref_dir, gen_dir = Path(ref_dir), Path(gen_dir)
    _validate_settings(sample_rate, hop_size, f0_min, f0_max, f0_method)
    refs = _wavs_by_name(ref_dir, "--ref")
    gens = _wavs_by_name(gen_dir, "--gen")
    names = sorted(set(refs) & set(gens))
    ref_only = sorted(set(refs) - set(gens))
    gen_only = sorted(set(gens) - set(refs))
    if not names:
        raise UserInputError(
            f"{gen_dir}: no .wav file shares its name with one in {ref_dir} "
            f"({len(gens)} generated, {len(refs)} reference); name each generated wav after its reference"
        )
    if ref_only:
        logger.warning("%d reference wav(s) have no generated wav in %s: %s", len(ref_only), gen_dir, _listed(ref_only))
    if gen_only:
        logger.warning("%d generated wav(s) have no reference in %s: %s", len(gen_only), ref_dir, _listed(gen_only))
    from tqdm import tqdm

    items, metrics = [], []
    for name in tqdm(names, desc="evaluate", unit="item", disable=len(names) < 2):
        stem = Path(name).stem
        score = None if score_pitch_frames is None else score_pitch_frames.get(stem)
        result = evaluate_pair(
            load_wav(refs[name], sample_rate), load_wav(gens[name], sample_rate), sample_rate, hop_size, f0_min, f0_max,
            f0_method, score_pitch_frames=score, mcd_settings=mcd_settings,
        )  # fmt: skip
        metrics.append(result)
        items.append({"name": stem, **result.to_dict()})
    mcd = asdict(mcd_settings)
    mcd["alpha"] = mcd_settings.resolved_alpha(sample_rate)
    results = {
        "items": items,
        "mean": summarize(metrics),
        "settings": {
            "ref_dir": str(ref_dir), "gen_dir": str(gen_dir), "sample_rate": sample_rate, "hop_size": hop_size,
            "f0_method": f0_method, "f0_min": f0_min, "f0_max": f0_max, "mcd": mcd,
        },  # fmt: skip
        "unpaired": {"ref_only": ref_only, "gen_only": gen_only},
    }
    if write_json:
        write_text_atomic(gen_dir / METRICS_FILE, json.dumps(json_safe(results), indent=2, ensure_ascii=False) + "\n")
    return results


def _cell(value: Any, percent: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100.0 * value:.1f}" if percent else f"{value:.2f}"


def format_table(results: Mapping[str, Any]) -> str:
    """Markdown table of `evaluate_folders` results: one row per item, then the mean row (NaN/null as n/a)."""
    header = "| item | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " | voiced frames |"
    rule = "| --- | " + " | ".join("---:" for _ in TABLE_COLUMNS) + " | ---: |"
    lines = [header, rule]
    for item in results["items"]:
        cells = " | ".join(_cell(item[key], percent) for key, _, percent in TABLE_COLUMNS)
        lines.append(f"| {item['name']} | {cells} | {item['voiced_frames']} |")
    mean = results["mean"]
    cells = " | ".join(_cell(mean[key], percent) for key, _, percent in TABLE_COLUMNS)
    lines.append(f"| **mean** ({mean['items']} items) | {cells} | {mean['voiced_frames']} |")
    return "\n".join(lines)


def render_test_split(
    dataset: Any,
    renderers: dict[str, Callable[[dict[str, Any]], torch.Tensor]],
    out_dir: Path,
    audio: AudioSettings,
    device: torch.device,
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Render every item of `dataset` (one at a time) with each named renderer and evaluate each against the recordings.

    `renderers[name](batch)` gets a one-item batch on `device` (`tasks.svs_dataset.collate_singing`) and
    returns the wav `[S]` (`S = frames * hop`). Writes `out_dir/reference/<item>.wav`,
    `out_dir/<name>/<item>.wav` and `<name>/metrics.json`, then `out_dir/summary.json` (the mean row of
    each, plus `notes`), and prints one table per renderer. Returns the summary.
    """
    import torch  # only here: the standalone CLI evaluates wav folders without loading torch

    from preprocessor.atomic_io import write_wav_atomic

    collate = dataset.collate_fn
    score_pitch: dict[str, np.ndarray] = {}
    rate = audio.sample_rate
    for index in range(len(dataset)):
        batch = collate([dataset[index]])
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        name = batch["names"][0]
        with torch.no_grad():
            for source, render in renderers.items():
                write_wav_atomic(out_dir / source / f"{name}.wav", render(batch).float().cpu().numpy(), rate)
        write_wav_atomic(out_dir / "reference" / f"{name}.wav", batch["wav"][0, 0].float().cpu().numpy(), rate)
        score_pitch[name] = torch.repeat_interleave(batch["note_pitch"][0], batch["phone_frames"][0]).cpu().numpy()
    summary: dict[str, Any] = dict(notes or {})
    for source in renderers:
        results = evaluate_folders(
            out_dir / "reference", out_dir / source, audio.sample_rate, audio.hop_size, audio.f0_min, audio.f0_max, audio.f0_extractor,
            score_pitch_frames=score_pitch,
        )  # fmt: skip
        summary[source] = results["mean"]
        print(f"\n{source} -> {out_dir / source / 'metrics.json'}")
        print(format_table(results))
    write_text_atomic(out_dir / "summary.json", json.dumps(json_safe(summary), indent=1))
    print(f"\nrendered {len(dataset)} test items into {out_dir}")
    return summary


def _validate_settings(sample_rate: int, hop_size: int, f0_min: float, f0_max: float, f0_method: str) -> None:
    if sample_rate <= 0 or hop_size <= 0:
        raise UserInputError(f"--sample_rate ({sample_rate}) and --hop_size ({hop_size}) must be positive")
    if not 0 < f0_min < f0_max < sample_rate / 2:
        raise UserInputError(
            f"--f0_min/--f0_max: need 0 < f0_min < f0_max < sample_rate / 2, got {f0_min}, {f0_max} at {sample_rate} Hz"
        )
    if f0_method not in F0_METHODS:
        raise UserInputError(f"--f0_method is '{f0_method}'; use one of {', '.join(F0_METHODS)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = AudioSettings()
    parser.add_argument("--ref", type=Path, required=True, help="folder of reference wavs")
    parser.add_argument("--gen", type=Path, required=True, help="folder of generated wavs (same file names); metrics.json goes here")
    parser.add_argument("--config", type=Path, help="YAML whose audio: section gives the settings below (flags still win)")
    parser.add_argument("--sample_rate", type=int, help=f"Hz both wavs are loaded at (default {defaults.sample_rate})")
    parser.add_argument("--hop_size", type=int, help=f"samples per F0 frame (default {defaults.hop_size})")
    parser.add_argument("--f0_method", choices=F0_METHODS, help=f"pitch tracker (default {defaults.f0_extractor})")
    parser.add_argument("--f0_min", type=float, help=f"lowest F0 searched, Hz (default {defaults.f0_min:g})")
    parser.add_argument("--f0_max", type=float, help=f"highest F0 searched, Hz (default {defaults.f0_max:g})")
    return parser


def _audio_settings(args: argparse.Namespace) -> dict[str, Any]:
    """sample_rate, hop_size, f0_min, f0_max, f0_method: flags over ``--config``'s audio section over defaults."""
    audio = AudioSettings()
    if args.config is not None:
        audio = config_section(load_config(args.config), AudioSettings, "audio")
    chosen = {
        "sample_rate": audio.sample_rate, "hop_size": audio.hop_size, "f0_min": float(audio.f0_min),
        "f0_max": float(audio.f0_max), "f0_method": audio.f0_extractor,
    }  # fmt: skip
    for key in chosen:
        flag = getattr(args, key)
        if flag is not None:
            chosen[key] = flag
    return chosen


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = _audio_settings(args)
    results = evaluate_folders(args.ref, args.gen, **settings)
    print(format_table(results))
    print(f"\n{args.gen / METRICS_FILE}")
    return 0


if __name__ == "__main__":
    run_cli(main)
