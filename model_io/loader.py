"""The one loader: any model file of the project (runner checkpoint, pack, version-1 pack) as `SavedModels`.

    saved = load_saved(Path("checkpoints/csd_visinger"))   # an experiment: its best, else latest checkpoint
    saved = load_saved(Path("packed/csd_visinger"))        # a pack folder (or its model.pt)
    generator = saved.build(saved.description.names_with_role(SINGER)[0])

Only the weights the description names are kept (no optimizer state); models are rebuilt from the
description alone, so no task code and no config is needed.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from config.errors import UserInputError
from model_io import legacy_packs
from model_io.checkpoint_file import BEST_NAME, CHECKPOINT_FORMAT, checked_checkpoint, default_checkpoint, list_checkpoints, read_torch_file
from model_io.description import ModelDescription, check_same_features
from model_io.saved import SavedModels, TrainingRecord

PACK_FORMAT = "svs-model-pack"
PACK_VERSION = 2
PACK_FILE = "model.pt"
MODEL_CARD = "README.md"
EXPERIMENT_CONFIG = "config.yaml"  # what tasks/runs/run.py writes first into an experiment folder
DESCRIBE_COMMAND = "python tasks/runs/describe_checkpoint.py"


def _inference_states(description: ModelDescription, states: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The weights of the described inference models (training-only models such as discriminators are dropped)."""
    kept = {}
    for name, spec in description.models.items():
        if spec.role == "training":
            continue
        if name not in states:
            raise UserInputError(f"{where}: the description names model '{name}' but the file has no weights for it; re-create the file")
        kept[name] = states[name]
    return kept


def from_checkpoint(state: dict[str, Any], path: Path) -> SavedModels:
    """The described models of a runner checkpoint (`tasks/runs/run.py`'s `model_*.pt`), read from `path`."""
    state = checked_checkpoint(state, path)
    if "description" not in state:
        raise UserInputError(
            f"{path}: written before checkpoints described their models (no 'description'); add it with {DESCRIBE_COMMAND} {path}"
        )
    description = ModelDescription.from_dict(state["description"], str(path))
    description.check_phone_set(str(path))
    record = TrainingRecord(
        str(state.get("task_cls")), int(state.get("global_step") or 0), dict(state.get("val_metrics") or {}),
        dict(state.get("config") or {}), str(path), str(state.get("code_version", "unknown")),
        tuple(name for name, spec in description.models.items() if spec.role != "training"),
    )  # fmt: skip
    return SavedModels(description, _inference_states(description, state.get("models") or {}, path), (record,), path)


def from_pack_file(payload: Any, path: Path) -> SavedModels:
    """A pack's `model.pt` (version 2), read from `path`."""
    if not isinstance(payload, dict) or payload.get("format") != PACK_FORMAT:
        raise UserInputError(f"{path}: not a model pack (no '{PACK_FORMAT}' tag); pass a pack folder, an experiment or a checkpoint")
    if payload.get("version") != PACK_VERSION:
        raise UserInputError(f"{path}: pack version {payload.get('version')} is not {PACK_VERSION}; use the code version it was written by")
    description = ModelDescription.from_dict(payload.get("description"), str(path))
    description.check_phone_set(str(path))
    trained = tuple(TrainingRecord.from_dict(record) for record in payload.get("trained") or ())
    return SavedModels(description, _inference_states(description, payload.get("models") or {}, path), trained, path.parent)


def load_saved(source: Path | str) -> SavedModels:
    """The one loader: `source` is an experiment folder (best checkpoint, else latest), a checkpoint file,
    a pack folder or its `model.pt`, or a version-1 pack folder (written before packs held a description)."""
    source = Path(source)
    if source.is_dir() or (not source.exists() and source.suffix != ".pt"):  # a missing folder: "experiment not found"
        if (source / PACK_FILE).is_file():
            source = source / PACK_FILE
        elif legacy_packs.is_version_1_pack(source):
            return legacy_packs.load_version_1_pack(source)
        elif not source.exists() or (source / EXPERIMENT_CONFIG).is_file() or list_checkpoints(source) or (source / BEST_NAME).is_file():
            source = default_checkpoint(source)
        else:
            raise UserInputError(
                f"{source}: neither a packed model (no {PACK_FILE}) nor an experiment (no checkpoints, no {EXPERIMENT_CONFIG}); "
                "pass a pack folder, an experiment folder or a checkpoint file"
            )
    if not source.is_file():
        raise UserInputError(f"{source}: not found; pass an experiment folder, a checkpoint file or a pack folder")
    payload = read_torch_file(source, "pass an experiment folder, a checkpoint file or a pack folder")
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return from_checkpoint(payload, source)
    return from_pack_file(payload, source)


def combine_pair(acoustic: SavedModels, vocoder: SavedModels) -> SavedModels:
    """An acoustic model and a vocoder from two files as one `SavedModels` (models named "acoustic" and "vocoder").

    Audio settings, phone set and statistics are the acoustic model's; the vocoder must read its mels.
    """
    acoustic_name = acoustic.only("acoustic", "acoustic model")
    vocoder_name = vocoder.only("vocoder", "vocoder")
    check_same_features(acoustic.description.audio, vocoder.description.audio, str(acoustic.source), str(vocoder.source))
    models = {"acoustic": acoustic.description.models[acoustic_name], "vocoder": vocoder.description.models[vocoder_name]}
    description = replace(acoustic.description, models=models)
    states = {"acoustic": acoustic.states[acoustic_name], "vocoder": vocoder.states[vocoder_name]}
    trained = tuple(replace(r, models=("acoustic",)) for r in acoustic.trained) + tuple(replace(r, models=("vocoder",)) for r in vocoder.trained)
    return SavedModels(description, states, trained, acoustic.source)
