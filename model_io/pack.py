"""The one pack format: a folder with `model.pt` (the inference models' weights + their description + where
they were trained; no optimizer state) and `README.md` (a model card), for every model family.

`model.pt` = {"format": "svs-model-pack", "version": 2, "description": ModelDescription.to_dict(),
"models": {name: state_dict}, "trained": [TrainingRecord.to_dict(), ...]}. `load_saved(folder)` reads it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from model_io.description import TRANSFER
from model_io.loader import MODEL_CARD, PACK_FILE, PACK_FORMAT, PACK_VERSION
from model_io.saved import SavedModels
from model_io.legacy_packs import DDSP_V1, PAIR_V1, VISINGER_V1
from preprocessor.atomic_io import atomic_path, write_folder_atomically, write_text_atomic

# Licences of the datasets the project reads (`dataset.name` of the config), for the model card.
DATASET_LICENCES = {
    "csd": "Children's Song Dataset: CC BY-NC-ND 4.0 (early release) / CC BY-NC-SA 4.0 (final release, re-annotation); "
    "non-commercial: a model trained on it is for research use",
    "demo": "the project's synthetic demo corpus (preprocessor/demo_corpus.py), generated, no recording involved",
}
# Files a pack folder may hold (this version's and version 1's): the only folders packing may replace.
PACK_FOLDER_FILES = {PACK_FILE, MODEL_CARD, "config.yaml", "vocoder_config.yaml", "phone_set.json", "stats.json", VISINGER_V1[1], *PAIR_V1[1:], DDSP_V1[1]}


def is_pack_folder(folder: Path) -> bool:
    entries = {entry.name for entry in folder.iterdir()}
    return bool(entries) and entries <= PACK_FOLDER_FILES and bool(entries & {PACK_FILE, VISINGER_V1[1], PAIR_V1[1], DDSP_V1[1]})


def pack_payload(saved: SavedModels) -> dict[str, Any]:
    return {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "description": saved.description.to_dict(),
        "models": {name: {key: value.detach().cpu() for key, value in state.items()} for name, state in saved.states.items()},
        "trained": [record.to_dict() for record in saved.trained],
    }


def write_pack(saved: SavedModels, out_dir: Path) -> Path:
    """Write `saved` as a pack folder, built beside `out_dir` and renamed into place (an existing `out_dir`
    is replaced only when it is an earlier pack)."""

    def write(partial: Path) -> None:
        with atomic_path(partial / PACK_FILE) as tmp:
            torch.save(pack_payload(saved), tmp)
        write_text_atomic(partial / MODEL_CARD, model_card(saved, Path(out_dir).name))

    return write_folder_atomically(Path(out_dir), write, is_pack_folder)


DEMO_AUDIO = "data/raw/demo/"  # where the demo corpus's recordings lie (preprocessor/demo_corpus.py)


def _dataset_lines(config: dict[str, Any]) -> list[str]:
    folder = config.get("audio_folder")
    if isinstance(folder, dict):  # a DDSP singer: a folder of recordings, no dataset
        audio_dir = str(folder.get("audio_dir", "?"))
        licence = DATASET_LICENCES["demo"] if DEMO_AUDIO in f"{audio_dir.rstrip('/')}/" else "unknown: state the licence of the recordings before sharing this pack"
        return [f"- data: the recordings under `{audio_dir}` (features cached in `{folder.get('cache_dir', '?')}`)", f"- data licence: {licence}"]
    dataset = config.get("dataset") or {}
    name = dataset.get("name", "unknown")
    licence = DATASET_LICENCES.get(str(name), "unknown: state the licence of the training data before sharing this pack")
    return [f"- data: `{name}` (raw: `{dataset.get('raw_data_dir', '?')}`, binary: `{dataset.get('binary_dir', '?')}`)", f"- data licence: {licence}"]


def _metrics(record_metrics: dict[str, Any]) -> str:
    if not record_metrics:
        return "none recorded"
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in sorted(record_metrics.items()))


def model_card(saved: SavedModels, pack_name: str) -> str:
    """The pack's README.md: what the models are, what they were trained on (and its licence), how long,
    with which metrics and code, and how to load them."""
    description = saved.description
    audio = description.audio
    lines = [f"# {pack_name}", "", "A packed model of the Korean VISinger repository (pack format version 2).", "", "## Models", ""]
    for name, spec in description.models.items():
        lines.append(f"- `{name}` ({spec.role}): `{spec.class_path}` built from `{spec.config_class or 'keyword arguments'}`")
    lines += [
        "",
        f"Audio: {audio.sample_rate} Hz, hop {audio.hop_size}, {audio.n_mels} mels, F0 {audio.f0_min:g}-{audio.f0_max:g} Hz ({audio.f0_extractor}); "
        f"{len(description.phone_set)} phones; code {description.code_version}, torch {description.torch_version or '?'}.",
    ]
    if description.pitch_range is not None:
        lines.append(f"Trained note range: MIDI {description.pitch_range[0]}-{description.pitch_range[1]}.")
    transfers = bool(description.names_with_role(TRANSFER))
    if transfers:
        stats = description.stats
        lines.append(
            f"Timbre transfer (F0 + A-weighted loudness in, waveform out); loudness meter window {stats.get('loudness_n_fft', '?')} samples. "
            f"Training data: loudness {stats.get('loudness_mean', float('nan')):.1f} ± {stats.get('loudness_std', float('nan')):.1f} dB, "
            f"pitch MIDI {stats.get('pitch_mean_midi', float('nan')):.1f} ± {stats.get('pitch_std_midi', float('nan')):.1f} "
            "(and the loudness quantiles that `loudness_stats` maps onto, in the model's buffers)."
        )
    for record in saved.trained:
        lines += ["", f"## Training of {', '.join(record.models)}", "", f"- task: `{record.task_cls}`", f"- updates trained: {record.global_step}"]
        lines += _dataset_lines(dict(record.config))
        lines += [f"- validation metrics: {_metrics(dict(record.val_metrics))}", f"- code: {record.code_version}", f"- from: `{record.source}`"]
        if record.config:
            lines += ["", "<details><summary>training config</summary>", "", "```yaml", yaml.safe_dump(dict(record.config), sort_keys=False, allow_unicode=True).rstrip(), "```", "</details>"]
    use = (
        ('out = singer.transfer("take.wav", autotune=1.0)  # out.wav: float32 mono, out.sample_rate',
         f"python inference/transfer.py --ckpt {pack_name} --wav take.wav --out sung.wav")
        if transfers else
        ('out = singer.sing("song.mid")  # out.wav: float32 mono, out.sample_rate',
         f"python inference/visinger.py --ckpt {pack_name} --midi song.mid --out song.wav")
    )  # fmt: skip
    lines += ["", "## Load it", "", "```python", "from inference.api import Singer", f'singer = Singer.load("{pack_name}")', use[0], "```", "", f"or `{use[1]}`.", ""]
    return "\n".join(lines)
