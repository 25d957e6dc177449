"""Rebuild the VISinger generator for inference from an experiment, a checkpoint, or a packed folder.

Only the generator is rebuilt (no discriminators, no optimizer state), from the config saved with
the weights. A packed folder (`pack_experiment`) is self-contained: `generator.pt` (weights and the
generator's arguments), `config.yaml` (the resolved training config), `phone_set.json` and
`stats.json` (F0 statistics and the trained note range), so inference needs no training data.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from config.errors import UserInputError
from config.loader import config_section, load_config, save_config
from modules.visinger import VISingerGenerator, VISingerGeneratorConfig
from preprocessor.atomic_io import atomic_path, write_text_atomic
from preprocessor.binary_dataset import read_f0_stats
from preprocessor.audio import AudioSettings
from preprocessor.text.phone_set import PHONE_SET, read_phone_set, write_phone_set
from tasks.checkpoint import BEST_NAME, first_state_mismatch, latest_checkpoint, load_checkpoint

PACK_FORMAT = "korean-visinger-pack"
PACK_VERSION = 1
VISINGER_TASK = "tasks.visinger_task.VISingerTask"
PACK_FILES = ("generator.pt", "config.yaml", "phone_set.json", "stats.json")


@dataclass
class LoadedSinger:
    generator: VISingerGenerator
    audio: AudioSettings
    config: dict[str, Any]
    source: Path
    stats: dict[str, Any]  # may hold note_pitch_min / note_pitch_max, log_f0_mean / log_f0_std

    @property
    def pitch_range(self) -> tuple[int, int] | None:
        if "note_pitch_min" in self.stats and self.stats["note_pitch_min"] <= self.stats["note_pitch_max"]:
            return int(self.stats["note_pitch_min"]), int(self.stats["note_pitch_max"])
        return None


def default_checkpoint(work_dir: Path) -> Path:
    """The experiment's best checkpoint, else its latest; an error naming the folder when there is none."""
    if not work_dir.is_dir():
        raise UserInputError(f"{work_dir}: experiment not found; train it with tasks/runs/run.py --exp_name {work_dir.name}, or pass --ckpt")
    best = work_dir / BEST_NAME
    if best.is_file():
        return best
    latest = latest_checkpoint(work_dir)
    if latest is None:
        raise UserInputError(f"{work_dir}: no checkpoint yet (model_best.pt or model_ckpt_steps_*.pt); train longer or pass --ckpt")
    return latest


def check_phone_count(n_phones: int, source: Path) -> None:
    """A model trained with another phone set would sing garbage: refuse it by name."""
    if n_phones != len(PHONE_SET):
        raise UserInputError(
            f"{source}: trained with {n_phones} phones, this code's phone set has {len(PHONE_SET)}; use the code version it was trained with"
        )


def load_checked_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load `state` into `model`, or an error naming the first tensor that does not fit."""
    mismatch = first_state_mismatch(model.state_dict(), state)
    if mismatch:
        raise UserInputError(f"{source}: not this model's weights: {mismatch}")
    model.load_state_dict(state)


def _build_generator(generator_args: dict[str, Any], state: dict[str, torch.Tensor], source: Path) -> VISingerGenerator:
    try:
        config = VISingerGeneratorConfig(**generator_args)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{source}: the saved generator arguments do not build a VISinger generator ({error})") from None
    check_phone_count(config.n_phones, source)
    generator = VISingerGenerator.from_config(config)
    load_checked_state(generator, state, source)
    return generator.eval()


def dataset_stats(config: dict[str, Any]) -> dict[str, Any]:
    """F0 statistics of the training data, when its binary folder is still around (packs carry their own)."""
    binary_dir = config.get("dataset", {}).get("binary_dir")
    path = Path(binary_dir) / "f0_stats.json" if binary_dir else None
    if path is not None and path.is_file():
        return read_f0_stats(path)
    return {}


def load_from_checkpoint(path: Path) -> LoadedSinger:
    from tasks.visinger_task import generator_config_from

    state = load_checkpoint(path)
    if state.get("task_cls") != VISINGER_TASK or "generator" not in state.get("models", {}):
        raise UserInputError(
            f"{path}: a checkpoint of {state.get('task_cls')!r}, not of VISinger ({VISINGER_TASK}); pass a VISinger experiment or checkpoint"
        )
    config = state.get("config")
    try:
        if not isinstance(config, dict):
            raise UserInputError("no config saved with it")
        args = dataclasses.asdict(generator_config_from(config))
        audio = config_section(config, AudioSettings, "audio")
    except UserInputError as error:  # the config's own message does not say which file it came from
        raise UserInputError(f"{path}: its saved config does not describe a VISinger generator ({error}); use a checkpoint of this code version") from None
    generator = _build_generator(args, state["models"]["generator"], path)
    return LoadedSinger(generator, audio, config, path, dataset_stats(config))


def load_from_pack(pack_dir: Path) -> LoadedSinger:
    weights = pack_dir / "generator.pt"
    if not weights.is_file():
        raise UserInputError(f"{pack_dir}: not a packed model (no generator.pt); create one with inference/visinger.py --pack EXP --out DIR")
    try:
        packed = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserInputError(f"{weights}: cannot be read ({type(error).__name__}); re-create the pack") from None
    if not isinstance(packed, dict) or packed.get("format") != PACK_FORMAT or packed.get("version") != PACK_VERSION:
        raise UserInputError(f"{weights}: not a {PACK_FORMAT} v{PACK_VERSION} file; re-create the pack with this code")
    read_phone_set(pack_dir / "phone_set.json")  # a pack from another phone set is an error, not garbage audio
    config = load_config(pack_dir / "config.yaml")
    generator = _build_generator(packed["generator_args"], packed["generator"], weights)
    stats_path = pack_dir / "stats.json"
    stats = read_f0_stats(stats_path, may_be_empty=True) if stats_path.is_file() else {}
    return LoadedSinger(generator, config_section(config, AudioSettings, "audio"), config, pack_dir, stats)


def load_singer(exp_dir: Path | None = None, ckpt: Path | None = None) -> LoadedSinger:
    """From `ckpt` (a checkpoint file or a pack folder) when given, else the experiment's default checkpoint."""
    if ckpt is not None:
        return load_from_pack(ckpt) if ckpt.is_dir() else load_from_checkpoint(ckpt)
    assert exp_dir is not None
    if (exp_dir / "generator.pt").is_file():
        return load_from_pack(exp_dir)
    return load_from_checkpoint(default_checkpoint(exp_dir))


def _is_pack(folder: Path) -> bool:
    """A folder holding a pack's files and nothing else (the only kind of folder packing may replace)."""
    entries = {entry.name for entry in folder.iterdir()}
    return "generator.pt" in entries and entries <= set(PACK_FILES)


def pack_experiment(singer: LoadedSinger, out_dir: Path) -> Path:
    """Write a self-contained folder (generator weights only); built beside `out_dir`, then renamed.

    An existing `out_dir` is replaced only when it is an earlier pack: anything else (the experiment
    folder itself, a folder of other files) is a `UserInputError`, never deleted.
    """
    return write_folder_atomically(out_dir, lambda partial: _write_pack(singer, partial), _is_pack)


def write_folder_atomically(out_dir: Path, write: Callable[[Path], None], is_pack: Callable[[Path], bool]) -> Path:
    """Call `write(partial)` on a fresh folder beside `out_dir`, then rename it to `out_dir` (shared by every pack kind).

    An existing `out_dir` is replaced only when it is empty or `is_pack(out_dir)`; anything else is a
    `UserInputError`, never deleted. A failure removes the partial folder and leaves `out_dir` as it was.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not (out_dir.is_dir() and (is_pack(out_dir) or not any(out_dir.iterdir()))):
        raise UserInputError(f"{out_dir}: exists and is not a packed model (packing would delete it); pass a new folder to --out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o777 & ~umask)  # mkdtemp's 0o700 would hide the pack from the rest of a team
    try:
        write(partial)
        if out_dir.exists():
            # Move the old pack aside first, so that a crash leaves one complete pack under some name.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
            partial.rename(out_dir)
            shutil.rmtree(old)
        else:
            partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir


def _write_pack(singer: LoadedSinger, partial: Path) -> None:
    payload = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "generator_args": dataclasses.asdict(singer.generator.config),
        "generator": {k: v.detach().cpu() for k, v in singer.generator.state_dict().items()},
        "source": str(singer.source),
    }
    with atomic_path(partial / "generator.pt") as tmp:
        torch.save(payload, tmp)
    save_config(singer.config, partial / "config.yaml")
    write_phone_set(partial / "phone_set.json")
    write_text_atomic(partial / "stats.json", json.dumps(singer.stats, indent=1))
